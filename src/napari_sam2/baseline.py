"""The classical tracking baseline our SAM 2 cell tracking is measured against.

Per frame: Gaussian smoothing, an Otsu threshold (cells brighter or darker than the field,
whichever is the minority class), holes filled, small specks dropped, touching cells split by a
watershed on the distance transform. Between frames: regions are linked to the track they
overlap most; a track whose region becomes two substantial regions divides.
"""

import numpy as np

from .engine.classical_regions import segment_frame
from .errors import SAM2Error

__all__ = ["classical_tracking", "segment_frame"]


def classical_tracking(
    frames,
    sigma: float = 2.0,
    min_area: int = 30,
    min_distance: int = 7,
    division_fraction: float = 0.25,
) -> tuple[np.ndarray, dict[int, int]]:
    """Segment and track cells in a (T, H, W) stack without a neural network.

    Returns (labels (T, H, W) int32 with one id per track, lineage {daughter: parent}).
    A region takes the track it overlaps most; when a track's region becomes two or more
    regions that each overlap it by at least `division_fraction` of its area, it divides
    into the two largest (new ids); a track that matches nothing ends.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise SAM2Error(f"the baseline needs a (T, H, W) stack, got shape {frames.shape}")
    labels = np.zeros(frames.shape, dtype=np.int32)
    lineage: dict[int, int] = {}
    next_id = 1
    previous = None
    for t in range(len(frames)):
        regions = segment_frame(frames[t], sigma, min_area, min_distance)
        ids = np.unique(regions)[1:]
        assigned: dict[int, int] = {}
        if previous is not None and ids.size:
            # overlap[i, j]: pixels of region ids[i] inside the previous frame's track j
            pairs = regions.astype(np.int64) * (previous.max() + 1) + previous
            counts = np.bincount(
                pairs.ravel(), minlength=(regions.max() + 1) * (previous.max() + 1)
            )
            overlap = counts.reshape(regions.max() + 1, previous.max() + 1)[:, 1:]
            previous_area = np.bincount(previous.ravel(), minlength=previous.max() + 1)[1:]
            claims: dict[int, list[int]] = {}
            for region in ids:
                row = overlap[region]
                if row.max() > 0:
                    claims.setdefault(int(row.argmax()) + 1, []).append(int(region))
            for track, claimed in claims.items():
                substantial = [
                    r
                    for r in claimed
                    if overlap[r, track - 1] >= division_fraction * previous_area[track - 1]
                ]
                if len(substantial) >= 2:
                    substantial.sort(key=lambda r: -overlap[r, track - 1])
                    for region in substantial[:2]:
                        assigned[region] = next_id
                        lineage[next_id] = track
                        next_id += 1
                    claimed = [r for r in claimed if r not in substantial[:2]]
                    for region in claimed:
                        assigned[region] = next_id
                        next_id += 1
                    continue
                # one track continues in the region it overlaps most; the rest start anew
                claimed.sort(key=lambda r: -overlap[r, track - 1])
                assigned[claimed[0]] = track
                for region in claimed[1:]:
                    assigned[region] = next_id
                    next_id += 1
        for region in ids:
            if int(region) not in assigned:
                assigned[int(region)] = next_id
                next_id += 1
        lookup = np.zeros(regions.max() + 1, dtype=np.int32)
        for region, track in assigned.items():
            lookup[region] = track
        labels[t] = lookup[regions]
        previous = labels[t]
    return labels, lineage
