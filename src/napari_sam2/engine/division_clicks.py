"""Asking SAM 2 whether a masklet is two cells: clicks on a frame decoded as in an image (no
memory), on a pinched mask's two lobes or in the area a shrinking masklet left."""

import numpy as np
import torch
from scipy import ndimage

from .automatic_masks import decode_clicks
from .division_regions import region_split
from .division_rule import DivisionRule, largest_piece, lobes
from .masks import to_frame_resolution
from .tracker import Tracker


def click_candidates(tracker: Tracker, t: int, points_yx) -> tuple[np.ndarray, np.ndarray]:
    """One click per (y, x) point on frame t, as in an image (no memory): the candidate
    masks' logits (N, 3, H, W) at the frames' resolution and their predicted IoUs (N, 3)."""
    model, height, width = tracker.model, tracker.height, tracker.width
    scale = np.array([model.image_size / width, model.image_size / height])
    clicks = torch.tensor(
        np.array([[x + 0.0, y + 0.0] for y, x in points_yx]) * scale, dtype=torch.float32
    )
    low_res, ious = decode_clicks(model, tracker.frame_features(t), clicks)
    candidates = to_frame_resolution(low_res.flatten(0, 1)[:, None], height, width)
    return (
        candidates.reshape(len(clicks), -1, height, width).cpu().numpy(),
        ious.cpu().numpy(),
    )


def abandoned_daughter(
    tracker: Tracker,
    t: int,
    mask: np.ndarray,
    previous: np.ndarray,
    free: np.ndarray,
    rule: DivisionRule,
) -> list[np.ndarray]:
    """A masklet that keeps one daughter and lets the other go: when its mask on frame t
    holds between `min_fraction` and `max_kept` of its previous area (and did not touch the
    frame's edge, where cells leave), one click in the middle of what it left; if SAM 2 finds
    a daughter-sized cell there, on pixels no object holds, returns [the masklet's mask, that
    cell], else []."""
    before, now = int(previous.sum()), int(mask.sum())
    if (
        before < 2 * rule.min_area
        or not rule.min_fraction * before <= now <= rule.max_kept * before
    ):
        return []
    left = previous & ~mask
    touches_border = previous[0].any() or previous[-1].any() or previous[:, 0].any()
    if left.sum() < rule.min_area or touches_border or previous[:, -1].any():
        return []  # (a cell leaving the field shrinks too)
    distance = ndimage.distance_transform_edt(left)
    centre = np.unravel_index(int(distance.argmax()), distance.shape)
    candidates, _ = click_candidates(tracker, t, [centre])
    for candidate in sorted(candidates[0] > 0, key=lambda c: c.sum()):
        size = int(candidate.sum())
        if not rule.min_fraction * before <= size <= (1 - rule.min_fraction) * before:
            continue
        if (candidate & free).sum() < 0.7 * size:
            continue
        if (candidate & mask).sum() > rule.max_click_iou * (candidate | mask).sum():
            continue
        other = largest_piece(candidate & free & ~mask)
        if other.sum() >= max(rule.min_area, rule.min_fraction * before):
            return [mask, other]
    return []


def click_split(
    tracker: Tracker, t: int, mask: np.ndarray, centres, rule: DivisionRule
) -> list[np.ndarray]:
    """Ask SAM 2 whether the two lobes of a (H, W) mask on frame t are two cells: one click
    on each, as in an image; returns the mask's pixels split between the two, or []."""
    candidates, ious = click_candidates(tracker, t, centres)
    area = mask.sum()
    chosen = []
    for options, click_ious in zip(candidates, ious, strict=True):
        sizes = [(c > 0).sum() for c in options]
        daughter_sized = [
            k
            for k, c in enumerate(options)
            if rule.min_fraction * area <= sizes[k] <= (1 - rule.min_fraction) * area
            and ((c > 0) & mask).sum() >= 0.7 * sizes[k]
        ]
        if daughter_sized:
            chosen.append(options[min(daughter_sized, key=lambda k: sizes[k])])
        else:
            chosen.append(options[int(click_ious.argmax())])
    logits = np.stack(chosen)
    first, second = logits > 0
    union = (first | second).sum()
    if union == 0 or (first & second).sum() > rule.max_click_iou * union:
        return []
    for click_mask in (first, second):
        if (click_mask & mask).sum() < 0.5 * click_mask.sum():
            return []  # the click found something else than a part of this cell
    piece = mask & (logits[0] >= logits[1])
    pieces = [piece, mask & ~piece]
    smallest = max(rule.min_area, rule.min_fraction * mask.sum())
    if min(int(p.sum()) for p in pieces) < smallest:
        return []
    # each daughter is one connected piece (stray pixels go with the other)
    return [largest_piece(p) for p in pieces]


def split_pieces(
    tracker: Tracker,
    t: int,
    mask: np.ndarray,
    rule: DivisionRule,
    regions: np.ndarray | None = None,
    others: np.ndarray | None = None,
) -> list[np.ndarray]:
    """The two daughters' masks when the masklet's mask on frame t is two cells, else []: it
    must be pinched (two lobes) or in two pieces, and either SAM 2's clicks on the lobes or
    the frame's classical `regions` (a label image; None: not used) must see two cells
    (`others`: pixels other objects hold)."""
    centres = lobes(mask, rule)
    if regions is None:
        return [] if centres is None else click_split(tracker, t, mask, centres, rule)
    return region_split(mask, regions, rule, others)
