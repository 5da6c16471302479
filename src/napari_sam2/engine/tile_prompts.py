"""Where a prompt given in frame pixels lies, for `TiledTracker`: its centre picks the tile it
goes to, and its extent must fit in that tile."""

import numpy as np
from scipy import ndimage

from ..errors import SAM2Error
from .prompt_inputs import check_inside

# (y0, x0, y1, x1) in frame pixels; None for a prompt with nothing in it (a clearing one)
Extent = tuple[float, float, float, float] | None


def checked_points(points_xy, labels) -> tuple[np.ndarray, np.ndarray]:
    """Clicks as an (N, 2) float (x, y) array and their (N,) labels; a clear error otherwise."""
    try:
        points = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        labels = np.asarray(labels).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise SAM2Error(f"points must be (N, 2) pixel (x, y) coordinates ({exc})") from None
    if not np.isfinite(points).all():
        raise SAM2Error("points must be finite pixel coordinates")
    return points, labels


def checked_box(box) -> np.ndarray | None:
    """A box as a (4,) float (x0, y0, x1, y1) array, or None."""
    if box is None:
        return None
    try:
        return np.asarray(box, dtype=np.float64).reshape(4)
    except (TypeError, ValueError):
        raise SAM2Error(f"a box is (x0, y0, x1, y1), got {box!r}") from None


def click_geometry(
    points: np.ndarray, labels: np.ndarray, box: np.ndarray | None, height: int, width: int
) -> tuple[tuple[float, float], Extent]:
    """(centre y, x) and extent of clicks and a box; the frame's centre and None for neither.
    A click or corner outside the frame is a SAM2Error (as for a `Tracker`), before it could
    read as a prompt too large for a tile."""
    corners = np.zeros((0, 2)) if box is None else box.reshape(2, 2)
    check_inside(points, "point", height, width)
    check_inside(corners, "box corner", height, width)
    every = np.concatenate([points, corners])
    if len(every) == 0:
        return (height / 2, width / 2), None
    if box is not None:
        centre = (box[1] + box[3]) / 2, (box[0] + box[2]) / 2
    else:
        positive = points[labels == 1] if (labels == 1).any() else points
        centre = positive[:, 1].mean(), positive[:, 0].mean()
    low, high = every.min(0), every.max(0)
    # points on the frame's far edge (x == W) belong to the last pixel
    return centre, (low[1], low[0], min(high[1], height - 1e-6), min(high[0], width - 1e-6))


def mask_geometry(mask: np.ndarray) -> tuple[tuple[float, float], Extent]:
    """(centre y, x) and extent of a boolean (H, W) mask; the frame's centre and None for an
    empty mask."""
    found = ndimage.find_objects(mask.view(np.uint8))
    if not found or found[0] is None:
        return (mask.shape[0] / 2, mask.shape[1] / 2), None
    rows, cols = found[0]
    ys, xs = np.nonzero(mask[rows, cols])
    centre = ys.mean() + rows.start, xs.mean() + cols.start
    return centre, (rows.start, cols.start, rows.stop, cols.stop)
