"""A masklet that holds two cells the classical segmentation sees apart: SAM 2 often keeps
both daughters in their mother's masklet for several frames after they separate, while a
threshold and a watershed of the frame already find two regions there."""

import numpy as np
from scipy import ndimage

from .division_rule import DivisionRule, largest_piece


def region_split(
    mask: np.ndarray,
    regions: np.ndarray,
    rule: DivisionRule,
    others: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The mask's pixels split between two classical regions (a (H, W) label image) when two
    of them lie mostly (over half) inside the mask and each holds between `min_fraction` and
    1 - `min_fraction` of the mask's foreground (its pixels on any region: a masklet may
    spill onto the background), and other objects (`others`, pixels they hold) hold under a
    fifth of each (else the masklet leaks into a neighbour's cell, or a sister's); each
    pixel goes to the nearer region. Else []."""
    if mask.sum() < 2 * rule.min_area:
        return []
    ids, inside = np.unique(regions[mask], return_counts=True)
    foreground = int(inside[ids > 0].sum())
    sizes = np.bincount(regions.ravel(), minlength=int(regions.max()) + 1)
    smallest = max(rule.min_area, rule.min_fraction * foreground)
    largest = (1 - rule.min_fraction) * foreground
    taken = (
        np.bincount(regions[others].ravel(), minlength=sizes.size) if others is not None else None
    )
    held = [
        (int(n), int(r))
        for r, n in zip(ids, inside, strict=True)
        if r
        and smallest <= n <= largest
        and n > 0.5 * sizes[r]
        and (taken is None or taken[r] < 0.2 * sizes[r])
    ]
    if len(held) < 2:
        return []
    held.sort(reverse=True)
    (_, first), (_, second) = held[:2]
    # each mask pixel to the nearer of the two regions (within the mask)
    near_first = ndimage.distance_transform_edt(~((regions == first) & mask))
    near_second = ndimage.distance_transform_edt(~((regions == second) & mask))
    piece = mask & (near_first <= near_second)
    pieces = [largest_piece(piece), largest_piece(mask & ~piece)]
    if min(int(p.sum()) for p in pieces) < smallest:
        return []
    return pieces
