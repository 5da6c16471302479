"""Frozen dataclass configurations of the eight official SAM 2 / SAM 2.1 models.

Values are facts taken from the official model configurations; everything the network needs
to be built is here, so a reader finds the architecture without yaml or hydra.
"""

import contextlib
import math
import operator
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
    # ours, not SAM 2's (its behaviour is the default): how many frames away a prompted
    # frame's spatial memory is still attended to by tracked frames that have a tracked
    # frame's memory to attend to (-1: always; beyond it the prompt's object pointer only),
    # and whether frames where the object was judged absent are remembered (SAM 2: yes)
    prompt_memory_reach: int = -1
    remember_absent: bool = True

    @property
    def backbone_stride(self) -> int:
        return 16

    @property
    def image_embedding_size(self) -> int:
        """Side of the stride-16 feature map the mask decoder and memory work on."""
        return self.image_size // self.backbone_stride

    def at_image_size(self, image_size: int) -> "SAM2Config":
        """The same architecture at another input size (a multiple of 32)."""
        if not isinstance(image_size, bool):
            with contextlib.suppress(TypeError):  # numpy integers are integers too
                image_size = operator.index(image_size)
        _check_image_size(image_size)
        return replace(self, image_size=image_size)


# Bounds far beyond any SAM 2 model: a value outside them is a damaged or hostile file, and
# building it would exhaust memory or fail deep inside torch.
MAX_IMAGE_SIZE = 8192
MAX_WIDTH = 16384
MAX_DEPTH = 256


def _check_image_size(image_size: object) -> None:
    if type(image_size) is not int or not 32 <= image_size <= MAX_IMAGE_SIZE or image_size % 32:
        raise SAM2Error(
            f"image_size must be a multiple of 32 from 32 to {MAX_IMAGE_SIZE}, got {image_size!r}"
        )


def validate_config(config: SAM2Config) -> None:
    """Raise a SAM2Error naming the first field of `config` that no SAM 2 network can have."""
    problems = _config_problems(config)
    if problems:
        raise SAM2Error(f"model configuration {config.name!r}: {problems[0]}")


def _config_problems(config: SAM2Config) -> list[str]:
    problems: list[str] = []

    def need(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    def count(value: object, low: int, high: int) -> bool:
        return type(value) is int and low <= value <= high

    def counts(value: object, low: int, high: int, length: int | None = None) -> bool:
        return (
            isinstance(value, tuple)
            and len(value) > 0
            and (length is None or len(value) == length)
            and all(count(v, low, high) for v in value)
        )

    t = config.trunk
    need(isinstance(config.name, str) and bool(config.name), "name must be a non-empty text")
    if not isinstance(t, HieraConfig):
        return [*problems, "trunk must be a Hiera configuration"]
    need(count(t.embed_dim, 1, MAX_WIDTH), f"trunk.embed_dim must be 1..{MAX_WIDTH}")
    need(count(t.num_heads, 1, 64), "trunk.num_heads must be 1..64")
    need(
        counts(t.stages, 1, MAX_DEPTH, length=4),
        f"trunk.stages must be 4 block counts of 1..{MAX_DEPTH}",
    )
    if problems:
        return problems
    need(t.embed_dim % t.num_heads == 0, "trunk.embed_dim must be divisible by trunk.num_heads")
    need(counts(t.window_spec, 1, 1024, length=4), "trunk.window_spec must be 4 sizes of 1..1024")
    need(
        isinstance(t.global_att_blocks, tuple)
        and all(count(b, 0, sum(t.stages) - 1) for b in t.global_att_blocks),
        f"trunk.global_att_blocks must be block indices 0..{sum(t.stages) - 1}",
    )
    need(
        counts(t.window_pos_embed_bkg_spatial_size, 1, 1024, length=2),
        "trunk.window_pos_embed_bkg_spatial_size must be 2 sizes of 1..1024",
    )
    try:
        _check_image_size(config.image_size)
    except SAM2Error as exc:
        problems.append(str(exc))
    widths = ("d_model", "decoder_mlp_dim", "iou_head_hidden_dim", "memory_attention_ffn_dim")
    for name in widths:
        need(count(getattr(config, name), 1, MAX_WIDTH), f"{name} must be 1..{MAX_WIDTH}")
    need(count(config.decoder_heads, 1, 64), "decoder_heads must be 1..64")
    need(count(config.mem_dim, 1, MAX_WIDTH), f"mem_dim must be 1..{MAX_WIDTH}")
    if problems:
        return problems
    # the decoder's cross-attention halves d_model; RoPE rotates pairs along x and y; an object
    # pointer of d_model channels is split into d_model / mem_dim memory tokens
    need(
        config.d_model % (2 * config.decoder_heads) == 0,
        "d_model must be divisible by 2 x decoder_heads",
    )
    need(config.d_model % 4 == 0, "d_model must be a multiple of 4")
    need(config.d_model % config.mem_dim == 0, "d_model must be a multiple of mem_dim")
    need(
        isinstance(config.fpn_top_down_levels, tuple)
        and all(count(v, 0, 3) for v in config.fpn_top_down_levels),
        "fpn_top_down_levels must be levels 0..3",
    )
    need(config.scalp == 1, "scalp must be 1 (SAM 2 uses three of the four trunk levels)")
    need(count(config.num_maskmem, 1, 64), "num_maskmem must be 1..64")
    need(count(config.memory_attention_layers, 1, 64), "memory_attention_layers must be 1..64")
    need(count(config.fuser_layers, 0, 64), "fuser_layers must be 0..64")
    need(count(config.max_obj_ptrs_in_encoder, 1, 4096), "max_obj_ptrs_in_encoder must be 1..4096")
    need(
        type(config.max_cond_frames_in_attn) is int
        and (config.max_cond_frames_in_attn == -1 or config.max_cond_frames_in_attn >= 1),
        "max_cond_frames_in_attn must be -1 (all) or at least 1",
    )
    need(
        type(config.prompt_memory_reach) is int and config.prompt_memory_reach >= -1,
        "prompt_memory_reach must be -1 (always) or a number of frames (0 or more)",
    )
    for f in fields(config):
        value = getattr(config, f.name)
        if f.type is bool:
            need(type(value) is bool, f"{f.name} must be true or false")
        elif f.type is float:
            need(
                type(value) in (int, float) and math.isfinite(value),
                f"{f.name} must be a finite number",
            )
    return problems


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
        config = build(SAM2Config, values)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SAM2Error(f"malformed model configuration ({type(exc).__name__}: {exc})") from exc
    validate_config(config)
    return config
