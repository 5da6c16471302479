"""The SAM heads of the per-frame step: the prompt encoder and mask decoder on a frame's
memory-conditioned features, the mask chosen among their candidates, and the object pointer.

`SAMHeads` is a part of `SAM2`, kept in its own module: it uses the model's
`sam_prompt_encoder`, `sam_mask_decoder`, `obj_ptr_proj`, `no_obj_ptr`, `mask_downsample`
and `image_size`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Logit given to every pixel of an object judged absent (the object-score head says < 0).
NO_OBJECT_LOGIT = -1024.0


@dataclass
class MaskPrediction:
    """What the SAM heads say about one frame, for B objects.

    low_res_masks: (B, 1, S/4, S/4) logits of the chosen mask; high_res_masks: the same at
    (B, 1, S, S) (None when not asked for); ious: (B, M) predicted IoU of the M candidates;
    low_res_multimasks:
    (B, M, S/4, S/4); obj_ptr: (B, C); object_score_logits: (B, 1), > 0 where present;
    candidate_obj_ptrs: (B, M, C) the pointer each candidate would give, when M > 1.
    """

    low_res_multimasks: torch.Tensor
    ious: torch.Tensor
    low_res_masks: torch.Tensor
    high_res_masks: torch.Tensor | None
    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor
    candidate_obj_ptrs: torch.Tensor | None = None


class SAMHeads:
    """The SAM heads' methods of `SAM2`."""

    @staticmethod
    def use_multimask(num_points: int) -> bool:
        """Three candidates for a single click or none (tracking), one for more clicks.

        Every official model decodes candidates while tracking too, not only on first clicks;
        a box counts as two points.
        """
        return num_points <= 1

    def predict_masks(
        self,
        pix_feat: torch.Tensor,
        high_res: list[torch.Tensor],
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask: bool = False,
        high_res_masks: bool = True,
    ) -> MaskPrediction:
        """Run the prompt encoder and mask decoder on memory-conditioned features.

        pix_feat: (B, C, h, w); point_coords: (B, N, 2) in input pixels (x, y) with labels
        (B, N) (1 positive, 0 negative, 2/3 box corners, -1 padding); mask_input: (B, 1, H, W)
        logits or a mask, resized to the prompt encoder's input size. high_res_masks False
        skips upscaling the chosen mask to the input size (a click needs only the low-res).
        """
        b = pix_feat.shape[0]
        if point_coords is None:
            point_coords = torch.zeros(b, 1, 2, device=pix_feat.device)
            point_labels = -torch.ones(b, 1, dtype=torch.int32, device=pix_feat.device)
        if mask_input is not None:
            size = (4 * pix_feat.shape[-2], 4 * pix_feat.shape[-1])
            if mask_input.shape[-2:] != size:
                mask_input = F.interpolate(
                    mask_input.float(),
                    size=size,
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )
        sparse, dense = self.sam_prompt_encoder(
            points=(point_coords, point_labels), boxes=None, masks=mask_input
        )
        multimasks, ious, tokens, object_score_logits = self.decode(
            pix_feat, high_res, sparse, dense, multimask
        )
        present = object_score_logits > 0
        multimasks = torch.where(present[:, None, None], multimasks, NO_OBJECT_LOGIT).float()

        token = tokens[:, 0]
        low_res = multimasks
        if multimask:
            best = torch.argmax(ious, dim=-1)
            rows = torch.arange(b, device=pix_feat.device)
            low_res = multimasks[rows, best].unsqueeze(1)
            if tokens.shape[1] > 1:
                token = tokens[rows, best]
        high_res = self.upscale(low_res) if high_res_masks else None
        is_present = present.float()
        obj_ptr = self.obj_ptr_proj(token)
        obj_ptr = is_present * obj_ptr + (1 - is_present) * self.no_obj_ptr
        candidate_ptrs = None
        if multimask and tokens.shape[1] > 1:
            candidate_ptrs = self.obj_ptr_proj(tokens)
            candidate_ptrs = (
                is_present[:, None] * candidate_ptrs + (1 - is_present[:, None]) * self.no_obj_ptr
            )
        return MaskPrediction(
            multimasks, ious, low_res, high_res, obj_ptr, object_score_logits, candidate_ptrs
        )

    def decode(
        self,
        pix_feat: torch.Tensor,
        high_res: list[torch.Tensor],
        sparse: torch.Tensor,
        dense: torch.Tensor,
        multimask: bool,
        repeat_image: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The mask decoder on features and the prompt encoder's embeddings: candidate mask
        logits, their predicted IoUs, the output tokens and the object-score logits.
        repeat_image: one image's features for a batch of prompts."""
        return self.sam_mask_decoder(
            image_embeddings=pix_feat,
            image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
            repeat_image=repeat_image,
            high_res_features=high_res,
        )

    def upscale(self, low_res_masks: torch.Tensor) -> torch.Tensor:
        """(B, M, S/4, S/4) -> (B, M, S, S) by bilinear interpolation."""
        return F.interpolate(
            low_res_masks,
            size=(self.image_size, self.image_size),
            mode="bilinear",
            align_corners=False,
        )

    def mask_as_output(
        self, pix_feat: torch.Tensor, high_res: list[torch.Tensor], mask: torch.Tensor
    ) -> MaskPrediction:
        """A given (B, 1, S, S) mask taken as the prediction itself (logits -10 / +10).

        The decoder still runs on the down-sampled mask to produce the object pointer.
        """
        mask = mask.float()
        high_res_masks = mask * 20.0 - 10.0
        low_res = F.interpolate(
            high_res_masks,
            size=(mask.shape[-2] // 4, mask.shape[-1] // 4),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        ious = mask.new_ones(mask.shape[0], 1)
        obj_ptr = self.predict_masks(
            pix_feat, high_res, mask_input=self.mask_downsample(mask), high_res_masks=False
        ).obj_ptr
        is_present = (mask.flatten(1) > 0).any(dim=1, keepdim=True).float()
        object_score_logits = 20.0 * is_present - 10.0
        obj_ptr = is_present * obj_ptr + (1 - is_present) * self.no_obj_ptr
        return MaskPrediction(low_res, ious, low_res, high_res_masks, obj_ptr, object_score_logits)

    def _heads(
        self,
        float32: bool,
        head: Callable[..., MaskPrediction],
        pix_feat: torch.Tensor,
        high_res: list[torch.Tensor],
        *args,
        **kwargs,
    ) -> MaskPrediction:
        """`head` (predict_masks or mask_as_output), in float32 outside an enclosing autocast
        when `float32`: on a CPU the decoder's many small ops run slower under bfloat16
        autocast than in float32 (a click 28 against 20 ms at tiny@1024), while memory
        attention runs 3-4x faster."""
        if not float32 or not torch.is_autocast_enabled(pix_feat.device.type):
            return head(pix_feat, high_res, *args, **kwargs)
        with torch.autocast(pix_feat.device.type, enabled=False):
            high_res = [level.float() for level in high_res]
            return head(pix_feat.float(), high_res, *args, **kwargs)
