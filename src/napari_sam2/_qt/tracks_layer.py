"""Tracks and per-object measurements from a tracked label volume: a napari Tracks layer
(track_id, t, y, x and the parent graph) and the Labels layer's features."""

import numpy as np
import pandas as pd
from napari.layers import Labels, Tracks
from scipy import ndimage

from ..engine.stack_view import VideoAxisView

TRACKS = "SAM2 tracks"


def track_points(labels: np.ndarray) -> np.ndarray:
    """(N, 4) float rows (track_id, t, y, x): each object's centroid on each frame it is on,
    from (T, H, W) labels; sorted by track, then frame."""
    rows = []
    for t, frame in enumerate(labels):
        ids = np.unique(frame)
        ids = ids[ids != 0]
        if not len(ids):
            continue
        centres = ndimage.center_of_mass(np.ones_like(frame), frame, ids)
        rows += [(int(i), t, y, x) for i, (y, x) in zip(ids, centres, strict=True)]
    points = np.array(rows, dtype=float).reshape(-1, 4)
    return points[np.lexsort((points[:, 1], points[:, 0]))]


def tracks_graph(points: np.ndarray, lineage: dict[int, int]) -> dict[int, list[int]]:
    """napari's parent graph {daughter track: [parent track]} for tracks that are there."""
    present = set(points[:, 0].astype(int).tolist())
    return {d: [p] for d, p in sorted(lineage.items()) if d in present and p in present}


def object_features(labels: np.ndarray, lineage: dict[int, int]) -> pd.DataFrame:
    """One row per object (its label value in `index`): parent, first and last frame, frames
    present, and area in pixels (mean and on the first frame)."""
    ids = np.unique(labels)
    ids = ids[ids != 0]
    areas = (
        np.stack(
            [np.bincount(frame.ravel(), minlength=int(ids.max(initial=0)) + 1) for frame in labels]
        )
        if len(ids)
        else np.zeros((len(labels), 1), int)
    )
    rows = []
    for obj in ids.tolist():
        present = np.flatnonzero(areas[:, obj])
        rows.append(
            {
                "index": obj,
                "parent": lineage.get(obj, 0),
                "first_frame": int(present[0]),
                "last_frame": int(present[-1]),
                "frames": len(present),
                "mean_area": float(areas[present, obj].mean()),
                "first_area": int(areas[present[0], obj]),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "index",
            "parent",
            "first_frame",
            "last_frame",
            "frames",
            "mean_area",
            "first_area",
        ],
    )


def show_tracks(viewer, labels_layer: Labels, view: VideoAxisView, lineage: dict[int, int]):
    """Add (or replace) the Tracks layer for the tracked frames of `labels_layer` and set its
    features; returns the Tracks layer (None when nothing is tracked)."""
    index = tuple(
        slice(None) if axis == view.video_axis else view.fixed[axis] for axis in range(view.leading)
    )
    frames = np.asarray(labels_layer.data[index])
    frames = frames[None] if view.video_axis is None else frames
    labels_layer.features = object_features(frames, lineage)
    if TRACKS in viewer.layers:
        viewer.layers.remove(TRACKS)
    points = track_points(frames)
    if not len(points):
        return None
    # the labels layer's coordinates (the fixed axes at their slice, the followed axis = t),
    # so the tracks lie on the labels; napari takes the first axis as the tracks' time
    coords = np.zeros((len(points), labels_layer.ndim))
    for axis in range(view.leading):
        coords[:, axis] = points[:, 1] if axis == view.video_axis else view.fixed[axis]
    coords[:, -2:] = points[:, 2:]
    scale = np.asarray(labels_layer.scale)
    translate = np.asarray(labels_layer.translate)
    if view.video_axis is None:  # one frame: a time axis of length one in front
        coords = np.column_stack([np.zeros(len(points)), coords])
        scale, translate = np.r_[1.0, scale], np.r_[0.0, translate]
    data = np.column_stack([points[:, 0], coords])
    layer = Tracks(
        data,
        graph=tracks_graph(points, lineage),
        name=TRACKS,
        scale=scale,
        translate=translate,
        tail_length=10,
    )
    viewer.add_layer(layer)
    return layer
