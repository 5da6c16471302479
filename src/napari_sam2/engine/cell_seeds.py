"""Seeds for tracking every cell: a label image checked against the stack's frames, or SAM 2's
automatic masks on one frame (optionally only where no object is yet)."""

import numpy as np

from ..errors import SAM2Error
from .automatic_masks import MaskGeneratorSettings, generate_masks, masks_to_labels
from .tracker import Tracker


def check_seed_frame(tracker: Tracker, t) -> int:
    """The seed frame as an int, or a SAM2Error when it is not a frame of the stack."""
    if not isinstance(t, int | np.integer) or not 0 <= t < tracker.num_frames:
        raise SAM2Error(
            f"seed frame {t} is out of range: the stack has {tracker.num_frames} "
            f"frames (0 to {tracker.num_frames - 1})"
        )
    return int(t)


def seed_ids(tracker: Tracker, t: int, seeds: np.ndarray) -> list[int]:
    """The object ids of a (H, W) seed label image for frame t, or a SAM2Error when it is
    the wrong shape, not integers, empty or negative."""
    if seeds.shape != (tracker.height, tracker.width):
        raise SAM2Error(
            f"the seeds have shape {seeds.shape}; a frame is {(tracker.height, tracker.width)}"
        )
    if seeds.dtype.kind not in "iub":
        raise SAM2Error(f"the seeds must be integer labels, got {seeds.dtype}")
    ids = [int(v) for v in np.unique(seeds) if v != 0]
    if not ids:
        raise SAM2Error(f"the seeds have no object on frame {t} (every pixel is 0)")
    if min(ids) < 0:
        raise SAM2Error(f"the seeds hold a negative label ({min(ids)}); labels are 1 or more")
    return ids


def automatic_labels(
    tracker: Tracker,
    t: int,
    settings: MaskGeneratorSettings,
    min_area: int,
    free: np.ndarray | None = None,
) -> np.ndarray:
    """SAM 2's automatic masks on frame t as a (H, W) label image (1..N), regions under
    `min_area` pixels dropped; with `free`, only masks lying mostly (80 %) in it, clipped
    to it."""
    image = tracker.normalized_frame(t)
    masks = generate_masks(tracker.model, image, settings, tracker.frame_features(t))
    if free is not None:
        masks = [m for m in masks if (m.mask & free).sum() >= 0.8 * m.area]
        for m in masks:
            m.mask = m.mask & free
    labels = masks_to_labels(masks, tracker.height, tracker.width)
    sizes = np.bincount(labels.ravel())
    labels[sizes[labels] < min_area] = 0
    return labels


def refine_with_regions(labels: np.ndarray, regions: np.ndarray, min_area: int) -> np.ndarray:
    """Automatic seeds (a (H, W) label image) corrected with the frame's classical regions:
    a mask lying over two or more whole regions (over half of each, each a quarter of its
    foreground or more) becomes one object per region, and a region about the seeds' size
    (half to twice their median) that no mask holds half of becomes an object (a cell the
    generator missed or cut in parts). Objects left under `min_area` pixels are dropped."""
    refined = labels.copy()
    areas = np.bincount(labels.ravel())[1:]
    if not (areas > 0).any() or not regions.any():
        return refined
    typical = float(np.median(areas[areas > 0]))
    sizes = np.bincount(regions.ravel())
    next_id = int(refined.max()) + 1
    for obj_id in [int(v) for v in np.unique(labels) if v]:
        mask = labels == obj_id
        ids, inside = np.unique(regions[mask], return_counts=True)
        foreground = inside[ids > 0].sum()
        held = [
            int(r)
            for r, n in zip(ids, inside, strict=True)
            if r and n > 0.5 * sizes[r] and n >= 0.25 * foreground
        ]
        for region_id in held[1:]:
            refined[mask & (regions == region_id)] = next_id
            next_id += 1
    for region_id in range(1, sizes.size):
        if not 0.5 * typical <= sizes[region_id] <= 2.0 * typical:
            continue
        region = regions == region_id
        counts = np.bincount(refined[region])
        counts[0] = 0
        if counts.max() <= 0.5 * sizes[region_id]:
            refined[region] = next_id
            next_id += 1
    small = np.bincount(refined.ravel()) < min_area
    small[0] = False
    refined[small[refined]] = 0
    return refined
