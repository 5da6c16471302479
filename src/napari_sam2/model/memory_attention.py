"""Memory attention: conditions the current frame's image tokens on the memory bank.

A stack of pre-norm transformer layers; each lets the image tokens attend to themselves, then
to the memories of past frames and the object pointers, both with 2D rotary position encoding.
"""

import copy

import torch
from torch import nn

from .attention import RoPEAttention
from .layers import activation_by_name


class MemoryAttentionLayer(nn.Module):
    """Self-attention, cross-attention to memory, and an MLP, each pre-norm and residual.

    Tokens are batch-first: image tokens (B, HW, d_model), memory tokens (B, M, C_mem).
    """

    def __init__(
        self,
        activation: str,
        cross_attention: nn.Module,
        d_model: int,
        dim_feedforward: int,
        dropout: float,
        pos_enc_at_attn: bool,
        pos_enc_at_cross_attn_keys: bool,
        pos_enc_at_cross_attn_queries: bool,
        self_attention: nn.Module,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.self_attn = self_attention
        self.cross_attn_image = cross_attention

        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.activation = activation_by_name(activation)()
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)

        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

        self.pos_enc_at_attn = pos_enc_at_attn
        self.pos_enc_at_cross_attn_queries = pos_enc_at_cross_attn_queries
        self.pos_enc_at_cross_attn_keys = pos_enc_at_cross_attn_keys

    def _self_attention(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        qk = y + pos if self.pos_enc_at_attn else y
        return x + self.dropout1(self.self_attn(qk, qk, y))

    def _cross_attention(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_k_exclude_rope: int,
    ) -> torch.Tensor:
        y = self.norm2(x)
        q = y + pos if self.pos_enc_at_cross_attn_queries else y
        k = memory + memory_pos if self.pos_enc_at_cross_attn_keys else memory
        if isinstance(self.cross_attn_image, RoPEAttention):
            y = self.cross_attn_image(q, k, memory, num_k_exclude_rope=num_k_exclude_rope)
        elif num_k_exclude_rope > 0:
            raise ValueError("object pointer tokens need a rotary (RoPEAttention) cross attention")
        else:
            y = self.cross_attn_image(q, k, memory)
        return x + self.dropout2(y)

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_k_exclude_rope: int = 0,
        self_attention: bool = True,
    ) -> torch.Tensor:
        """`num_k_exclude_rope`: how many keys at the end of memory (object pointers) have no
        grid position and so are not rotated. `self_attention` False: `x` has been through
        this layer's self-attention already."""
        if self_attention:
            x = self._self_attention(x, pos)
        if x.shape[0] != memory.shape[0]:
            # the objects of one frame share its image tokens until they meet their memories
            x = x.expand(memory.shape[0], -1, -1)
        x = self._cross_attention(x, pos, memory, memory_pos, num_k_exclude_rope)
        y = self.linear2(self.dropout(self.activation(self.linear1(self.norm3(x)))))
        return x + self.dropout3(y)


class MemoryAttention(nn.Module):
    """`num_layers` copies of a `MemoryAttentionLayer` and a final LayerNorm.

    Only batch-first tokens are supported; `batch_first` is kept for the official config.
    """

    def __init__(
        self,
        d_model: int,
        pos_enc_at_input: bool,
        layer: MemoryAttentionLayer,
        num_layers: int,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        if not batch_first:
            raise ValueError("MemoryAttention only supports batch_first=True")
        self.d_model = d_model
        self.pos_enc_at_input = pos_enc_at_input
        self.num_layers = num_layers
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int = 0,
        frame_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Image tokens `curr` (B, HW, C) with position encoding `curr_pos` (B, HW, C), memory
        tokens `memory` (B, M, C_mem) with `memory_pos` (B, M, C_mem), the last
        `num_obj_ptr_tokens` of which are object pointers -> conditioned tokens (B, HW, C).

        `curr` and `curr_pos` may have batch 1 for B objects on one frame: the first layer's
        self-attention sees only the frame's tokens, so it then runs once, not B times.
        `frame_tokens`: `frame_tokens(curr, curr_pos)` computed before, for another batch of
        objects on the same frame.
        """
        if curr.shape[0] not in (1, memory.shape[0]) or curr_pos.shape[0] > curr.shape[0]:
            raise ValueError(
                f"current frame batch {curr.shape[0]} (positions {curr_pos.shape[0]}) does not "
                f"fit memory batch {memory.shape[0]}: give B or one frame's tokens"
            )
        x = self.frame_tokens(curr, curr_pos) if frame_tokens is None else frame_tokens
        for i, layer in enumerate(self.layers):
            x = layer(
                x,
                curr_pos,
                memory,
                memory_pos,
                num_k_exclude_rope=num_obj_ptr_tokens,
                self_attention=i > 0,
            )
        return self.norm(x)

    def frame_tokens(self, curr: torch.Tensor, curr_pos: torch.Tensor) -> torch.Tensor:
        """The image tokens after the first layer's self-attention, which sees no memory:
        the same for every object on a frame."""
        x = curr
        if self.pos_enc_at_input:
            # a weak hint of position at input; the layers themselves rely on RoPE
            x = x + 0.1 * curr_pos
        return self.layers[0]._self_attention(x, curr_pos)
