"""SAM 2's mask decoder: learned output tokens read the prompted image through the two-way
transformer, and each mask token becomes the weights of a dot product with upscaled features.

Besides SAM's IoU and mask tokens, SAM 2 adds an object-score token (is the object visible at
all?), mixes high-resolution backbone features into the upscaling, and can fall back from the
single-mask output to the best of the three candidates when the single mask is unstable.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .kept_result import KeptResult
from .layers import MLP, LayerNorm2d


def stability_score(mask_logits: torch.Tensor, delta: float) -> torch.Tensor:
    """IoU of a mask thresholded at +delta and at -delta, (..., H, W) -> (...).

    An empty mask counts as perfectly stable.
    """
    logits = mask_logits.flatten(-2)
    inner = (logits > delta).sum(-1).float()
    outer = (logits > -delta).sum(-1).float()
    return torch.where(outer > 0, inner / outer, 1.0)


def upsample_2x2(conv: nn.ConvTranspose2d, pixels: torch.Tensor, bias: bool = True) -> torch.Tensor:
    """`conv` (a 2x2, stride-2 transposed convolution) on (N, C) pixels as one matrix
    product: (N, 4, C') the 2x2 block each pixel becomes, in (row, column) order. The same
    function as `conv`, with the output left in blocks instead of an image; `bias` False
    leaves out the bias, for a caller that adds it with something else."""
    c, out = conv.in_channels, conv.out_channels
    # weight (C, C', kh, kw) -> (C, kh, kw, C'): each row gives the block's four pixels
    weight = conv.weight.permute(0, 2, 3, 1).reshape(c, 4 * out)
    if not bias:
        return torch.mm(pixels, weight).view(-1, 4, out)
    return torch.addmm(conv.bias.repeat(4), pixels, weight).view(-1, 4, out)


def activate_(activation: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`activation(x)`, computed in x's own memory where that gives the same numbers (GELU out
    of autograd). The upscaled maps are 4-8 MB at 1024: a fresh output of that size is new
    memory after the frame's encoding let the heap shrink, and filling it page by page
    cost a first click on a frame ~10 ms (2048 page faults, measured)."""
    if isinstance(activation, nn.GELU) and not torch.is_grad_enabled():
        return torch.ops.aten.gelu_(x, approximate=activation.approximate)
    return activation(x)


def as_blocks(feature: torch.Tensor, levels: int) -> torch.Tensor:
    """A (B, C, 2^L h, 2^L w) map in the pixel order of L nested 2x2 upsamplings of an h x w
    grid: (B, h * w * 4^L, C), for cell (i, j) then each level's (row, column) offset."""
    b, c, height, width = feature.shape
    side = 2**levels
    h, w = height // side, width // side
    # rows split as (i, d1, .., dL), columns as (j, e1, .., eL); put i, j, d1, e1, .., dL, eL
    grid = feature.reshape(b, c, h, *[2] * levels, w, *[2] * levels)
    rows = [2 + k for k in range(1, levels + 1)]
    cols = [3 + levels + k for k in range(1, levels + 1)]
    order = [0, 2, 3 + levels] + [d for pair in zip(rows, cols, strict=True) for d in pair] + [1]
    return grid.permute(order).reshape(b, h * w * 4**levels, c)


def blocks_to_image(blocks: torch.Tensor, h: int, w: int, levels: int) -> torch.Tensor:
    """The inverse of `as_blocks`: (B, h * w * 4^L, C) -> (B, C, 2^L h, 2^L w)."""
    b, _, c = blocks.shape
    grid = blocks.reshape(b, h, w, *[2] * (2 * levels), c)
    rows = [3 + 2 * k for k in range(levels)]
    cols = [4 + 2 * k for k in range(levels)]
    order = [0, 3 + 2 * levels, 1, *rows, 2, *cols]
    return grid.permute(order).reshape(b, c, h * 2**levels, w * 2**levels)


class MaskDecoder(nn.Module):
    """Predicts masks, their IoU, the mask tokens and an object score from prompted features.

    Token order in the transformer: [object score (if predicted), IoU, mask tokens, prompts].
    Mask token 0 gives the single-mask output, tokens 1.. the multimask candidates.
    """

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: nn.Module,
        num_multimask_outputs: int = 3,
        activation: type[nn.Module] = nn.GELU,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        use_high_res_features: bool = False,
        iou_prediction_use_sigmoid: bool = False,
        dynamic_multimask_via_stability: bool = False,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
        pred_obj_scores: bool = False,
        pred_obj_scores_mlp: bool = False,
        use_multimask_token_for_obj_ptr: bool = False,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.num_mask_tokens = num_multimask_outputs + 1

        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.pred_obj_scores = pred_obj_scores
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, transformer_dim)
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr

        # x4 upscaling of the image tokens; the high-res path below unpacks these five stages
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            activation(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            activation(),
        )
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            # applied by the caller to the backbone's stride-4 (s0) and stride-8 (s1) levels
            self.conv_s0 = nn.Conv2d(transformer_dim, transformer_dim // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(transformer_dim, transformer_dim // 4, kernel_size=1)

        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim,
            iou_head_hidden_dim,
            self.num_mask_tokens,
            iou_head_depth,
            sigmoid_output=iou_prediction_use_sigmoid,
        )
        if pred_obj_scores:
            self.pred_obj_score_head = (
                MLP(transformer_dim, transformer_dim, 1, 3)
                if pred_obj_scores_mlp
                else nn.Linear(transformer_dim, 1)
            )

        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.dynamic_multimask_stability_delta = dynamic_multimask_stability_delta
        self.dynamic_multimask_stability_thresh = dynamic_multimask_stability_thresh
        # the last high-res maps in block order: `_high_res_blocks`
        self._kept_blocks = KeptResult()

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        repeat_image: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode masks for B prompts.

        image_embeddings: (B, C, h, w), or (1, C, h, w) shared by all prompts with
        `repeat_image`; image_pe: (1, C, h, w); sparse_prompt_embeddings: (B, N, C);
        dense_prompt_embeddings: (B, C, h, w); high_res_features: [s0 (B, C/8, 4h, 4w),
        s1 (B, C/4, 2h, 2w)] after conv_s0 / conv_s1.

        Returns mask logits (B, M, 4h, 4w) and IoU predictions (B, M) with M = 3 candidates
        for `multimask_output`, else 1; the mask tokens (B, 3 or 1, C) used for object
        pointers; object score logits (B, 1).
        """
        masks, iou_pred, mask_tokens_out, object_score_logits = self.predict_masks(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            repeat_image,
            high_res_features,
        )

        if multimask_output:
            masks, iou_pred = masks[:, 1:], iou_pred[:, 1:]
        elif self.dynamic_multimask_via_stability and not self.training:
            masks, iou_pred = self._stable_single_mask(masks, iou_pred)
        else:
            masks, iou_pred = masks[:, :1], iou_pred[:, :1]

        if multimask_output and self.use_multimask_token_for_obj_ptr:
            sam_tokens_out = mask_tokens_out[:, 1:]
        else:
            # the object pointer was trained on the single-mask token (tracking follows
            # multi-click prompts in training), so it is used even after a single click
            sam_tokens_out = mask_tokens_out[:, :1]
        return masks, iou_pred, sam_tokens_out, object_score_logits

    def predict_masks(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        repeat_image: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All mask tokens' outputs: masks (B, 1 + 3, 4h, 4w), IoU (B, 1 + 3), mask tokens
        (B, 1 + 3, C) and object score logits (B, 1)."""
        learned = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            learned.insert(0, self.obj_score_token.weight)
        first_mask_token = len(learned) - 1  # the object-score token shifts the others by one
        iou_token_index = first_mask_token - 1
        batch = sparse_prompt_embeddings.shape[0]
        output_tokens = torch.cat(learned).unsqueeze(0).expand(batch, -1, -1)
        tokens = torch.cat([output_tokens, sparse_prompt_embeddings], dim=1)

        if repeat_image:
            src = torch.repeat_interleave(image_embeddings, batch, dim=0)
        elif image_embeddings.shape[0] != batch:
            raise ValueError(
                f"{image_embeddings.shape[0]} images for {batch} prompts; "
                "pass repeat_image=True to share one image among all prompts"
            )
        else:
            src = image_embeddings
        src = src + dense_prompt_embeddings
        if image_pe.shape[0] != 1:
            raise ValueError("image_pe must have batch size 1 (see PromptEncoder.get_dense_pe)")
        pos_src = image_pe.expand(batch, -1, -1, -1)
        b, c, h, w = src.shape

        hs, src = self.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, iou_token_index]
        mask_tokens_out = hs[:, first_mask_token : first_mask_token + self.num_mask_tokens]

        # the x4 upscaling and the mask dot products run on pixels kept in the order the two
        # 2x2 upsamplings make them (each image token's 4 x 4 block): the transformer's tokens
        # already are (B, hw, C) rows, no intermediate image is reordered, and only the
        # masks become an image at the end
        # (the high-res maps come with the up-convolutions' biases added: one pass less)
        upconv1, norm1, act1, upconv2, act2 = self.output_upscaling
        high_res = self.use_high_res_features
        if high_res and high_res_features is None:
            raise ValueError("this decoder needs the backbone's high-resolution features")
        feat_s0, feat_s1 = self._high_res_blocks(high_res_features) if high_res else (0, 0)
        upscaled = upsample_2x2(upconv1, src.reshape(b * h * w, c), bias=not high_res)
        upscaled = upscaled.view(b, h * w * 4, -1)
        upscaled = upscaled.add_(feat_s1) if high_res else upscaled
        upscaled = activate_(
            act1, F.layer_norm(upscaled, (c // 4,), norm1.weight, norm1.bias, norm1.eps)
        )
        upscaled = upsample_2x2(upconv2, upscaled.reshape(-1, c // 4), bias=not high_res)
        upscaled = upscaled.view(b, h * w * 16, -1)
        upscaled = activate_(act2, upscaled.add_(feat_s0) if high_res else upscaled)

        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )
        masks = blocks_to_image(upscaled @ hyper_in.transpose(1, 2), h, w, levels=2)

        iou_pred = self.iou_prediction_head(iou_token_out)
        if self.pred_obj_scores:
            object_score_logits = self.pred_obj_score_head(hs[:, 0])
        else:
            # without an object-score head the object is always present: sigmoid(10) ~ 1
            object_score_logits = iou_pred.new_full((iou_pred.shape[0], 1), 10.0)
        return masks, iou_pred, mask_tokens_out, object_score_logits

    def _high_res_blocks(self, high_res: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """The backbone's stride-4 and stride-8 maps in the upscaling's pixel order (see
        `as_blocks`), plus the biases of the up-convolutions they are added to. Out of
        training the last frame's are kept: further clicks on a frame reuse them."""
        feat_s0, feat_s1 = high_res
        upconv1, upconv2 = self.output_upscaling[0], self.output_upscaling[3]

        def blocks():
            return as_blocks(feat_s0, 2) + upconv2.bias, as_blocks(feat_s1, 1) + upconv1.bias

        if self.training or torch.is_grad_enabled():
            return blocks()
        return self._kept_blocks.get((feat_s0, feat_s1), blocks)

    def _stable_single_mask(
        self, masks: torch.Tensor, iou_pred: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The single-mask output where it is stable, else the candidate with the best IoU.

        A single click is ambiguous and token 0 may then give a mask that changes a lot with
        the threshold; a candidate is a valid mask for both clicking and tracking.
        """
        candidates, candidate_ious = masks[:, 1:], iou_pred[:, 1:]
        best = candidate_ious.argmax(dim=-1)
        rows = torch.arange(candidates.shape[0], device=candidates.device)
        best_masks = candidates[rows, best].unsqueeze(1)
        best_ious = candidate_ious[rows, best].unsqueeze(1)

        single_masks, single_ious = masks[:, :1], iou_pred[:, :1]
        stability = stability_score(single_masks, self.dynamic_multimask_stability_delta)
        is_stable = stability >= self.dynamic_multimask_stability_thresh  # (B, 1)
        return (
            torch.where(is_stable[..., None, None], single_masks, best_masks),
            torch.where(is_stable, single_ious, best_ious),
        )
