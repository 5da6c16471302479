"""The SAM 2 training losses: focal and dice on masks (of several candidates only the one with
the lowest loss is supervised), L1 on the predicted IoU, and binary cross-entropy on the object
score. Where the object is absent only the object score is supervised, unless `absent_focal`
asks for the focal term against an empty mask too.
"""

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    """Relative weights of the four terms (those of the SAM 2 recipe). absent_focal: weight of
    the focal term, relative to `focal`, on frames where the object is absent: the mask is then
    scored against an empty target wherever the object score wrongly says present (0 in the
    SAM 2 recipe, where those masks are not supervised)."""

    focal: float = 20.0
    dice: float = 1.0
    iou: float = 1.0
    object_score: float = 1.0
    absent_focal: float = 0.0


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Sigmoid focal loss averaged over pixels: (..., H, W) logits and targets -> (...)."""
    target = target.float()
    prob = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_true = prob * target + (1 - prob) * (1 - target)
    loss = bce * (1 - p_true) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * target + (1 - alpha) * (1 - target))
    return loss.flatten(-2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice of sigmoid(logits) with the target: (..., H, W) -> (...)."""
    prob = torch.sigmoid(logits).flatten(-2)
    target = target.float().flatten(-2)
    overlap = (prob * target).sum(-1)
    return 1 - (2 * overlap + smooth) / (prob.sum(-1) + target.sum(-1) + smooth)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the binarized prediction (logit > 0) with the target: (..., H, W) -> (...).

    Two empty masks agree perfectly (IoU 1)."""
    pred = (logits > 0).flatten(-2)
    target = target.bool().flatten(-2)
    inter = (pred & target).sum(-1).float()
    union = (pred | target).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


@dataclass
class FrameLoss:
    """One prediction's loss terms, each (B,), and which candidate was supervised."""

    focal: torch.Tensor
    dice: torch.Tensor
    iou: torch.Tensor
    object_score: torch.Tensor
    best: torch.Tensor

    def scaled(self, weight: float) -> "FrameLoss":
        """The same terms counted `weight` times (a frame that matters more)."""
        return replace(
            self,
            focal=weight * self.focal,
            dice=weight * self.dice,
            iou=weight * self.iou,
            object_score=weight * self.object_score,
        )

    def total(self, weights: LossWeights) -> torch.Tensor:
        """Weighted sum, (B,)."""
        return (
            weights.focal * self.focal
            + weights.dice * self.dice
            + weights.iou * self.iou
            + weights.object_score * self.object_score
        )


def frame_loss(
    mask_logits: torch.Tensor,
    iou_pred: torch.Tensor,
    object_score_logits: torch.Tensor,
    target: torch.Tensor,
    weights: LossWeights = LossWeights(),
) -> FrameLoss:
    """Losses of B objects' predictions on one frame.

    mask_logits: (B, M, H, W) candidates at the target's size; iou_pred: (B, M);
    object_score_logits: (B, 1); target: (B, H, W) bool. The candidate with the lowest
    focal + dice loss is the one supervised; the IoU head learns every candidate's real IoU.
    """
    present = target.flatten(1).any(1).float()  # (B,)
    # an object judged absent has logits of -1024 and no mask gradient: bound the loss value
    mask_logits = mask_logits.float().clamp(min=-50.0)
    target = target[:, None].expand_as(mask_logits)
    focal = focal_loss(mask_logits, target)
    dice = dice_loss(mask_logits, target)
    combined = weights.focal * focal + weights.dice * dice
    best = combined.argmin(dim=1)
    rows = torch.arange(len(best))
    with torch.no_grad():
        real_iou = mask_iou(mask_logits, target)
    iou = F.l1_loss(iou_pred.float(), real_iou, reduction="none").mean(1)
    score = F.binary_cross_entropy_with_logits(
        object_score_logits.float()[:, 0], present, reduction="none"
    )
    return FrameLoss(
        focal=focal[rows, best] * (present + weights.absent_focal * (1.0 - present)),
        dice=dice[rows, best] * present,
        iou=iou * present,
        object_score=score,
        best=best,
    )
