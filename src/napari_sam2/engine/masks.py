"""Mask post-processing: filling small holes in low-resolution logits, and resizing logits
to the frames' own resolution."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

# logit given to filled holes: just above the foreground threshold
HOLE_LOGIT = 0.1
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def fill_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """Turn background regions (logit <= 0) of at most `max_area` pixels into foreground.

    logits: (B, 1, h, w). Regions are 8-connected, and ones touching the border count too,
    as in the reference video predictor. Runs on the CPU with scipy, so it works everywhere.
    """
    if max_area <= 0:
        return logits
    background = (logits <= 0).cpu().numpy()
    holes = np.zeros_like(background)
    for index in np.ndindex(background.shape[:2]):
        regions, count = ndimage.label(background[index], structure=_EIGHT_CONNECTED)
        if count == 0:
            continue
        areas = np.bincount(regions.ravel())
        small = areas <= max_area
        small[0] = False
        holes[index] = small[regions]
    if not holes.any():
        return logits
    return torch.where(torch.from_numpy(holes).to(logits.device), HOLE_LOGIT, logits)


def to_frame_resolution(logits: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 1, h, w) low-resolution logits -> (B, height, width) by bilinear interpolation."""
    if logits.shape[-2:] != (height, width):
        logits = F.interpolate(
            logits.float(), size=(height, width), mode="bilinear", align_corners=False
        )
    return logits[:, 0]


Box = tuple[int, int, int, int]  # rows y0:y1, columns x0:x1


def positive_box(mask: np.ndarray) -> Box | None:
    """The bounding box (y0, y1, x0, x1) of a (H, W) boolean mask; None when it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def reach(logits: torch.Tensor, height: int, width: int) -> Box | None:
    """Where (1, 1, h, w) low-resolution logits can be positive once resized to the frame
    (`to_frame_resolution`): a frame pixel interpolates its two nearest low-res pixels per
    axis, so a box one low-res pixel wider than the positive ones holds them all."""
    box = positive_box((logits[0, 0] > 0).cpu().numpy())
    if box is None:
        return None
    y0, y1, x0, x1 = box
    sy, sx = height / logits.shape[-2], width / logits.shape[-1]
    return (
        max(0, math.floor((y0 - 1) * sy)),
        min(height, math.ceil((y1 + 1) * sy)),
        max(0, math.floor((x0 - 1) * sx)),
        min(width, math.ceil((x1 + 1) * sx)),
    )


def boxes_meet(a: Box, b: Box) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]
