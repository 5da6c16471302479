"""Touching objects' masks split again where their joint outline narrows (an option of ours,
not SAM 2's).

Keeping objects apart (`non_overlap`) settles a pixel two masks claim by their logits. When
two cells touch, one mask can spread over the other within a few frames: the taken pixels
carry higher logits for the taker than for their own cell, or the victim's mask no longer
claims them; once remembered, each frame starts from the larger mask, and the victim
shrinks until it is lost. Cells are round: two pressed together make one region with a
neck between them, and the boundary runs through the neck whatever the logits say.

On a tracked frame, after the objects are kept apart, every group of tracked objects whose
masks touch is shared out again by a watershed of the distance transform of their joint
region, flooded from the core of each object's mask on the frame before (eroded by
CORE_EROSION pixels, without what two cores share). Only objects with such a core in the
group take part: the pixels of one that moved off its core, or has none, stay as they were.
The split is in the labels and in what is remembered (the taker's memory of the frame leaves
out what it gave away), not in the stored results: as with keeping objects apart, a later
click on that frame competes with the neighbours' results as the model drew them.
"""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse.csgraph import connected_components
from skimage.segmentation import watershed

from .masks import Box, positive_box
from .non_overlap import NON_OWNER_LOGIT

# the core of a mask on the frame before: eroded by this many pixels
CORE_EROSION = 2
# fewer core pixels than this in the group's region: the object keeps what it has
MIN_CORE = 10


@dataclass
class Patch:
    """An (H, W) boolean mask kept as its bounding box and the crop inside it."""

    box: Box
    crop: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray) -> "Patch | None":
        box = positive_box(mask)
        if box is None:
            return None
        y0, y1, x0, x1 = box
        return cls(box, mask[y0:y1, x0:x1].copy())

    def within(self, box: Box) -> np.ndarray:
        """The mask cropped to `box` (zero outside the patch)."""
        y0, y1, x0, x1 = box
        out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        py0, py1, px0, px1 = self.box
        ty0, ty1 = max(y0, py0), min(y1, py1)
        tx0, tx1 = max(x0, px0), min(x1, px1)
        if ty0 < ty1 and tx0 < tx1:
            out[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0] = self.crop[
                ty0 - py0 : ty1 - py0, tx0 - px0 : tx1 - px0
            ]
        return out


def split_at_necks(logits: np.ndarray, before: list[Patch | None]) -> np.ndarray:
    """(N, H, W) logits of N tracked objects on one frame, each pixel positive for at most one
    (kept apart), with every group of touching masks shared out again along the watershed of
    its region's distance transform from the objects' cores on the frame before (`before`:
    each object's mask there, None where there is none). A pixel that changes hands takes
    the higher of the two objects' logits for its new owner and NON_OWNER_LOGIT for the old."""
    if len(logits) < 2:
        return logits
    masks = logits > 0
    owner = np.where(masks.any(axis=0), masks.argmax(axis=0) + 1, 0)
    out = logits
    for group in touching_groups(owner, len(logits)):
        y0, y1, x0, x1 = box = positive_box(np.isin(owner, [k + 1 for k in group]))
        held = owner[y0:y1, x0:x1] * np.isin(owner[y0:y1, x0:x1], [k + 1 for k in group])
        seeds = _seeds(before, group, held > 0, box)
        if len(seeds) < 2:
            continue
        # the pixels of objects without a core stay theirs
        shared = np.isin(held, [k + 1 for k in seeds])
        markers = np.zeros(held.shape, dtype=np.int32)
        for k, core in seeds.items():
            markers[core & shared] = k + 1
        distance = ndimage.distance_transform_edt(shared)
        split = watershed(-distance, markers, mask=shared)
        # pixels no core's flood reaches stay too
        moved = shared & (split > 0) & (split != held)
        if not moved.any():
            continue
        if out is logits:
            out = logits.copy()
        old, new = held[moved] - 1, split[moved] - 1
        ys, xs = np.nonzero(moved)
        ys, xs = ys + y0, xs + x0
        higher = np.maximum(logits[old, ys, xs], logits[new, ys, xs])
        out[new, ys, xs] = higher
        out[old, ys, xs] = NON_OWNER_LOGIT
    return out


def touching_groups(owner: np.ndarray, count: int) -> list[list[int]]:
    """The groups of objects (indices) whose masks touch, directly or through others, from an
    (H, W) map of owners (object index + 1, 0 for none); objects alone are left out."""
    touching = np.zeros((count + 1, count + 1), dtype=bool)
    for a, b in ((owner[:, :-1], owner[:, 1:]), (owner[:-1], owner[1:])):
        meet = (a != b) & (a > 0) & (b > 0)
        touching[a[meet], b[meet]] = True
    _, group_of = connected_components(touching, directed=False)
    members = np.flatnonzero(touching.any(axis=0) | touching.any(axis=1))
    groups: dict[int, list[int]] = {}
    for k in members:
        groups.setdefault(int(group_of[k]), []).append(int(k) - 1)
    return list(groups.values())


def _seeds(
    before: list[Patch | None], objects: list[int], region: np.ndarray, box: Box
) -> dict[int, np.ndarray]:
    """Each object's core on the frame before within `region` (cropped to `box`), without
    what another object's core also covers; objects with fewer than MIN_CORE such pixels are
    left out."""
    cores = {
        k: Patch(
            before[k].box, ndimage.binary_erosion(before[k].crop, iterations=CORE_EROSION)
        ).within(box)
        & region
        for k in objects
        if before[k] is not None
    }
    if not cores:
        return {}
    shared = np.sum(list(cores.values()), axis=0) > 1
    return {k: c & ~shared for k, c in cores.items() if (c & ~shared).sum() >= MIN_CORE}
