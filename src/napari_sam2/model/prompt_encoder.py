"""SAM's prompt encoder: clicks and box corners become sparse tokens, a mask prompt a dense map.

A point's token is the random Fourier encoding of its position plus a learned embedding for
its kind (negative, positive, top-left or bottom-right box corner); a padding point carries
only the learned `not_a_point_embed`.
"""

import torch
from torch import nn

from .layers import LayerNorm2d
from .position_encoding import PositionEmbeddingRandom

PADDING_LABEL = -1
NEGATIVE_LABEL = 0
POSITIVE_LABEL = 1
BOX_TOP_LEFT_LABEL = 2
BOX_BOTTOM_RIGHT_LABEL = 3


class PromptEncoder(nn.Module):
    """Encodes points, boxes and a mask prompt for the mask decoder.

    image_embedding_size is the (h, w) of the image features; input_image_size the (H, W) of
    the encoder's input, in whose pixels points and boxes are given. A mask prompt has
    (4h, 4w) pixels.
    """

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int,
        activation: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = tuple(image_embedding_size)
        self.input_image_size = tuple(input_image_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)

        # one embedding per point kind, indexed by its label: negative, positive, two corners
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)

        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            activation(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            activation(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def _downscale_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """`mask_downscaling(masks)`, its last (1x1) convolution as one matrix product whose
        result is stored channels-last, like the image features it is added to: an add of
        the two layouts, and the decoder's reading of the sum as tokens, would go through
        memory against the grain."""
        *layers, last = self.mask_downscaling
        x = masks
        for layer in layers:
            x = layer(x)
        b, c, h, w = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(b * h * w, c)
        out = torch.addmm(last.bias, pixels, last.weight.view(last.out_channels, c).t())
        return out.view(b, h, w, -1).permute(0, 3, 1, 2)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of every image-feature cell, (1, C, h, w).

        Kept between calls in inference mode (every click needs it, and it depends only on
        the encoder's fixed random matrix); recomputed when that matrix changes, and kept
        apart per autocast state (under bfloat16 autocast it comes out in bfloat16, which a
        later float32 decoder must not be handed).
        """
        if not torch.is_inference_mode_enabled():
            return self.pe_layer(self.image_embedding_size).unsqueeze(0)
        matrix = self.pe_layer.positional_encoding_gaussian_matrix
        device = matrix.device.type
        autocast = torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device)
        key = (matrix.data_ptr(), matrix._version, matrix.device, matrix.dtype, autocast)
        cached = getattr(self, "_dense_pe", None)
        if cached is None or cached[0] != key:
            cached = (key, self.pe_layer(self.image_embedding_size).unsqueeze(0))
            self._dense_pe = cached
        return cached[1]

    def _embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        coords = coords + 0.5  # pixel indices -> pixel centres
        if pad:
            # without a box the decoder was trained to see one extra, empty token
            b = coords.shape[0]
            coords = torch.cat([coords, coords.new_zeros(b, 1, 2)], dim=1)
            padding = torch.full((b, 1), PADDING_LABEL, dtype=labels.dtype, device=labels.device)
            labels = torch.cat([labels, padding], dim=1)
        tokens = self.pe_layer.forward_with_coords(coords, self.input_image_size)
        labels = labels.unsqueeze(-1)
        tokens = torch.where(
            labels == PADDING_LABEL, self.not_a_point_embed.weight.expand_as(tokens), tokens
        )
        for label, kind in enumerate(self.point_embeddings):
            tokens = torch.where(labels == label, tokens + kind.weight, tokens)
        return tokens

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        corners = (boxes + 0.5).reshape(-1, 2, 2)
        tokens = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        corner_kinds = torch.cat(
            [
                self.point_embeddings[BOX_TOP_LEFT_LABEL].weight,
                self.point_embeddings[BOX_BOTTOM_RIGHT_LABEL].weight,
            ]
        )
        return tokens + corner_kinds

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse (B, N', C) and dense (B, C, h, w) prompt embeddings.

        points: coordinates (B, N, 2) as (x, y) input pixels and labels (B, N) (-1 padding,
        0 negative, 1 positive, 2/3 box corners); boxes: (B, 4) as (x0, y0, x1, y1);
        masks: (B, 1, 4h, 4w) logits.
        """
        if points is not None:
            batch = points[0].shape[0]
        elif boxes is not None:
            batch = boxes.shape[0]
        elif masks is not None:
            batch = masks.shape[0]
        else:
            batch = 1

        sparse = [self.not_a_point_embed.weight.new_empty(batch, 0, self.embed_dim)]
        if points is not None:
            coords, labels = points
            sparse.append(self._embed_points(coords, labels, pad=boxes is None))
        if boxes is not None:
            sparse.append(self._embed_boxes(boxes))
        sparse_embeddings = torch.cat(sparse, dim=1)

        if masks is not None:
            dense_embeddings = self._downscale_masks(masks)
        else:
            h, w = self.image_embedding_size
            dense_embeddings = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                batch, -1, h, w
            )
        return sparse_embeddings, dense_embeddings
