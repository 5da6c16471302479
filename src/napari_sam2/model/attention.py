"""Multi-head attention as SAM uses it, and its rotary (2D RoPE) variant for memory attention.

SAM's attention projects queries, keys and values to a possibly narrower internal width
(`downsample_rate`), so the mask decoder's cross attention runs at half width. The rotary
variant rotates queries and keys by their (x, y) position on the image grid; memory attention
uses it, and leaves the object-pointer tokens at the end of the keys unrotated.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Attention over (B, N, C) tokens with separate q/k/v/out projections."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.kv_in_dim = embedding_dim if kv_in_dim is None else kv_in_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError(
                f"{num_heads} heads do not divide the internal width {self.internal_dim}"
            )
        self.head_dim = self.internal_dim // num_heads
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)
        self.dropout_p = dropout

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, heads, N, C / heads)."""
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, heads, n, c = x.shape
        return x.transpose(1, 2).reshape(b, n, heads * c)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Heads-split queries and keys, values (B, M, kv_in_dim) not yet projected.

        The fused kernel on projected values, as the reference runs it, also for memory
        attention's narrow memories: summing them unprojected takes fewer multiply-adds but
        needs unfused weights, slower on a CPU (docs/performance.md, *Memory attention*)."""
        v = self._split_heads(self.v_proj(values))
        dropout_p = self.dropout_p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        return self.out_proj(self._merge_heads(out))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if not self.training and q.device.type == "cpu":
            # the mask decoder's attention between a few prompt tokens and thousands of image
            # tokens: project the few, never the many (the same function, ~2x fewer
            # multiply-adds)
            heads_small = self.num_heads * min(q.shape[1], k.shape[1])
            if heads_small < self.internal_dim:
                if q.shape[1] < k.shape[1]:
                    return self._few_queries(q, k, v)
                if k.shape[1] < q.shape[1]:
                    return self._few_keys(q, k, v)
        q = self._split_heads(self.q_proj(q))
        k = self._split_heads(self.k_proj(k))
        return self._attend(q, k, v)

    def _head_weights(self, linear: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
        """A projection to the internal width, split by head: (heads, head_dim, in), bias
        (heads, head_dim)."""
        weight = linear.weight.view(self.num_heads, self.head_dim, -1)
        return weight, linear.bias.view(self.num_heads, self.head_dim)

    def _few_queries(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of few queries to many keys without projecting the keys and values:
        q.(x Wk^T + bk) = (q Wk).x + q.bk, and the weighted sum of values is projected after
        summing (each row of weights sums to 1)."""
        b, num_keys, _ = k.shape
        queries = self._split_heads(self.q_proj(q)) * self.head_dim**-0.5  # (B, h, n, d)
        n = queries.shape[2]
        k_weight, _ = self._head_weights(self.k_proj)
        folded = torch.einsum("bhnd,hdc->bhnc", queries, k_weight)
        scores = torch.matmul(folded.reshape(b, self.num_heads * n, -1), k.transpose(1, 2))
        # the key bias adds q.bk, the same to all of a query's scores: the softmax is the same
        # without it, so it is left out
        weights = torch.softmax(scores.view(b, self.num_heads, n, num_keys), dim=-1)
        mixed = torch.matmul(weights.view(b, self.num_heads * n, num_keys), v)
        v_weight, v_bias = self._head_weights(self.v_proj)
        mixed = mixed.view(b, self.num_heads, n, -1)
        out = torch.einsum("bhnc,hdc->bhnd", mixed, v_weight) + v_bias.view(1, -1, 1, self.head_dim)
        return self.out_proj(self._merge_heads(out))

    def _few_keys(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of many queries to few keys without projecting the queries or the output
        at full width: (x Wq^T + bq).k = x.(Wq^T k) + bq.k, and each head's values go
        through their slice of the output projection before the weighted sum."""
        b, n, _ = q.shape
        keys = self._split_heads(self.k_proj(k)) * self.head_dim**-0.5  # (B, h, m, d)
        values = self._split_heads(self.v_proj(v))
        m = keys.shape[2]
        q_weight, q_bias = self._head_weights(self.q_proj)
        folded = torch.einsum("bhmd,hdc->bhmc", keys, q_weight).reshape(b, self.num_heads * m, -1)
        # scores laid out (B, h, m, n): a softmax over the few keys along a middle dimension
        # is ~80x faster on a CPU than along a last dimension of 7
        scores = torch.matmul(folded, q.transpose(1, 2)).view(b, self.num_heads, m, n)
        scores = scores + torch.einsum("bhmd,hd->bhm", keys, q_bias).unsqueeze(-1)
        weights = torch.softmax(scores, dim=2).view(b, self.num_heads * m, n)
        out_weight = self.out_proj.weight.view(-1, self.num_heads, self.head_dim)
        projected = torch.einsum("bhmd,ehd->bhme", values, out_weight)
        projected = projected.reshape(b, self.num_heads * m, -1)
        # the output bias goes in with the product (one pass over the many queries' outputs)
        bias = self.out_proj.bias.expand(b, n, -1)
        return torch.baddbmm(bias, weights.transpose(1, 2), projected)


def axial_rotations(dim: int, width: int, height: int, theta: float = 10000.0) -> torch.Tensor:
    """Unit complex rotations for a (height, width) grid in row-major order, (H * W, dim / 2).

    The first half of the pairs rotate with x, the second half with y.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4)[: dim // 4].float() / dim))
    index = torch.arange(width * height, dtype=torch.float32)
    x = index % width
    y = torch.div(index, width, rounding_mode="floor")
    angles = torch.cat([torch.outer(x, freqs), torch.outer(y, freqs)], dim=-1)
    return torch.polar(torch.ones_like(angles), angles)


def rotate(x: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of (B, heads, N, C) by (N, C / 2) complex rotations."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(pairs * rotations).flatten(3).type_as(x)


class RoPEAttention(Attention):
    """Attention with 2D rotary position encoding of queries and keys.

    Queries are a square grid of image tokens. With `rope_k_repeat` the keys may hold several
    such grids (one per memory frame), each rotated like the queries; the last
    `num_k_exclude_rope` keys (object pointers) are not rotated.
    """

    def __init__(
        self,
        *args,
        rope_theta: float = 10000.0,
        rope_k_repeat: bool = False,
        feat_sizes: tuple[int, int] = (64, 64),
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.rope_theta = rope_theta
        self.rope_k_repeat = rope_k_repeat
        self._rotations = axial_rotations(self.head_dim, feat_sizes[0], feat_sizes[1], rope_theta)

    def _rotations_for(self, num_tokens: int, device: torch.device) -> torch.Tensor:
        if self._rotations.shape[0] != num_tokens:
            side = math.isqrt(num_tokens)
            if side * side != num_tokens:
                raise ValueError(f"RoPE attention needs a square grid of queries, got {num_tokens}")
            self._rotations = axial_rotations(self.head_dim, side, side, self.rope_theta)
        if self._rotations.device != device:
            self._rotations = self._rotations.to(device)
        return self._rotations

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_k_exclude_rope: int = 0
    ) -> torch.Tensor:
        q = self._split_heads(self.q_proj(q))
        k = self._split_heads(self.k_proj(k))

        rotations = self._rotations_for(q.shape[-2], q.device)
        q = rotate(q, rotations)
        num_k_rope = k.shape[-2] - num_k_exclude_rope
        if num_k_rope > 0:
            repeats = num_k_rope // q.shape[-2]
            if repeats != 1 and not self.rope_k_repeat:
                raise ValueError("keys and queries differ in length but rope_k_repeat is off")
            k_rope = rotate(k[:, :, :num_k_rope], rotations.repeat(repeats, 1))
            k = torch.cat([k_rope, k[:, :, num_k_rope:]], dim=2)
        return self._attend(q, k, v)
