"""Click and box coordinates as users give them (frame pixels, any sequence type), checked and
scaled to the model's input grid."""

import numpy as np
import torch

from ..errors import SAM2Error


def to_model_xy(xy, what: str, width: int, height: int, image_size: int) -> torch.Tensor:
    """(N, 2) float32 model-grid coordinates of points (`what` "point") or of a box's two
    corners (`what` "box corner", four numbers x0, y0, x1, y1) on a width x height frame."""
    try:
        xy = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SAM2Error(f"{what} coordinates must be numbers") from exc
    if what == "box corner":
        if xy.size != 4:
            raise SAM2Error(f"a box is four numbers: x0, y0, x1, y1 (got {xy.size})")
        xy = xy.reshape(2, 2)
    elif xy.size == 0:
        xy = xy.reshape(0, 2)
    elif xy.shape == (2,):  # one point given as (x, y)
        xy = xy.reshape(1, 2)
    elif xy.ndim != 2 or xy.shape[1] != 2:
        raise SAM2Error(f"points must be an (N, 2) array of (x, y), got shape {xy.shape}")
    if not np.isfinite(xy).all():
        raise SAM2Error(f"{what} coordinates must be finite numbers")
    check_inside(xy, what, height, width)
    scale = np.array([image_size / width, image_size / height])
    return torch.tensor(xy * scale, dtype=torch.float32)


def check_inside(xy: np.ndarray, what: str, height: int, width: int) -> None:
    """A SAM2Error naming the first (x, y) row of `xy` outside the width x height frame."""
    outside = (xy[:, 0] < 0) | (xy[:, 0] > width) | (xy[:, 1] < 0) | (xy[:, 1] > height)
    if outside.any():
        x, y = xy[np.argmax(outside)]
        raise SAM2Error(f"{what} at (x={x:g}, y={y:g}) is outside the {width} x {height} frame")
