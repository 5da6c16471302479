"""Prompts read from layer data: the rows of a Points layer and the rectangles of a Shapes
layer, grouped by (frame, object) in the coordinates the tracker takes.

Pure numpy, so the widget's translation from layers to prompts is tested without Qt.
Layer coordinates are (leading axes..., y, x) in the image's data space.
"""

from collections.abc import Sequence

import numpy as np

from .engine.stack_view import VideoAxisView
from .io.prompts import FramePrompts


def _frame_of(coords: np.ndarray, view: VideoAxisView) -> int | None:
    """Frame index of a layer coordinate, or None when it lies on another slice."""
    leading = np.round(coords[: view.leading]).astype(int)
    for axis, index in enumerate(view.fixed):
        if axis != view.video_axis and leading[axis] != index:
            return None
    if view.video_axis is None:
        return 0
    t = int(leading[view.video_axis])
    return t if 0 <= t < view.shape[0] else None


def group_prompts(
    view: VideoAxisView,
    points: np.ndarray,
    point_labels: Sequence[int],
    point_objects: Sequence[int],
    boxes: Sequence[np.ndarray] = (),
    box_objects: Sequence[int] = (),
) -> dict[tuple[int, int], FramePrompts]:
    """(frame, object) -> prompts, from Points rows (N, D) and rectangle vertices (4, D).

    A rectangle's box is the bounds of its vertices on its frame; the last rectangle of an
    object on a frame wins. Rows on other slices of N-D data are ignored.
    """
    groups: dict[tuple[int, int], FramePrompts] = {}
    for row, label, obj in zip(np.asarray(points), point_labels, point_objects, strict=True):
        t = _frame_of(row, view)
        if t is None:
            continue
        prompts = groups.setdefault((t, int(obj)), FramePrompts())
        prompts.points.append((float(row[-1]), float(row[-2]), int(label)))
    for vertices, obj in zip(boxes, box_objects, strict=True):
        vertices = np.asarray(vertices, dtype=float)
        t = _frame_of(vertices[0], view)
        if t is None:
            continue
        y0, x0 = vertices[:, -2:].min(axis=0)
        y1, x1 = vertices[:, -2:].max(axis=0)
        groups.setdefault((t, int(obj)), FramePrompts()).box = (
            float(x0),
            float(y0),
            float(x1),
            float(y1),
        )
    return groups


def changed_prompts(
    before: dict[tuple[int, int], FramePrompts], after: dict[tuple[int, int], FramePrompts]
) -> dict[tuple[int, int], FramePrompts]:
    """The (frame, object) entries whose prompts differ; removed ones map to empty prompts."""
    changes = {}
    for key in before.keys() | after.keys():
        new = after.get(key, FramePrompts())
        if before.get(key, FramePrompts()) != new:
            changes[key] = new
    return dict(sorted(changes.items()))
