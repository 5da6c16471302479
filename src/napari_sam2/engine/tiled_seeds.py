"""Automatic seeds in tiles: SAM 2's automatic masks found window by window and merged into one
label image of the whole frame, duplicates from overlapping windows dropped."""

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from .automatic_masks import MaskGeneratorSettings, generate_masks
from .tiles import Window, touches_inner_edge

if TYPE_CHECKING:
    from .tiled_tracking import TiledTracker

# a mask whose pixels are taken by better masks for more than this share of its area is a
# duplicate (from an overlapping window) or a part of an object already found
SEED_MAX_OVERLAP = 0.3


def automatic_seed_labels(
    tracker: "TiledTracker", t: int, settings: MaskGeneratorSettings | None, min_area: int
) -> np.ndarray:
    """The masks of every window of `tracker` on frame t as one (H, W) label image (1..N).
    A mask cut by its window's inner edge is left to the neighbour that holds it whole."""
    found: list[tuple[float, Window, np.ndarray]] = []  # (score, window, mask crop)
    for window in tracker.windows:
        window_tracker = tracker.window_tracker(window.index)
        image = window_tracker.normalized_frame(t)
        features = window_tracker.frame_features(t)
        for m in generate_masks(tracker.model, image, settings, features):
            if not touches_inner_edge(window, m.mask, tracker.height, tracker.width):
                found.append((m.predicted_iou * m.stability_score, window, m.mask))
    return _merge(found, tracker.height, tracker.width, min_area)


def _merge(
    found: list[tuple[float, Window, np.ndarray]], height: int, width: int, min_area: int
) -> np.ndarray:
    """Best masks first: each takes the pixels no better mask holds, unless better masks
    already hold most of it; a mask left in pieces keeps its largest."""
    found = sorted(found, key=lambda item: -item[0])
    labels = np.zeros((height, width), dtype=np.int32)
    next_id = 1
    for _, window, mask in found:
        area = int(mask.sum())
        region = window.crop(labels)
        free = mask & (region == 0)
        if area == 0 or free.sum() < (1.0 - SEED_MAX_OVERLAP) * area:
            continue
        parts, count = ndimage.label(free)
        if count > 1:
            free = parts == np.bincount(parts.ravel())[1:].argmax() + 1
        if free.sum() < min_area:
            continue
        region[free] = next_id
        next_id += 1
    return labels
