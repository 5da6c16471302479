"""Parity of the memory encoder with the reference `sam2` (random weights, same inputs)."""

import pytest
import torch

from napari_sam2.model import CONFIGS
from napari_sam2.model.build import memory_encoder_of
from napari_sam2.model.memory_encoder import MaskDownSampler, MemoryEncoder

from reference import build_reference, perturb_

IMAGE_SIZE = 256
NAMES = ["sam2.1_hiera_tiny", "sam2_hiera_tiny"]


def _ours() -> MemoryEncoder:
    """Our memory encoder, built as the official models build it."""
    return memory_encoder_of(CONFIGS["sam2.1_hiera_tiny"])


@pytest.fixture(scope="module", params=NAMES)
def encoders(request):
    reference = build_reference(request.param, image_size=IMAGE_SIZE).memory_encoder.eval()
    perturb_(reference, seed=1)
    ours = _ours().eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def test_state_dict_matches_reference(encoders):
    reference, ours = encoders
    ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in _ours().state_dict().items()}
    assert our_shapes == ref_shapes


@pytest.mark.parametrize("skip_mask_sigmoid", [False, True])
def test_forward_matches_reference(encoders, skip_mask_sigmoid):
    reference, ours = encoders
    side = IMAGE_SIZE // 16
    g = torch.Generator().manual_seed(0)
    pix_feat = torch.randn(2, 256, side, side, generator=g)
    masks = 4 * torch.randn(2, 1, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    with torch.no_grad():
        expected = reference(pix_feat, masks, skip_mask_sigmoid=skip_mask_sigmoid)
        features, pos = ours(pix_feat, masks, skip_mask_sigmoid=skip_mask_sigmoid)
    assert features.shape == (2, 64, side, side)
    assert pos.shape == (2, 64, side, side)
    assert (features - expected["vision_features"]).abs().max() < 1e-4
    assert (pos - expected["vision_pos_enc"][0]).abs().max() < 1e-4
    # the mask matters: a different mask must give different features
    with torch.no_grad():
        other, _ = ours(pix_feat, -masks, skip_mask_sigmoid=skip_mask_sigmoid)
    assert (other - features).abs().max() > 1e-2


def test_mask_downsampler_shapes():
    downsampler = MaskDownSampler(embed_dim=32, kernel_size=3, stride=2, padding=1)
    convs = [m for m in downsampler.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 16, 64, 256, 32]
    out = downsampler(torch.zeros(1, 1, 64, 48))
    assert out.shape == (1, 32, 4, 3)
    with pytest.raises(ValueError):
        MaskDownSampler(stride=3, total_stride=16)
