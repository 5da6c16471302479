"""Position encodings: sine grids for feature maps, random Fourier features for prompts.

The sine grid (DETR style) tags the neck's and the memory encoder's feature maps; the random
Fourier features (SAM's prompt encoder) encode point and box coordinates and the dense grid the
mask decoder attends over. Rotary encodings live with the attention that uses them.
"""

import math

import torch
from torch import nn


class PositionEmbeddingSine(nn.Module):
    """Normalized 2D sine/cosine encoding of a feature map's grid, (B, C, H, W) -> (B, C, H, W).

    Half the channels encode y, half x; the grid is computed once per (H, W) and cached.
    """

    def __init__(
        self,
        num_pos_feats: int,
        temperature: float = 10000,
        normalize: bool = True,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError(f"num_pos_feats must be even, got {num_pos_feats}")
        if scale is not None and not normalize:
            raise ValueError("a scale only makes sense with normalize=True")
        self.num_pos_feats = num_pos_feats // 2
        self.temperature = temperature
        self.normalize = normalize
        self.scale = 2 * math.pi if scale is None else scale
        self._grids: dict[tuple[int, int], torch.Tensor] = {}

    def _frequencies(self, device: torch.device) -> torch.Tensor:
        index = torch.arange(self.num_pos_feats, dtype=torch.float32, device=device)
        return self.temperature ** (2 * (index // 2) / self.num_pos_feats)

    def _interleave_sin_cos(self, angles: torch.Tensor) -> torch.Tensor:
        # sin on even channels, cos on odd ones, interleaved in the last dimension
        return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)

    def _grid(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        key = (height, width)
        cached = self._grids.get(key)
        if cached is not None and cached.device == device:
            return cached
        y = torch.arange(1, height + 1, dtype=torch.float32, device=device)[:, None].expand(
            height, width
        )
        x = torch.arange(1, width + 1, dtype=torch.float32, device=device)[None, :].expand(
            height, width
        )
        if self.normalize:
            eps = 1e-6
            y = y / (height + eps) * self.scale
            x = x / (width + eps) * self.scale
        freqs = self._frequencies(device)
        pos_y = self._interleave_sin_cos(y[..., None] / freqs)
        pos_x = self._interleave_sin_cos(x[..., None] / freqs)
        grid = torch.cat((pos_y, pos_x), dim=-1).permute(2, 0, 1).contiguous()
        self._grids[key] = grid
        return grid

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = self._grid(x.shape[-2], x.shape[-1], x.device)
        return grid[None].expand(x.shape[0], -1, -1, -1).clone()


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of coordinates normalized to [0, 1]."""

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0 else scale
        self.register_buffer(
            "positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats))
        )

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """(..., 2) in [0, 1] -> (..., 2 * num_pos_feats)."""
        projected = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        projected = 2 * math.pi * projected
        return torch.cat([projected.sin(), projected.cos()], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Encoding of pixel centres of an (h, w) grid, (C, h, w)."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        y = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        x = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        coords = torch.stack([x[None, :].expand(h, w), y[:, None].expand(h, w)], dim=-1)
        return self._encode(coords).permute(2, 0, 1)

    def forward_with_coords(
        self, coords_input: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """Encoding of (B, N, 2) pixel coordinates (x, y) of an image of `image_size` (h, w)."""
        h, w = image_size
        size = torch.tensor([w, h], dtype=torch.float32, device=coords_input.device)
        return self._encode(coords_input.float() / size)
