"""Assembling a SAM 2 network from its configuration: the parts, wired as the paper draws them.

Knows nothing of names, files or weights; `build.py` adds those, `checkpoint.py` uses this
module only to know the parameter shapes a configuration has.
"""

import torch

from .attention import RoPEAttention
from .config import SAM2Config, validate_config
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
    validate_config(config)
    return SAM2(
        config, image_encoder_of(config), memory_attention_of(config), memory_encoder_of(config)
    )


def parameter_shapes(config: SAM2Config) -> dict[str, tuple[int, ...]]:
    """The name and shape of every entry of the state dict of `config`'s model, computed on
    the meta device (no memory, no time)."""
    with torch.device("meta"):
        state = build_from_config(config).state_dict()
    return {k: tuple(v.shape) for k, v in state.items()}
