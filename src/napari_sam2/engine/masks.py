"""Mask post-processing: filling small holes in low-resolution logits, and resizing logits
to the frames' own resolution."""

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
