"""SAM 2's masklets checked against the frame's classical segmentation: a masklet holding
under half of the cell it lies on is prompted again with that cell's region, and a cell-sized
region no masklet holds becomes a new object (a lost or entering cell)."""

import numpy as np

from .masklet_recovery import touches_edge


def plausible(size: int, typical: float) -> bool:
    """A region about the size of the seeds' cells (half to twice), so that debris and
    clumps the threshold finds are left alone."""
    return 0.5 * typical <= size <= 2.0 * typical


def undersized_masklets(
    frame: np.ndarray, regions: np.ndarray, typical: float
) -> dict[int, np.ndarray]:
    """{object: region mask} for objects of a (H, W) label frame whose mask lies mostly (60 %)
    on one classical region of plausible size, not on the frame's edge, yet holds under half
    of it while no other object holds half of it."""
    found: dict[int, np.ndarray] = {}
    sizes = np.bincount(regions.ravel())
    for obj_id in np.unique(frame)[1:]:
        mask = frame == obj_id
        ids, counts = np.unique(regions[mask], return_counts=True)
        if not ids.size:
            continue
        k = int(counts.argmax())
        region_id, held = int(ids[k]), int(counts[k])
        if region_id == 0 or held < 0.6 * mask.sum() or held >= 0.5 * sizes[region_id]:
            continue
        region = regions == region_id
        if not plausible(int(sizes[region_id]), typical) or touches_edge(region):
            continue
        others = np.bincount(frame[region & (frame != obj_id)].ravel())
        if others.size > 1 and others[1:].max() >= 0.5 * sizes[region_id]:
            continue
        found[int(obj_id)] = region
    return found


def unclaimed_regions(
    frame: np.ndarray, regions: np.ndarray, typical: float, min_area: int = 20
) -> list[np.ndarray]:
    """Classical regions that objects hold less than 10 % of: of plausible size, or on the
    frame's edge and at least `min_area` pixels (a cell entering the field shows a part)."""
    found = []
    sizes = np.bincount(regions.ravel())
    held = np.bincount(regions[frame != 0].ravel(), minlength=sizes.size)
    for region_id in range(1, sizes.size):
        size = int(sizes[region_id])
        if not size or held[region_id] >= 0.1 * size:
            continue
        region = regions == region_id
        entering = min_area <= size <= 2.0 * typical and touches_edge(region)
        if plausible(size, typical) or entering:
            found.append(region & (frame == 0))
    return found


def settle_regions(frame: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """A (H, W) label frame with masklets' spill-over handed back: pixels of an object lying
    on a classical region that is not the one holding most of that object, and that another
    object holds most of, go to that other object (a masklet leaking into its neighbour's
    cell gives it back). Background stays background; a copy is returned."""
    if not regions.any() or not frame.any():
        return frame
    objects = int(frame.max()) + 1
    joint = np.bincount(
        (regions.astype(np.int64) * objects + frame).ravel(),
        minlength=(int(regions.max()) + 1) * objects,
    ).reshape(-1, objects)
    joint[0, :] = 0
    joint[:, 0] = 0
    owner = joint.argmax(axis=1)  # per region: the object holding most of it
    home = joint.argmax(axis=0)  # per object: the region holding most of it
    move = (
        (frame > 0)
        & (regions > 0)
        & (home[frame] != regions)
        & (owner[regions] > 0)
        & (owner[regions] != frame)
    )
    settled = frame.copy()
    settled[move] = owner[regions[move]]
    return settled


def duplicates(frame: np.ndarray, before: np.ndarray) -> dict[int, int]:
    """{object: the object it copies} for objects of a (H, W) label frame that moved onto
    another object's cell: over half of the mask lies where that other object was on the
    frame before (`before`), under a fifth where the object itself was, and the other object
    is still there (a masklet whose cell left the field often jumps to a neighbour)."""
    found: dict[int, int] = {}
    present = set(np.unique(frame).tolist())
    for obj_id in present - {0}:
        mask = frame == obj_id
        counts = np.bincount(before[mask].ravel())
        own = counts[obj_id] if obj_id < counts.size else 0
        counts[[0, obj_id] if obj_id < counts.size else [0]] = 0
        other = int(counts.argmax())
        if other in present and counts[other] > 0.5 * mask.sum() and own < 0.2 * mask.sum():
            found[int(obj_id)] = other
    return found
