"""Frozen dataclass configurations of the eight official SAM 2 / SAM 2.1 models.

Values are facts taken from the official model configurations; everything the network needs
to be built is here, so a reader finds the architecture without yaml or hydra.
"""

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from ..errors import SAM2Error


@dataclass(frozen=True)
class HieraConfig:
    """The Hiera image trunk: widths, depths and where attention is windowed or global."""

    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (1, 2, 7, 2)
    global_att_blocks: tuple[int, ...] = (5, 7, 9)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (7, 7)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)

    @property
    def channels(self) -> tuple[int, ...]:
        """Channels of the trunk's stage outputs, highest resolution first."""
        return tuple(self.embed_dim * 2**i for i in range(len(self.stages)))


@dataclass(frozen=True)
class SAM2Config:
    """One SAM 2 model: the trunk, the fixed-width heads and the tracking options."""

    name: str
    trunk: HieraConfig
    image_size: int = 1024
    # neck and SAM heads
    d_model: int = 256
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    iou_head_hidden_dim: int = 256
    fpn_top_down_levels: tuple[int, ...] = (2, 3)
    scalp: int = 1
    # memory
    mem_dim: int = 64
    num_maskmem: int = 7
    memory_attention_layers: int = 4
    memory_attention_ffn_dim: int = 2048
    fuser_layers: int = 2
    max_obj_ptrs_in_encoder: int = 16
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    # SAM 2.1 additions: an occlusion embedding added to memories of frames without the
    # object, and signed, projected temporal encodings of object pointers
    no_obj_embed_spatial: bool = True
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    # the video predictor's options (facts of the official inference defaults)
    dynamic_multimask_via_stability: bool = True
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98
    binarize_mask_from_pts_for_mem_enc: bool = True
    max_cond_frames_in_attn: int = -1

    @property
    def backbone_stride(self) -> int:
        return 16

    @property
    def image_embedding_size(self) -> int:
        """Side of the stride-16 feature map the mask decoder and memory work on."""
        return self.image_size // self.backbone_stride

    def at_image_size(self, image_size: int) -> "SAM2Config":
        """The same architecture at another input size (a multiple of 32)."""
        if image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        return replace(self, image_size=image_size)


_TINY = HieraConfig()
_SMALL = HieraConfig(stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13))
_BASE_PLUS = HieraConfig(
    embed_dim=112,
    num_heads=2,
    stages=(2, 3, 16, 3),
    global_att_blocks=(12, 16, 20),
    window_pos_embed_bkg_spatial_size=(14, 14),
)
_LARGE = HieraConfig(
    embed_dim=144,
    num_heads=2,
    stages=(2, 6, 36, 4),
    global_att_blocks=(23, 33, 43),
    window_pos_embed_bkg_spatial_size=(7, 7),
    window_spec=(8, 4, 16, 8),
)

# SAM 2.0 lacks the 2.1 memory additions; everything else is shared.
_SAM2_0 = dict(
    no_obj_embed_spatial=False,
    add_tpos_enc_to_obj_ptrs=False,
    proj_tpos_enc_in_obj_ptrs=False,
    use_signed_tpos_enc_to_obj_ptrs=False,
)

CONFIGS: dict[str, SAM2Config] = {
    "sam2_hiera_tiny": SAM2Config("sam2_hiera_tiny", _TINY, **_SAM2_0),
    "sam2_hiera_small": SAM2Config("sam2_hiera_small", _SMALL, **_SAM2_0),
    "sam2_hiera_base_plus": SAM2Config("sam2_hiera_base_plus", _BASE_PLUS, **_SAM2_0),
    "sam2_hiera_large": SAM2Config("sam2_hiera_large", _LARGE, **_SAM2_0),
    "sam2.1_hiera_tiny": SAM2Config("sam2.1_hiera_tiny", _TINY),
    "sam2.1_hiera_small": SAM2Config("sam2.1_hiera_small", _SMALL),
    "sam2.1_hiera_base_plus": SAM2Config("sam2.1_hiera_base_plus", _BASE_PLUS),
    "sam2.1_hiera_large": SAM2Config("sam2.1_hiera_large", _LARGE),
}

MODEL_NAMES: tuple[str, ...] = tuple(CONFIGS)


def config_to_dict(config: SAM2Config) -> dict[str, Any]:
    """The configuration as JSON-ready data (tuples become lists), as checkpoints store it."""

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value

    return plain(asdict(config))


def config_from_dict(data: dict[str, Any]) -> SAM2Config:
    """Inverse of `config_to_dict`; unknown keys are an error (a newer file format)."""

    def build(cls, values: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise SAM2Error(f"unknown model configuration fields: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    try:
        values = dict(data)
        values["trunk"] = build(HieraConfig, values["trunk"])
        return build(SAM2Config, values)
    except (KeyError, TypeError, ValueError) as exc:
        raise SAM2Error(f"malformed model configuration ({type(exc).__name__}: {exc})") from exc
