"""Parity of our Hiera trunk and FPN neck with the reference image encoder."""

import pytest
import torch

from napari_sam2.model import CONFIGS
from napari_sam2.model.build import image_encoder_of
from napari_sam2.model.hiera import DropPath, Hiera, window_partition, window_unpartition
from napari_sam2.model.image_encoder import FpnNeck, ImageEncoder
from napari_sam2.model.position_encoding import PositionEmbeddingSine

from reference import build_reference

NAMES = ["sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2_hiera_large"]
TOLERANCE = 1e-4


def build_ours(name: str) -> ImageEncoder:
    """Our image encoder, built from our config of `name` (the reference is built from its
    yaml, so the comparison also checks the config's facts)."""
    return image_encoder_of(CONFIGS[name]).eval()


def randomize(module: torch.nn.Module, seed: int = 1) -> None:
    """Perturb the parameters a fresh model holds at constants (zero position embeddings,
    unit LayerNorms, zero biases), which would otherwise hide mistakes in their paths."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if "pos_embed" in name:
                p.copy_(0.5 * noise)
            elif p.ndim == 1:
                p.add_(0.1 * noise)


def compare_with_reference(name: str, image_size: int | None, batch: int) -> list[float]:
    """Check the state dict's keys and shapes, load the reference's weights into ours, and
    return the max abs differences of the three features, then the three positions."""
    reference = build_reference(name, image_size=image_size).image_encoder.eval()
    randomize(reference)
    # built without storage: initializing the large trunk's weights only to overwrite them
    # would take seconds
    with torch.device("meta"):
        ours = build_ours(name)
    want = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == want
    ours.load_state_dict(reference.state_dict(), strict=True, assign=True)

    side = image_size or 1024
    images = torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = reference(images)
        features, positions = ours(images)

    sides = [side // 4, side // 8, side // 16]
    assert [f.shape for f in features] == [(batch, 256, s, s) for s in sides]
    assert [p.shape for p in positions] == [(batch, 256, s, s) for s in sides]
    pairs = zip(
        features + positions, expected["backbone_fpn"] + expected["vision_pos_enc"], strict=True
    )
    diffs = []
    for got, want in pairs:
        assert got.shape == want.shape and got.dtype == want.dtype
        diffs.append((got - want).abs().max().item())
    return diffs


# a batch of two on the smallest model checks that windows are split and merged per image
@pytest.mark.parametrize("name, batch", [(name, 2 if "tiny" in name else 1) for name in NAMES])
def test_state_dict_and_outputs_match_reference_at_256(name, batch):
    diffs = compare_with_reference(name, 256, batch)
    assert max(diffs) < TOLERANCE, diffs


@pytest.mark.slow
def test_outputs_match_reference_at_1024():
    diffs = compare_with_reference("sam2.1_hiera_tiny", None, batch=1)
    assert max(diffs) < TOLERANCE, diffs


def test_windows_round_trip_with_padding():
    x = torch.randn(2, 10, 13, 3)
    windows = window_partition(x, 4)
    assert windows.shape == (2 * 3 * 4, 4, 4, 3)
    assert torch.equal(window_unpartition(windows, (10, 13)), x)


def test_avg_fuse_halves_the_sum():
    torch.manual_seed(0)
    levels = [torch.randn(1, 8, 8, 8), torch.randn(1, 16, 4, 4)]
    sums = FpnNeck(PositionEmbeddingSine(4), 4, [16, 8], fuse_type="sum")
    avgs = FpnNeck(PositionEmbeddingSine(4), 4, [16, 8], fuse_type="avg")
    avgs.load_state_dict(sums.state_dict())
    summed, _ = sums(levels)
    averaged, _ = avgs(levels)
    assert torch.allclose(averaged[0], summed[0] / 2)
    assert torch.equal(averaged[1], summed[1])


def test_mismatched_trunk_and_neck_are_rejected():
    neck = FpnNeck(PositionEmbeddingSine(256), 256, [384, 192, 96, 48])
    with pytest.raises(ValueError, match="do not match"):
        ImageEncoder(Hiera(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2)), neck)


def test_drop_path_drops_whole_samples_only_while_training():
    x = torch.ones(64, 5, 3)
    drop = DropPath(0.5)
    assert torch.equal(drop.eval()(x), x)
    dropped = drop.train()(x)
    per_sample = dropped.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(per_sample.min(1).values, per_sample.max(1).values)
