"""The reference SAM 2 (Meta's `sam2` package) as a test oracle: builders and weight copying.

Only tests import this. The reference is built with random weights at the same image size as
ours, and its state dict is copied into our model so both compute the same function.
"""

import pytest
import torch

REFERENCE_CONFIGS = {
    "sam2_hiera_tiny": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_small": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_base_plus": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_large": "configs/sam2/sam2_hiera_l.yaml",
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}


def _overrides(image_size: int | None) -> list[str]:
    if image_size is None:
        return []
    feat = image_size // 16
    return [
        f"++model.image_size={image_size}",
        f"++model.memory_attention.layer.self_attention.feat_sizes=[{feat},{feat}]",
        f"++model.memory_attention.layer.cross_attention.feat_sizes=[{feat},{feat}]",
    ]


def build_reference(name: str, image_size: int | None = None, seed: int = 0):
    """A random-init reference `SAM2Base` (eval mode, CPU), with the video predictor's
    post-processing options (dynamic multimask via stability)."""
    build_sam = pytest.importorskip("sam2.build_sam")
    torch.manual_seed(seed)
    return build_sam.build_sam2(
        REFERENCE_CONFIGS[name],
        ckpt_path=None,
        device="cpu",
        mode="eval",
        hydra_overrides_extra=_overrides(image_size),
    )


def build_reference_video_predictor(
    name: str, image_size: int | None = None, seed: int = 0, fill_hole_area: int = 0
):
    """A random-init reference `SAM2VideoPredictor` (eval mode, CPU).

    Corrections on tracked frames become conditioning frames
    (`add_all_frames_to_correct_as_cond`), which is our tracker's documented semantics.
    """
    build_sam = pytest.importorskip("sam2.build_sam")
    torch.manual_seed(seed)
    overrides = _overrides(image_size) + [
        f"++model.fill_hole_area={fill_hole_area}",
        "++model.add_all_frames_to_correct_as_cond=true",
    ]
    predictor = build_sam.build_sam2_video_predictor(
        REFERENCE_CONFIGS[name],
        ckpt_path=None,
        device="cpu",
        mode="eval",
        hydra_overrides_extra=overrides,
    )
    # the builder appends its own fill_hole_area=8 after ours; on the CPU the reference
    # cannot fill holes anyway, so make that explicit
    predictor.fill_hole_area = fill_hole_area
    return predictor


def perturb_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Make hidden parts of a freshly initialized model visible to parity tests.

    At initialization layer-scale `gamma`s are 1e-6 and norms are identity-like, so a bug
    there would not change any output; give them random values.
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(0.5 * torch.randn(p.shape, generator=generator))
            elif p.ndim == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=generator))
    return model


def copy_weights(reference: torch.nn.Module, ours: torch.nn.Module) -> None:
    """Load the reference's parameters and buffers into ours, strictly."""
    ours.load_state_dict(reference.state_dict(), strict=True)
