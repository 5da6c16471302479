"""The size cue along Z: a fluorescent object's edge lies where its brightness falls half way
from its own level to the background around it, so a mask drawn too large on a slice past the
object's middle can be trimmed to that half-maximum edge, measured against its prompted slice."""

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .masks import HOLE_LOGIT, positive_box

# light smoothing in y, x only: noise would otherwise cut holes into the kept region
SMOOTHING_SIGMA = 1.0
# where between background (0) and the object's own level (1) its edge is drawn
EDGE_LEVEL = 0.5
# the object's level: this percentile of its brightness inside its prompted mask (100 minus
# it for a dark object), its bright core rather than the blurred rim the mask also covers
LEVEL_PERCENTILE = 75.0
# the background is read in a ring this many pixels outside the prompted mask: close enough
# to be local (uneven illumination), far enough to miss the object's blurred rim
RING_PIXELS = (3, 8)
# the percentile of the ring taken as background (for a bright object; 100 minus it for a
# dark one): the darker side, so that a neighbour inside the ring does not raise it
BACKGROUND_PERCENTILE = 25.0
# objects this close to their background (in the normalized 0..1 range) have no edge to find
MIN_CONTRAST = 0.05


@dataclass(frozen=True)
class SizeReference:
    """An object's brightness on its prompted frame and its local background, in the
    normalized 0..1 range of `brightness`; `level < background` for a dark object."""

    level: float
    background: float

    @property
    def edge(self) -> float:
        return self.background + EDGE_LEVEL * (self.level - self.background)

    @property
    def bright(self) -> bool:
        return self.level > self.background


@dataclass
class KeptRegion:
    """The pixels of an object's mask on one frame that the size cue kept: `mask` (h, w) bool
    placed at rows y0.., columns x0.. of the frame (an empty mask when nothing was kept)."""

    y0: int
    x0: int
    mask: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.mask.nbytes

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """(H, W) logits with every pixel outside the kept region just below 0 and every
        pixel inside it at least just above 0 (holes the cue filled)."""
        out = np.minimum(logits, -HOLE_LOGIT)
        h, w = self.mask.shape
        window = (slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w))
        out[window] = np.where(self.mask, np.maximum(logits[window], HOLE_LOGIT), out[window])
        return out


def brightness(frame: np.ndarray) -> np.ndarray:
    """A normalized frame ((H, W) or (H, W, C), values 0..1) as one smoothed channel, (H, W)
    float32: the mean of its channels, Gaussian-smoothed in y and x."""
    frame = np.asarray(frame, dtype=np.float32)
    if frame.ndim == 3:
        frame = frame.mean(axis=-1)
    return ndimage.gaussian_filter(frame, SMOOTHING_SIGMA)


def size_reference(image: np.ndarray, mask: np.ndarray) -> SizeReference | None:
    """The object's reference from its prompted frame: `image` from `brightness`, `mask` its
    (H, W) bool mask there. None when there is nothing to measure against: an empty mask, no
    ring around it inside the frame, or an object no brighter nor darker than its ring."""
    if not mask.any():
        return None
    near, far = RING_PIXELS
    ring = ndimage.binary_dilation(mask, iterations=far) & ~ndimage.binary_dilation(
        mask, iterations=near
    )
    if not ring.any():
        return None
    bright = float(np.median(image[mask])) >= float(np.median(image[ring]))
    q = LEVEL_PERCENTILE if bright else 100.0 - LEVEL_PERCENTILE
    level = float(np.percentile(image[mask], q))
    q = BACKGROUND_PERCENTILE if bright else 100.0 - BACKGROUND_PERCENTILE
    background = float(np.percentile(image[ring], q))
    if abs(level - background) < MIN_CONTRAST:
        return None
    return SizeReference(level, background)


def trim_to_edge(
    image: np.ndarray, mask: np.ndarray, reference: SizeReference
) -> KeptRegion | None:
    """The part of `mask` ((H, W) bool) inside the object's half-maximum edge on this frame:
    pixels brighter than `reference.edge` (darker, for a dark object), their largest
    connected part, holes filled. None when the mask is empty (nothing to trim)."""
    box = positive_box(mask)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    inside = mask[y0:y1, x0:x1]
    region = image[y0:y1, x0:x1]
    passes = region >= reference.edge if reference.bright else region <= reference.edge
    kept = inside & passes
    parts, count = ndimage.label(kept)
    if count > 1:
        sizes = np.bincount(parts.ravel())
        sizes[0] = 0
        kept = parts == int(np.argmax(sizes))
    if count:
        kept = ndimage.binary_fill_holes(kept)
    return KeptRegion(y0, x0, kept)
