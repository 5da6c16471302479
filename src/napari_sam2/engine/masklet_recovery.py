"""A masklet that shrank to part of its cell, prompted again: one click at the centre of what
is left, and the candidate that is about the cell's size becomes its mask."""

import numpy as np
from scipy import ndimage

from .division_clicks import click_candidates
from .tracker import Tracker


def touches_edge(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def recovered_mask(
    tracker: Tracker, t: int, mask: np.ndarray, reference: int, others: np.ndarray
) -> np.ndarray | None:
    """The cell a shrunken (H, W) mask on frame t is part of: of the candidates of one click
    at its centre, the first that holds 80 % of it, is 0.7 to 1.4 times `reference` (the
    area of the object's mask prompt) and lies at most a quarter on `others` (pixels other
    objects hold), without those pixels; None when no candidate is."""
    area = int(mask.sum())
    centre = ndimage.center_of_mass(mask)
    if not mask[int(round(centre[0])), int(round(centre[1]))]:
        centre = np.unravel_index(int(ndimage.distance_transform_edt(mask).argmax()), mask.shape)
    candidates, _ = click_candidates(tracker, t, [centre])
    for candidate in candidates[0] > 0:
        size = int(candidate.sum())
        if (
            (candidate & mask).sum() >= 0.8 * area
            and 0.7 * reference <= size <= 1.4 * reference
            and (candidate & others).sum() <= 0.25 * size
        ):
            return candidate & ~others
    return None
