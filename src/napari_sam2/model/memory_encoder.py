"""The memory encoder: turns a frame's image features and its predicted mask into a memory.

The mask is downsampled to the feature grid by strided convolutions, added to the projected
image features, mixed by a few ConvNeXt blocks and narrowed to the memory width.
"""

import copy
import math

import torch
from torch import nn

from .layers import LayerNorm2d
from .position_encoding import PositionEmbeddingSine


class MaskDownSampler(nn.Module):
    """Strided conv stack taking a (B, 1, H, W) mask to (B, embed_dim, H / total_stride, ...).

    Each step divides the side by `stride` and multiplies the channels by `stride ** 2`, so no
    information is squeezed out before the final 1x1 projection to `embed_dim`.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        kernel_size: int = 4,
        stride: int = 4,
        padding: int = 0,
        total_stride: int = 16,
        activation: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        num_steps = round(math.log(total_stride, stride))
        if stride**num_steps != total_stride:
            raise ValueError(f"total_stride {total_stride} is not a power of stride {stride}")
        steps: list[nn.Module] = []
        channels = 1
        for _ in range(num_steps):
            wider = channels * stride**2
            steps += [
                nn.Conv2d(channels, wider, kernel_size, stride=stride, padding=padding),
                LayerNorm2d(wider),
                activation(),
            ]
            channels = wider
        steps.append(nn.Conv2d(channels, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*steps)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(mask)


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a whole residual branch per sample with probability p."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        # rescale so the expected output equals the input
        return x * mask / keep


class CXBlock(nn.Module):
    """ConvNeXt block on (B, C, H, W): depthwise conv, channel LayerNorm, pointwise MLP with a
    learned per-channel scale (`gamma`), residual."""

    def __init__(
        self,
        dim: int,
        kernel_size: int = 7,
        padding: int = 3,
        drop_path: float = 0.0,
        layer_scale_init_value: float = 1e-6,
        use_dwconv: bool = True,
    ) -> None:
        super().__init__()
        groups = dim if use_dwconv else 1
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=padding, groups=groups)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        # the pointwise convs are linear layers over channels-last tokens (faster in PyTorch)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = (
            nn.Parameter(torch.full((dim,), layer_scale_init_value))
            if layer_scale_init_value > 0
            else None
        )
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(y)))
        if self.gamma is not None:
            y = self.gamma * y
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class Fuser(nn.Module):
    """`num_layers` copies of `layer` applied in turn, after an optional 1x1 input projection."""

    def __init__(
        self,
        layer: nn.Module,
        num_layers: int,
        dim: int | None = None,
        input_projection: bool = False,
    ) -> None:
        super().__init__()
        self.proj: nn.Module = nn.Identity()
        if input_projection:
            if dim is None:
                raise ValueError("Fuser needs `dim` for its input projection")
            self.proj = nn.Conv2d(dim, dim, kernel_size=1)
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Image features (B, in_dim, h, w) and mask logits (B, 1, H, W), with H = 16 h, to a memory
    (B, out_dim, h, w) and its sine position encoding (B, out_dim, h, w)."""

    def __init__(
        self,
        out_dim: int,
        mask_downsampler: MaskDownSampler,
        fuser: Fuser,
        position_encoding: PositionEmbeddingSine,
        in_dim: int = 256,
    ) -> None:
        super().__init__()
        self.mask_downsampler = mask_downsampler
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = fuser
        self.position_encoding = position_encoding
        self.out_proj: nn.Module = (
            nn.Identity() if out_dim == in_dim else nn.Conv2d(in_dim, out_dim, kernel_size=1)
        )

    def forward(
        self, pix_feat: torch.Tensor, masks: torch.Tensor, skip_mask_sigmoid: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # a sigmoid makes predicted logits look like the {0, 1} masks seen in training
        if not skip_mask_sigmoid:
            masks = torch.sigmoid(masks)
        masks = self.mask_downsampler(masks)
        # the image features may be cached on another device (e.g. offloaded to the CPU)
        x = self.pix_feat_proj(pix_feat.to(masks.device)) + masks
        x = self.out_proj(self.fuser(x))
        pos = self.position_encoding(x).to(x.dtype)
        return x, pos
