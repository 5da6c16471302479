"""The size cue (engine/size_cue.py): masks trimmed to an object's half-maximum edge."""

import numpy as np
import pytest
from scipy import ndimage

from napari_sam2.engine.size_cue import (
    KeptRegion,
    brightness,
    size_reference,
    trim_to_edge,
)


def disc(radius: float, shape=(96, 96), centre=(48, 48)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def blurred(mask: np.ndarray, level: float, background: float, seed: int = 0) -> np.ndarray:
    """A fluorescence-like frame (values 0..1): a flat object blurred by a 1.5 px PSF, with
    a little noise."""
    noise = np.random.default_rng(seed).normal(0.0, 0.01, mask.shape)
    image = background + (level - background) * ndimage.gaussian_filter(mask * 1.0, 1.5)
    return np.clip(image + noise, 0.0, 1.0).astype(np.float32)


def kept_mask(region: KeptRegion, shape) -> np.ndarray:
    logits = np.full(shape, 5.0, dtype=np.float32)
    return region.apply(logits) > 0


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_an_oversized_end_slice_mask_shrinks_to_the_true_cross_section():
    middle, end = disc(20), disc(9)
    reference = size_reference(brightness(blurred(middle, 0.8, 0.1)), middle)
    # the model drew the end slice as large as the middle one
    oversized = middle.copy()
    region = trim_to_edge(brightness(blurred(end, 0.8, 0.1, seed=1)), oversized, reference)
    trimmed = kept_mask(region, middle.shape)
    assert iou(oversized, end) < 0.25
    assert iou(trimmed, end) > 0.85


def test_a_dark_object_on_a_bright_field_is_trimmed_to_its_dark_part():
    middle, end = disc(20), disc(9)
    reference = size_reference(brightness(blurred(middle, 0.15, 0.85)), middle)
    assert reference is not None and not reference.bright
    region = trim_to_edge(brightness(blurred(end, 0.15, 0.85, seed=1)), middle, reference)
    assert iou(kept_mask(region, middle.shape), end) > 0.85


def test_the_trimmed_mask_is_one_part_with_its_holes_filled():
    middle = disc(20)
    reference = size_reference(brightness(blurred(middle, 0.8, 0.1)), middle)
    # a bright ring with a dim centre, and a bright speck apart from it
    ring = disc(14) & ~disc(4)
    speck = disc(2, centre=(48, 76))
    image = brightness(blurred(ring | speck, 0.8, 0.1, seed=2))
    region = trim_to_edge(image, disc(30), reference)
    kept = kept_mask(region, middle.shape)
    assert kept[48, 48]  # the hole is filled
    assert not kept[48, 76]  # the speck is not the largest part
    assert ndimage.label(kept)[1] == 1


def test_a_slice_without_the_object_is_emptied():
    middle = disc(20)
    reference = size_reference(brightness(blurred(middle, 0.8, 0.1)), middle)
    nothing = brightness(blurred(np.zeros_like(middle), 0.8, 0.1, seed=3))
    region = trim_to_edge(nothing, middle, reference)
    assert not kept_mask(region, middle.shape).any()


@pytest.mark.parametrize("case", ["empty mask", "no contrast", "whole frame"])
def test_no_reference_where_there_is_nothing_to_measure(case):
    middle = disc(20)
    image = brightness(blurred(middle, 0.8, 0.1))
    if case == "empty mask":
        assert size_reference(image, np.zeros_like(middle)) is None
    elif case == "no contrast":
        flat = brightness(blurred(middle, 0.5, 0.48))
        assert size_reference(flat, middle) is None
    else:  # no ring around a mask that covers the frame
        assert size_reference(image, np.ones_like(middle)) is None


def test_an_empty_mask_is_left_alone():
    middle = disc(20)
    image = brightness(blurred(middle, 0.8, 0.1))
    reference = size_reference(image, middle)
    assert trim_to_edge(image, np.zeros_like(middle), reference) is None


def test_kept_pixels_stay_positive_and_removed_ones_go_just_below_zero():
    region = KeptRegion(2, 3, np.array([[True, False], [True, True]]))
    logits = np.array(
        [[4.0, 4.0, 4.0, 4.0, 4.0, 4.0]] * 2
        + [[4.0, 4.0, 4.0, 2.0, 3.0, 4.0], [4.0, 4.0, 4.0, -1.0, 5.0, -3.0]]
    )
    out = region.apply(logits.astype(np.float32))
    assert out[2, 3] == 2.0 and out[3, 4] == 5.0  # kept: unchanged
    assert 0.0 < out[3, 3] < 0.5  # a filled hole: just above zero
    assert -0.5 < out[2, 4] < 0.0 and -0.5 < out[0, 0] < 0.0  # removed: just below
    assert out[3, 5] == -3.0  # background stays what it was
