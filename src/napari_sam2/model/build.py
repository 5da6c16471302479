"""Assemble a SAM 2 model from its configuration, optionally loading a checkpoint."""

from pathlib import Path

import torch

from ..errors import SAM2Error
from .attention import RoPEAttention
from .checkpoint import likely_model, load_checkpoint, read_checkpoint
from .config import CONFIGS, MODEL_NAMES, SAM2Config
from .demo import DEMO_CONFIG, DEMO_NAME, load_demo_state
from .hiera import Hiera
from .image_encoder import FpnNeck, ImageEncoder
from .memory_attention import MemoryAttention, MemoryAttentionLayer
from .memory_encoder import CXBlock, Fuser, MaskDownSampler, MemoryEncoder
from .position_encoding import PositionEmbeddingSine
from .sam2 import SAM2


def image_encoder_of(config: SAM2Config) -> ImageEncoder:
    """The Hiera trunk and FPN neck of a configuration."""
    t = config.trunk
    trunk = Hiera(
        embed_dim=t.embed_dim,
        num_heads=t.num_heads,
        stages=t.stages,
        global_att_blocks=t.global_att_blocks,
        window_pos_embed_bkg_spatial_size=t.window_pos_embed_bkg_spatial_size,
        window_spec=t.window_spec,
    )
    neck = FpnNeck(
        position_encoding=PositionEmbeddingSine(config.d_model),
        d_model=config.d_model,
        backbone_channel_list=list(reversed(t.channels)),
        fpn_top_down_levels=list(config.fpn_top_down_levels),
        fpn_interp_model="nearest",
    )
    return ImageEncoder(trunk, neck, scalp=config.scalp)


def memory_attention_of(config: SAM2Config) -> MemoryAttention:
    """The memory attention stack of a configuration."""
    side = config.image_embedding_size
    rope = dict(
        embedding_dim=config.d_model,
        num_heads=1,
        downsample_rate=1,
        dropout=0.1,
        rope_theta=10000.0,
        feat_sizes=(side, side),
    )
    layer = MemoryAttentionLayer(
        activation="relu",
        cross_attention=RoPEAttention(**rope, rope_k_repeat=True, kv_in_dim=config.mem_dim),
        d_model=config.d_model,
        dim_feedforward=config.memory_attention_ffn_dim,
        dropout=0.1,
        pos_enc_at_attn=False,
        pos_enc_at_cross_attn_keys=True,
        pos_enc_at_cross_attn_queries=False,
        self_attention=RoPEAttention(**rope),
    )
    return MemoryAttention(
        d_model=config.d_model,
        pos_enc_at_input=True,
        layer=layer,
        num_layers=config.memory_attention_layers,
    )


def memory_encoder_of(config: SAM2Config) -> MemoryEncoder:
    """The memory encoder of a configuration."""
    return MemoryEncoder(
        out_dim=config.mem_dim,
        mask_downsampler=MaskDownSampler(
            embed_dim=config.d_model, kernel_size=3, stride=2, padding=1
        ),
        fuser=Fuser(
            CXBlock(dim=config.d_model, kernel_size=7, padding=3, layer_scale_init_value=1e-6),
            num_layers=config.fuser_layers,
        ),
        position_encoding=PositionEmbeddingSine(config.mem_dim),
        in_dim=config.d_model,
    )


def build_from_config(config: SAM2Config) -> SAM2:
    """A randomly initialized model of the given configuration (in training mode)."""
    return SAM2(
        config, image_encoder_of(config), memory_attention_of(config), memory_encoder_of(config)
    )


def build_model(
    name: str | SAM2Config,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
) -> SAM2:
    """Build one of `MODEL_NAMES` (or a custom config) in eval mode on `device`.

    checkpoint: None for random weights, a path to a `{"model": state_dict}` file, or
    "auto" for the official checkpoint from the weights registry. image_size builds the
    same architecture at another input size (weights are independent of it).
    The small "demo" model loads its shipped weights when checkpoint is None or "auto".
    """
    demo = isinstance(name, str) and name == DEMO_NAME
    if isinstance(name, SAM2Config):
        config = name
    else:
        config = model_config(name)
    if image_size is not None:
        config = config.at_image_size(image_size)
    model = build_from_config(config)
    if demo and checkpoint in (None, "auto"):
        model.load_state_dict(load_demo_state(), strict=True)
    elif checkpoint is not None:
        load_checkpoint(model, _resolve_checkpoint(config, checkpoint))
    return model.to(device).eval()


def _resolve_checkpoint(config: SAM2Config, checkpoint: str | Path) -> Path:
    if str(checkpoint) == "auto":
        from .weights import fetch_checkpoint  # pooch is needed only for downloads

        return fetch_checkpoint(config.name)
    return Path(checkpoint)


def build_model_from_checkpoint(
    checkpoint: str | Path,
    name: str | None = None,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
    keep_trained_size: bool = False,
) -> SAM2:
    """The model a checkpoint file holds, with its weights, in eval mode on `device`.

    The architecture comes from, in order: the configuration stored in the file (fine-tuned
    and trained models, see `napari_sam2.training`), `name`, the official name the file is
    called after (e.g. sam2.1_hiera_tiny.pt), or the official model its parameter shapes fit.
    image_size: None runs a stored configuration at the size it was trained at, an official
    model at 1024; keep_trained_size ignores image_size for a stored configuration (for
    callers whose size is a default rather than the user's request).
    """
    path = Path(checkpoint)
    state, stored = read_checkpoint(path)
    if stored is not None:
        if name is not None and name not in (stored.name, DEMO_NAME):
            raise SAM2Error(
                f"checkpoint {path} holds a {stored.name} model, not {name}; leave the model "
                "name out to use the configuration stored in the file"
            )
        config = stored
    else:
        name = name or _official_name_of(path) or likely_model(state)
        if name is None:
            raise SAM2Error(
                f"checkpoint {path} stores no model configuration and fits no official SAM 2 "
                f"model; name its model ({', '.join(MODEL_NAMES)})"
            )
        config = model_config(name)
    if image_size is not None and not (keep_trained_size and stored is not None):
        config = config.at_image_size(image_size)
    model = build_from_config(config)
    load_checkpoint(model, path, state)
    return model.to(device).eval()


def _official_name_of(path: Path) -> str | None:
    """The official model a file is named after (longest match first: "sam2.1_hiera_tiny"
    before "sam2_hiera_t...")."""
    for name in sorted(MODEL_NAMES, key=len, reverse=True):
        if path.stem.startswith(name):
            return name
    return None


def model_config(name: str) -> SAM2Config:
    """The configuration of an official model name or of "demo"."""
    if name == DEMO_NAME:
        return DEMO_CONFIG
    if name not in CONFIGS:
        raise SAM2Error(
            f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}, {DEMO_NAME}"
        )
    return CONFIGS[name]
