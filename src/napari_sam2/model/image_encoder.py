"""The image encoder: the Hiera trunk followed by a feature-pyramid neck.

The neck maps every trunk stage to the same width with a 1x1 convolution, adds upsampled
coarser features to a chosen few levels, and tags each level with a sine position encoding.
"""

import torch
import torch.nn.functional as F
from torch import nn


class FpnNeck(nn.Module):
    """A feature pyramid without output convolutions.

    `backbone_channel_list` gives the trunk's widths lowest resolution first, and `convs` follow
    that order. Levels are numbered highest resolution first; only those in
    `fpn_top_down_levels` (all by default) receive the upsampled coarser level, fused by sum or
    average.
    """

    def __init__(
        self,
        position_encoding: nn.Module,
        d_model: int,
        backbone_channel_list: list[int],
        kernel_size: int = 1,
        stride: int = 1,
        padding: int = 0,
        fpn_interp_model: str = "bilinear",
        fuse_type: str = "sum",
        fpn_top_down_levels: list[int] | None = None,
    ) -> None:
        super().__init__()
        if fuse_type not in ("sum", "avg"):
            raise ValueError(f"fuse_type must be 'sum' or 'avg', got {fuse_type!r}")
        self.position_encoding = position_encoding
        self.d_model = d_model
        self.backbone_channel_list = list(backbone_channel_list)
        self.convs = nn.ModuleList(nn.Sequential() for _ in backbone_channel_list)
        for lateral, channels in zip(self.convs, backbone_channel_list, strict=True):
            lateral.add_module("conv", nn.Conv2d(channels, d_model, kernel_size, stride, padding))
        self.fpn_interp_model = fpn_interp_model
        self.fuse_type = fuse_type
        if fpn_top_down_levels is None:
            fpn_top_down_levels = range(len(backbone_channel_list))
        self.fpn_top_down_levels = list(fpn_top_down_levels)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Trunk maps, highest resolution first -> (features, positions), each a list of
        (B, d_model, H_i, W_i) in the same order."""
        if len(xs) != len(self.convs):
            raise ValueError(f"the neck expects {len(self.convs)} feature maps, got {len(xs)}")
        last = len(xs) - 1
        features = []
        coarser = None
        for level in range(last, -1, -1):
            lateral = self.convs[last - level](xs[level])
            if level in self.fpn_top_down_levels and coarser is not None:
                # the official model upsamples in float32, so under reduced precision a fused
                # level comes out in float32; matching it keeps outputs identical
                top_down = F.interpolate(
                    coarser.float(),
                    scale_factor=2.0,
                    mode=self.fpn_interp_model,
                    align_corners=None if self.fpn_interp_model == "nearest" else False,
                )
                coarser = lateral + top_down
                if self.fuse_type == "avg":
                    coarser = coarser / 2
            else:
                coarser = lateral
            features.append(coarser)
        features.reverse()
        positions = [self.position_encoding(f).to(f.dtype) for f in features]
        return features, positions


class ImageEncoder(nn.Module):
    """Trunk and neck; drops the `scalp` lowest-resolution levels from the output."""

    def __init__(self, trunk: nn.Module, neck: FpnNeck, scalp: int = 0) -> None:
        super().__init__()
        if list(trunk.channel_list) != list(neck.backbone_channel_list):
            raise ValueError(
                f"trunk widths {trunk.channel_list} do not match the neck's "
                f"{neck.backbone_channel_list}"
            )
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(B, 3, S, S) normalized images -> (features, positions), two lists of
        (B, d_model, H_i, W_i), highest resolution first."""
        features, positions = self.neck(self.trunk(images))
        if self.scalp > 0:
            features, positions = features[: -self.scalp], positions[: -self.scalp]
        return features, positions
