"""Mask post-processing: hole filling in low-res logits (8-connected, border regions too, as
the reference video predictor) and bilinear resizing to the frames' resolution."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_sam2.engine.masks import HOLE_LOGIT, fill_holes, to_frame_resolution

# background regions of one (12, 14) logit map, by name: the pixels each holds
REGIONS = {
    "interior_3": [(2, 2), (2, 3), (2, 4)],
    # three pixels touching only at corners: one 8-connected region of area 3
    "diagonal_3": [(5, 2), (6, 3), (7, 4)],
    "border_2": [(0, 12), (0, 13)],
    "block_12": [(r, c) for r in range(8, 11) for c in range(8, 12)],
    # a logit of exactly 0 is background
    "zero_1": [(4, 9)],
}


def logit_map(regions=REGIONS, shape=(12, 14), seed=0) -> torch.Tensor:
    """Positive logits everywhere but in the named background regions."""
    rng = np.random.default_rng(seed)
    logits = rng.uniform(0.5, 5.0, size=shape)
    for name, pixels in regions.items():
        for r, c in pixels:
            logits[r, c] = 0.0 if name.startswith("zero") else -rng.uniform(0.5, 5.0)
    return torch.tensor(logits, dtype=torch.float32)


def expected_fill(logits: torch.Tensor, filled: list[str], regions=REGIONS) -> torch.Tensor:
    expected = logits.clone()
    for name in filled:
        for r, c in regions[name]:
            expected[r, c] = HOLE_LOGIT
    return expected


@pytest.mark.parametrize(
    "max_area, filled",
    [
        (1, ["zero_1"]),
        # 4-connectivity would fill the diagonal pixels here, one by one
        (2, ["zero_1", "border_2"]),
        (3, ["zero_1", "border_2", "interior_3", "diagonal_3"]),
        (8, ["zero_1", "border_2", "interior_3", "diagonal_3"]),
        (12, list(REGIONS)),
    ],
)
def test_fill_holes_fills_small_8_connected_background_regions(max_area, filled):
    logits = logit_map()
    out = fill_holes(logits[None, None], max_area)
    assert out.shape == (1, 1, 12, 14) and out.dtype == torch.float32
    torch.testing.assert_close(out[0, 0], expected_fill(logits, filled), rtol=0, atol=0)
    assert HOLE_LOGIT == pytest.approx(0.1)


def test_fill_holes_leaves_the_input_unchanged():
    logits = logit_map()[None, None]
    before = logits.clone()
    fill_holes(logits, 8)
    torch.testing.assert_close(logits, before, rtol=0, atol=0)


@pytest.mark.parametrize("max_area", [0, -5])
def test_max_area_zero_or_less_is_identity(max_area):
    logits = logit_map()[None, None]
    out = fill_holes(logits, max_area)
    torch.testing.assert_close(out, logits, rtol=0, atol=0)


def test_batch_items_are_filled_independently():
    first = logit_map(seed=1)
    second_regions = {"hole_5": [(5, 5), (5, 6), (6, 5), (6, 6), (7, 5)], "one": [(11, 0)]}
    second = logit_map(second_regions, seed=2)
    out = fill_holes(torch.stack([first, second])[:, None], 3)
    filled = ["zero_1", "border_2", "interior_3", "diagonal_3"]
    torch.testing.assert_close(out[0, 0], expected_fill(first, filled), rtol=0, atol=0)
    torch.testing.assert_close(
        out[1, 0], expected_fill(second, ["one"], second_regions), rtol=0, atol=0
    )


def test_absent_object_stays_empty():
    absent = torch.full((1, 1, 32, 32), -1024.0)
    torch.testing.assert_close(fill_holes(absent, 8), absent, rtol=0, atol=0)


def test_map_without_background_is_unchanged():
    logits = torch.rand(2, 1, 16, 16) + 0.01
    torch.testing.assert_close(fill_holes(logits, 8), logits, rtol=0, atol=0)


def test_whole_small_map_of_background_counts_as_one_hole():
    logits = -torch.ones(1, 1, 2, 3)
    torch.testing.assert_close(fill_holes(logits, 6), torch.full_like(logits, HOLE_LOGIT))
    torch.testing.assert_close(fill_holes(logits, 5), logits)


# -- to_frame_resolution --------------------------------------------------------------


def test_upsampling_is_bilinear_with_align_corners_false_by_hand():
    low = torch.tensor([[[[0.0, 4.0], [8.0, 12.0]]]])
    out = to_frame_resolution(low, 4, 4)
    row0 = torch.tensor([0.0, 1.0, 3.0, 4.0])
    row1 = row0 + 8.0
    expected = torch.stack([row0, 0.75 * row0 + 0.25 * row1, 0.25 * row0 + 0.75 * row1, row1])
    assert out.shape == (1, 4, 4)
    torch.testing.assert_close(out[0], expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [(64, 80), (20, 24), (100, 30), (31, 33)])
def test_resize_matches_torch_bilinear(size):
    low = torch.randn(3, 1, 32, 32)
    out = to_frame_resolution(low, *size)
    assert out.shape == (3, *size) and out.dtype == torch.float32
    expected = F.interpolate(low, size=size, mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    # not antialiased: downsampling samples, it does not average
    if size[0] < 32:
        antialiased = F.interpolate(
            low, size=size, mode="bilinear", align_corners=False, antialias=True
        )[:, 0]
        assert not torch.allclose(out, antialiased)


def test_same_size_is_unchanged():
    low = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(to_frame_resolution(low, 16, 16), low[:, 0], rtol=0, atol=0)


def test_bfloat16_logits_come_back_as_float32():
    low = torch.randn(1, 1, 8, 8).to(torch.bfloat16)
    out = to_frame_resolution(low, 20, 12)
    assert out.dtype == torch.float32
    expected = F.interpolate(low.float(), size=(20, 12), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected[:, 0], rtol=0, atol=0)
