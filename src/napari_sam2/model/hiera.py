"""Hiera, the hierarchical vision transformer that is the trunk of SAM 2's image encoder.

Tokens live on a (B, H, W, C) grid. Each stage after the first halves the grid by max-pooling
the queries of its first block, and attention stays inside non-overlapping windows except in a
few global blocks.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MLP


class PatchEmbed(nn.Module):
    """A 7x7 stride-4 convolution from (B, 3, S, S) pixels to a (B, S/4, S/4, C) token grid."""

    def __init__(self, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class DropPath(nn.Module):
    """Stochastic depth: while training, zero a whole residual branch for random samples."""

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rate == 0.0 or not self.training:
            return x
        keep = 1.0 - self.rate
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep if keep > 0.0 else x * mask


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nh * nw, window, window, C), zero-padding the grid to whole windows."""
    b, h, w, c = x.shape
    nh, nw = math.ceil(h / window), math.ceil(w / window)
    x = F.pad(x, (0, 0, 0, nw * window - w, 0, nh * window - h))
    x = x.view(b, nh, window, nw, window, c).transpose(2, 3)
    return x.reshape(b * nh * nw, window, window, c)


def window_unpartition(windows: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of `window_partition` for a grid of size `hw`, cropping the padding away."""
    h, w = hw
    window = windows.shape[1]
    nh, nw = math.ceil(h / window), math.ceil(w / window)
    b = windows.shape[0] // (nh * nw)
    x = windows.view(b, nh, nw, window, window, -1).transpose(2, 3)
    x = x.reshape(b, nh * window, nw * window, -1)
    return x[:, :h, :w]


# At inference on a CPU a global attention runs its queries in chunks of this many (a chunk of
# at least 768 queries is computed in the same 256-query blocks as the whole, so the result
# is the same to the bit): each chunk is a call of its own module, where a background encode
# can stop or wait for a click (a global attention is the encoder's longest single step).
QUERY_CHUNK = 1024
SMALLEST_CHUNK = 768


class Attend(nn.Module):
    """Scaled dot-product attention of (B, heads, N, C) queries, keys and values."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, k, v)


def query_chunks(count: int) -> list[int]:
    """Sizes of the chunks `count` queries run in on a CPU: QUERY_CHUNK each, the last one
    taking a remainder smaller than SMALLEST_CHUNK (one chunk when there are few queries)."""
    sizes = [QUERY_CHUNK] * (count // QUERY_CHUNK)
    rest = count - sum(sizes)
    if rest >= SMALLEST_CHUNK or not sizes:
        sizes.append(rest)
    else:
        sizes[-1] += rest
    return sizes


class MultiScaleAttention(nn.Module):
    """Self-attention over a (B, H, W, C) grid whose queries may be max-pooled by `q_stride`.

    With pooled queries the output has the pooled grid size and `dim_out` channels.
    """

    def __init__(
        self, dim: int, dim_out: int, num_heads: int, q_stride: tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_stride = q_stride
        self.qkv = nn.Linear(dim, 3 * dim_out)
        self.attend = Attend()
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).unbind(2)
        if self.q_stride is not None:
            q = q.reshape(b, h, w, -1).permute(0, 3, 1, 2)
            q = F.max_pool2d(q, kernel_size=self.q_stride, stride=self.q_stride)
            h, w = q.shape[-2:]
            q = q.permute(0, 2, 3, 1).reshape(b, h * w, self.num_heads, -1)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        chunked = q.device.type == "cpu" and not torch.is_grad_enabled()
        if chunked and q.shape[2] >= QUERY_CHUNK + SMALLEST_CHUNK:
            chunks = q.split(query_chunks(q.shape[2]), dim=2)
            x = torch.cat([self.attend(chunk, k, v) for chunk in chunks], dim=2)
        else:
            x = self.attend(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    """A pre-norm transformer block on a (B, H, W, C) grid with windowed attention.

    `window_size` 0 means global attention. At a stage transition the block pools queries
    (`q_stride`) and widens channels; the residual then goes through `proj` and the same pooling.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        q_stride: tuple[int, int] | None = None,
        window_size: int = 0,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_stride)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, 2, activation=nn.GELU)
        self.proj = nn.Linear(dim, dim_out) if dim != dim_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        # a widened residual is projected from the normalized tokens, not the raw ones
        if self.proj is not None:
            shortcut = self.proj(x)
        if self.q_stride is not None:
            shortcut = F.max_pool2d(
                shortcut.permute(0, 3, 1, 2), kernel_size=self.q_stride, stride=self.q_stride
            ).permute(0, 2, 3, 1)

        if self.window_size > 0:
            # pooling happens inside each window, so windows shrink with the grid
            x = self.attn(window_partition(x, self.window_size))
            x = window_unpartition(x, shortcut.shape[1:3])
        else:
            x = self.attn(x)

        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Hiera(nn.Module):
    """The Hiera trunk: (B, 3, S, S) images -> one (B, C_i, S / 2^(i+2), S / 2^(i+2)) map per
    stage, highest resolution first (only the last with `return_interm_layers=False`).

    `stages` counts blocks per stage; `window_spec` is each stage's attention window and
    `global_att_blocks` the block indices that attend globally. Each of the first `q_pool`
    stage transitions pools by `q_stride` and multiplies width by `dim_mul` and heads by
    `head_mul`.
    """

    def __init__(
        self,
        embed_dim: int = 96,
        num_heads: int = 1,
        drop_path_rate: float = 0.0,
        q_pool: int = 3,
        q_stride: tuple[int, int] = (2, 2),
        stages: tuple[int, ...] = (2, 3, 16, 3),
        dim_mul: float = 2.0,
        head_mul: float = 2.0,
        window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14),
        window_spec: tuple[int, ...] = (8, 4, 14, 7),
        global_att_blocks: tuple[int, ...] = (12, 16, 20),
        return_interm_layers: bool = True,
    ) -> None:
        super().__init__()
        if len(stages) != len(window_spec):
            raise ValueError(f"{len(stages)} stages need as many window sizes, got {window_spec}")
        if not 0 <= q_pool < len(stages):
            raise ValueError(f"q_pool must be in [0, {len(stages) - 1}], got {q_pool}")
        self.return_interm_layers = return_interm_layers
        depth = sum(stages)
        self.stage_ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        stage_starts = [end + 1 for end in self.stage_ends[:-1]]

        self.patch_embed = PatchEmbed(embed_dim)
        # "absolute-win" position embedding: a coarse background resized to the token grid plus
        # one window-sized pattern repeated over it
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, *window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(
            torch.zeros(1, embed_dim, window_spec[0], window_spec[0])
        )
        # (key, parameters, embedding) of the last grid embedded without autograd
        self._kept_position_embedding: tuple | None = None

        # stochastic depth grows linearly from 0 at the first block to the rate at the last
        drop_rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList()
        dim, stage = embed_dim, 0
        for i in range(depth):
            dim_out = dim
            # the first block of a stage still works on the previous stage's grid, so it uses
            # that stage's window, which its query pooling shrinks to this stage's window
            window_size = window_spec[stage]
            if i in stage_starts:
                dim_out = int(dim * dim_mul)
                num_heads = int(num_heads * head_mul)
                stage += 1
            if i in (global_att_blocks or ()):
                window_size = 0
            self.blocks.append(
                MultiScaleBlock(
                    dim,
                    dim_out,
                    num_heads,
                    drop_path=drop_rates[i],
                    q_stride=q_stride if i in stage_starts[:q_pool] else None,
                    window_size=window_size,
                )
            )
            dim = dim_out

        # widths of the returned maps, lowest resolution first, as the neck lists them
        ends = self.stage_ends if return_interm_layers else self.stage_ends[-1:]
        self.channel_list = [self.blocks[i].mlp.layers[-1].out_features for i in reversed(ends)]

    def _position_embedding(self, h: int, w: int) -> torch.Tensor:
        """(1, h, w, C) embedding for an (h, w) token grid.

        Without autograd it is kept for the next image, as its bicubic resize is a sizeable
        part of an encode on a CPU (docs/performance.md); with the parameters it was made from
        (small: compared, not trusted to a version counter) and the grid, dtype, device and
        autocast state it was made in.
        """
        params = (self.pos_embed, self.pos_embed_window)
        if torch.is_grad_enabled() or self.pos_embed.is_meta:
            return self._compute_position_embedding(h, w)
        device = self.pos_embed.device.type
        key = (h, w, self.pos_embed.dtype, self.pos_embed.device)
        key += (torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        kept = self._kept_position_embedding  # read once: another thread may replace it
        if kept is None or kept[0] != key or not all(map(torch.equal, kept[1], params)):
            made_from = tuple(p.detach().clone() for p in params)
            kept = (key, made_from, self._compute_position_embedding(h, w))
            self._kept_position_embedding = kept
        return kept[2]

    def _compute_position_embedding(self, h: int, w: int) -> torch.Tensor:
        background = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        window = self.pos_embed_window.shape[-1]
        tiled = self.pos_embed_window.tile(1, 1, math.ceil(h / window), math.ceil(w / window))
        return (background + tiled[..., :h, :w]).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self._position_embedding(x.shape[1], x.shape[2])
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.stage_ends[-1] or (self.return_interm_layers and i in self.stage_ends):
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs
