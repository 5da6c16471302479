"""When a masklet counts as divided (`DivisionRule`), and the geometry it starts from: the two
lobes of a pinched mask and the mask cut between them."""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from ..errors import SAM2Error


@dataclass(frozen=True)
class DivisionRule:
    """When a masklet counts as divided.

    A mask is a candidate when it has two lobes: two maxima of its distance transform, each
    at least `min_lobe` of the largest, joined by a neck narrower than `max_neck` of the
    smaller lobe. SAM 2 then decides, as for clicks in an image: one click on each lobe, no
    memory, and of each click's three candidate masks the smallest that could be a daughter
    (between `min_fraction` and 1 - `min_fraction` of the masklet, 70 % inside it). The lobes
    are two cells when those two masks overlap by less than `max_click_iou` (IoU). The split
    must be seen on `persistence` of the `window` frames from the first one it is seen on;
    the division frame is that first one. A masklet that follows one daughter only (it keeps
    less than `max_kept` of its area from one frame to the next) divides at once when a click
    in the middle of what it left finds a daughter-sized cell that no object holds. A
    daughter is not checked for `min_cycle` frames after her birth (a cell cycle is longer).
    A confirmed division moves back, up to `backtrack` frames, over frames where the masklet
    already had two lobes and at least `backtrack_area` of its area on the division frame
    (SAM 2 is sure of two cells a little after they separate).
    """

    min_fraction: float = 0.25
    min_area: int = 20
    persistence: int = 1
    window: int = 3
    min_lobe: float = 0.5
    max_neck: float = 0.8
    max_click_iou: float = 0.3
    max_kept: float = 0.7
    min_cycle: int = 5
    backtrack: int = 4
    backtrack_area: float = 0.85

    def __post_init__(self) -> None:
        if not 0.0 < self.min_fraction <= 0.5:
            raise SAM2Error("min_fraction must be in (0, 0.5]")
        if self.persistence < 1 or self.min_area < 1 or self.window < self.persistence:
            raise SAM2Error("persistence and min_area must be 1 or more, window >= persistence")


def lobes(mask: np.ndarray, rule: DivisionRule) -> tuple[np.ndarray, np.ndarray] | None:
    """The centres (y, x) of a mask's two lobes when it looks pinched, else None."""
    if mask.sum() < 2 * rule.min_area:
        return None
    distance = ndimage.gaussian_filter(ndimage.distance_transform_edt(mask), 1.0)
    top = distance.max()
    peaks = peak_local_max(
        distance,
        min_distance=max(2, int(0.5 * top)),
        threshold_abs=rule.min_lobe * top,
        labels=mask.astype(np.int32),
        num_peaks=4,
        exclude_border=False,
    )
    if len(peaks) < 2:
        return None
    first, second = peaks[0], peaks[1]
    steps = int(np.hypot(*(second - first))) + 2
    line = np.linspace(first, second, steps).round().astype(int)
    neck = distance[line[:, 0], line[:, 1]].min()
    if neck > rule.max_neck * min(distance[tuple(first)], distance[tuple(second)]):
        return None
    return first, second


def lobe_pieces(mask: np.ndarray, centres) -> list[np.ndarray]:
    """A mask cut in two by a watershed of its distance transform from two lobe centres."""
    markers = np.zeros(mask.shape, dtype=np.int32)
    for k, (y, x) in enumerate(centres, start=1):
        markers[int(y), int(x)] = k
    regions = watershed(-ndimage.distance_transform_edt(mask), markers, mask=mask)
    return [regions == 1, regions == 2]


def largest_piece(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of a mask (the mask itself when it is one piece)."""
    parts, count = ndimage.label(mask)
    if count > 1:
        return parts == np.bincount(parts.ravel())[1:].argmax() + 1
    return mask
