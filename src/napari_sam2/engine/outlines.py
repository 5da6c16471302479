"""Outlines snapped to the image (an option of ours, not SAM 2's).

A small model's mask is drawn from logits a quarter of its input's resolution, so its outline
wanders a pixel or two either side of the object's edge. Where the object stands out from its
surroundings, the image itself says where the edge is: near the outline, one brightness
level separates the object from what is around it. `snap_outline` finds, within `BAND`
pixels of the model's outline, the brightness level that agrees best with the model's own
mask there, and redraws the outline along it. The model still decides which object and
roughly where its edge is (the level is the one it agrees with, whatever the kind of image);
the image decides the last pixel. Masks the image does not support (no level separating
the object from its surroundings better than the model's outline) are left as they are.

A mask can also fall short of its object by more than the band: held to where remembered
frames had a moving cell, it keeps half of it. With `grow_to` (an area), the snapped mask
takes in the whole of the region at its level that it lies in, as long as the result stays
within that area (the object's size on its prompted frame, with room to grow): where the
region at that level is larger (a touching neighbour as bright), nothing is grown.
"""

import numpy as np
from scipy import ndimage

from .masks import positive_box
from .size_cue import MIN_CONTRAST, KeptRegion

# how far from the model's outline, in frame pixels, the outline may move
BAND = 2
# brightness levels tried: this many quantiles of the pixels near the outline
LEVELS = 32
# masks smaller than this (pixels) are too small to have an outline worth moving
MIN_AREA = 20


def snap_outline(
    image: np.ndarray, mask: np.ndarray, grow_to: float | None = None
) -> KeptRegion | None:
    """`mask` ((H, W) bool) with its outline moved to the brightness level of `image` ((H, W)
    float, from `size_cue.brightness`) that best agrees with it within BAND pixels of the
    outline: pixels deeper inside are kept, pixels farther out stay out; the connected parts
    that hold pixels of `mask`, holes filled. With `grow_to`, grown to the regions at that
    level it lies in where they hold at most `grow_to` pixels (`grown_to_level`). None where
    there is nothing to snap: a mask under MIN_AREA pixels, no pixels on one side of its
    outline, or the two sides less than MIN_CONTRAST apart in brightness (nothing in the
    image to snap to)."""
    if int(mask.sum()) < MIN_AREA:
        return None
    box = positive_box(mask)
    y0, y1, x0, x1 = box
    height, width = mask.shape
    # the mask's box grown by the band and a pixel, so that erosion and dilation see its edge
    y0, x0 = max(y0 - BAND - 1, 0), max(x0 - BAND - 1, 0)
    y1, x1 = min(y1 + BAND + 1, height), min(x1 + BAND + 1, width)
    inside = mask[y0:y1, x0:x1]
    region = image[y0:y1, x0:x1]
    core = ndimage.binary_erosion(inside, iterations=BAND, border_value=1)
    near = ndimage.binary_dilation(inside, iterations=BAND) & ~core
    values, labels = region[near], inside[near]
    if labels.all() or not labels.any():
        return None
    contrast = float(values[labels].mean()) - float(values[~labels].mean())
    if abs(contrast) < MIN_CONTRAST:
        return None
    bright = contrast > 0
    if not bright:
        values, region = -values, -region
    level = best_level(values, labels)
    kept = core | (near & (region >= level))
    # only the parts the model's mask has pixels in: a dividing cell keeps both halves, a
    # neighbour's rim that only the band reached is dropped
    parts, count = ndimage.label(kept)
    if count == 0:
        return None
    ours = np.zeros(count + 1, bool)
    ours[np.unique(parts[inside & kept])] = True
    ours[0] = False
    snapped = KeptRegion(y0, x0, ndimage.binary_fill_holes(ours[parts]))
    if grow_to is None:
        return snapped
    return grown_to_level(image if bright else -image, snapped, level, grow_to) or snapped


def grown_to_level(
    image: np.ndarray, snapped: KeptRegion, level: float, grow_to: float
) -> KeptRegion | None:
    """The snapped mask with the connected regions of `image >= level` it lies in (holes
    filled), looked for as far from its box as an object of `grow_to` pixels is wide; None
    where that adds nothing, holds more than `grow_to` pixels, or reaches farther."""
    height, width = image.shape
    reach = int(np.ceil(np.sqrt(grow_to / np.pi)))
    h, w = snapped.mask.shape
    y0, x0 = max(snapped.y0 - reach, 0), max(snapped.x0 - reach, 0)
    y1 = min(snapped.y0 + h + reach, height)
    x1 = min(snapped.x0 + w + reach, width)
    placed = np.zeros((y1 - y0, x1 - x0), bool)
    placed[snapped.y0 - y0 : snapped.y0 - y0 + h, snapped.x0 - x0 : snapped.x0 - x0 + w] = (
        snapped.mask
    )
    above = image[y0:y1, x0:x1] >= level
    parts, count = ndimage.label(above)
    ours = np.zeros(count + 1, bool)
    ours[np.unique(parts[placed & above])] = True
    ours[0] = False
    taken = ours[parts]
    # a region cut by the window's edge inside the frame goes on beyond it: too large
    cut = (
        (y0 > 0 and taken[0].any())
        or (y1 < height and taken[-1].any())
        or (x0 > 0 and taken[:, 0].any())
        or (x1 < width and taken[:, -1].any())
    )
    if cut:
        return None
    grown = ndimage.binary_fill_holes(placed | taken)
    area = int(grown.sum())
    if area <= int(snapped.mask.sum()) or area > grow_to:
        return None
    return KeptRegion(y0, x0, grown)


def best_level(values: np.ndarray, labels: np.ndarray) -> float:
    """Of LEVELS quantiles of `values`, the level whose `values >= level` agrees with
    `labels` (bool, same length) on the most pixels."""
    levels = np.quantile(values, np.linspace(0.02, 0.98, LEVELS))
    inside = np.sort(values[labels])
    outside = np.sort(values[~labels])
    # pixels of the mask at or above each level, and pixels outside it below each level
    kept_inside = len(inside) - np.searchsorted(inside, levels, side="left")
    left_outside = np.searchsorted(outside, levels, side="left")
    return float(levels[int(np.argmax(kept_inside + left_outside))])
