"""One training step of SAM 2 on a clip: the first frame is prompted, later frames are tracked
through the memory bank built from the model's own earlier predictions, and a few frames get
corrective clicks; every prediction is scored against the ground truth.

Memories are kept in float32 with their gradients (the Tracker rounds them to bfloat16 and
runs without gradients), so the loss reaches the memory encoder and memory attention too.
"""

import contextlib
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..model import SAM2, FrameFeatures, FrameMemory, MaskPrediction, select_memories
from .clips import Clip
from .losses import FrameLoss, LossWeights, frame_loss, mask_iou
from .prompts import FIRST_PROMPT_PROBS, Prompt, corrective_click, first_prompt


@dataclass(frozen=True)
class Recipe:
    """How prompts are simulated and losses weighted in a step.

    first_prompt_probs: chances of a mask, a click and a box on the first frame;
    max_correction_frames: frames (the first included) that may get corrective clicks;
    correction_clicks: clicks added one after another on such a frame; from_target_prob:
    chance that a corrective click ignores the prediction; box_noise: see `box_around`;
    full_resolution_loss: score masks upscaled to the input size (as the reference recipe)
    rather than at the decoder's quarter resolution (16 times cheaper, for CPU training).
    shrunk_memory_prob / shrunk_memory_px: the chance that a clip's tracked frames are
    remembered from masks eroded by 1..shrunk_memory_px input pixels (drawn per frame), while
    the next frames are still scored against the whole object: a model whose masks shrink a
    little each frame over a long run learns to grow them back instead of compounding it.
    first_frame_weight: how many times the losses of the first (prompted) frame count; every
    frame's prediction adds to the loss, so the clicked frame's share falls as clips get
    longer (clip_length / 8 keeps the share of 8-frame clips).
    rollout_frames: the frames after the prompted one tracked without gradients, losses or
    corrections, as at inference, before the scored frames: those then start from a memory
    of the model's own drift (masks shrunk over many frames), not from a fresh prompt. A clip
    keeps at least `scored_after_rollout` scored frames (a short stack's clip rolls out less).
    rollout_drawn: each clip rolls out a number of frames drawn uniformly from 0 to
    `rollout_frames` instead of all of them, and is cut `scored_after_rollout` frames after
    them, so some clips still score the frames right after the prompt while every clip costs
    the gradients of the same few frames.
    """

    first_prompt_probs: tuple[float, float, float] = FIRST_PROMPT_PROBS
    max_correction_frames: int = 2
    correction_clicks: int = 3
    from_target_prob: float = 0.1
    box_noise: float = 0.1
    full_resolution_loss: bool = False
    shrunk_memory_prob: float = 0.0
    shrunk_memory_px: int = 4
    first_frame_weight: float = 1.0
    rollout_frames: int = 0
    scored_after_rollout: int = 8
    rollout_drawn: bool = False
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        if not 0.0 <= self.shrunk_memory_prob <= 1.0:
            raise ValueError(f"shrunk_memory_prob must be 0..1, got {self.shrunk_memory_prob}")
        if self.shrunk_memory_px < 1:
            raise ValueError(f"shrunk_memory_px must be at least 1, got {self.shrunk_memory_px}")
        if not self.first_frame_weight > 0:
            raise ValueError(f"first_frame_weight must be positive, got {self.first_frame_weight}")
        if self.rollout_frames < 0:
            raise ValueError(f"rollout_frames must be at least 0, got {self.rollout_frames}")


@dataclass
class StepResult:
    """The loss to minimize and numbers to show: mean loss terms and the mean IoU of the
    final prediction on frames where the object is visible."""

    loss: torch.Tensor
    terms: dict[str, float]
    iou: float


def encode_clip(model: SAM2, images: torch.Tensor, freeze_encoder: bool) -> list[FrameFeatures]:
    """Features of each (T, 3, S, S) clip frame; the trunk and neck run without gradients when
    frozen, the decoder's high-resolution projections always learn."""
    context = torch.no_grad() if freeze_encoder else contextlib.nullcontext()
    with context:
        levels, positions = model.image_encoder(images)
    high_s0 = model.sam_mask_decoder.conv_s0(levels[0])
    high_s1 = model.sam_mask_decoder.conv_s1(levels[1])
    pos = positions[-1][:1]
    return [
        FrameFeatures(levels[-1][t : t + 1], pos, [high_s0[t : t + 1], high_s1[t : t + 1]])
        for t in range(images.shape[0])
    ]


def _select(prediction: MaskPrediction, k: int) -> MaskPrediction:
    """Object k of a batched prediction, as a batch of one."""
    fields = MaskPrediction.__dataclass_fields__
    return MaskPrediction(**{n: getattr(prediction, n)[k : k + 1] for n in fields})


def _eroded(prediction: MaskPrediction, radius: int) -> MaskPrediction:
    """The prediction with its high-resolution mask logits eroded by `radius` pixels (a
    minimum filter moves the mask's edge inwards), for a memory of a shrunk mask."""
    logits = prediction.high_res_masks
    eroded = -F.max_pool2d(-logits, 2 * radius + 1, stride=1, padding=radius)
    return replace(prediction, high_res_masks=eroded)


def _points(prompt: Prompt, device) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if prompt.points is None:
        return None, None
    return prompt.points[None].to(device), prompt.labels[None].to(device)


class ClipStep:
    """The forward pass of one clip, collecting losses as it goes."""

    def __init__(
        self, model: SAM2, clip: Clip, rng: np.random.Generator, recipe: Recipe, freeze: bool
    ) -> None:
        self.model, self.clip, self.rng, self.recipe = model, clip.to(model.device), rng, recipe
        self.freeze = freeze
        masks = self.clip.masks
        if not recipe.full_resolution_loss:
            side = model.image_size // 4
            # a low-res pixel is the object where most of its 4 x 4 input pixels are
            masks = F.interpolate(masks.float(), size=(side, side), mode="area") >= 0.5
        self.targets = masks
        self.losses: list[FrameLoss] = []
        self.final_ious: list[torch.Tensor] = []

    def score(self, prediction: MaskPrediction, t: int, objects: slice | int) -> None:
        """Add the loss of a prediction of some objects on clip frame t."""
        target = self.targets[objects, t]
        if target.ndim == 2:
            target = target[None]
        candidates = prediction.low_res_multimasks
        if self.recipe.full_resolution_loss:
            candidates = self.model.upscale(candidates)
        loss = frame_loss(
            candidates, prediction.ious, prediction.object_score_logits, target, self.recipe.weights
        )
        weight = self.recipe.first_frame_weight if t == 0 else 1.0
        self.losses.append(loss if weight == 1.0 else loss.scaled(weight))

    def correct(
        self,
        prediction: MaskPrediction,
        pix_feat: torch.Tensor,
        features: FrameFeatures,
        prompt: Prompt,
        target: torch.Tensor,
        t: int,
        k: int,
    ) -> tuple[MaskPrediction, bool]:
        """Corrective clicks one after another on one object (B = 1); each new prediction is
        scored. Returns the last prediction and whether any click was added."""
        clicked = False
        for _ in range(self.recipe.correction_clicks):
            predicted = prediction.high_res_masks[0, 0] > 0
            click = corrective_click(predicted, target, self.rng, self.recipe.from_target_prob)
            if click is None:
                break
            prompt = prompt.add_click(*click)
            clicked = True
            coords, labels = _points(prompt, self.model.device)
            prediction = self.model.predict_masks(
                pix_feat,
                features.high_res,
                coords,
                labels,
                # the earlier mask guides the next one, as when a user clicks again
                mask_input=prediction.low_res_masks.detach().clamp(-32.0, 32.0),
                multimask=self.model.use_multimask(prompt.num_points),
            )
            self.score(prediction, t, k)
        return prediction, clicked

    def run(self) -> StepResult:
        """Forward the whole clip; the losses of every prediction make the result."""
        length = self.recipe.rollout_frames
        if self.recipe.rollout_drawn and length:  # drawn only when asked for (same streams)
            length = int(self.rng.integers(0, length + 1))
            self.clip = self.clip.first(1 + length + self.recipe.scored_after_rollout)
        model, clip, rng = self.model, self.clip, self.rng
        num_objects, num_frames = clip.masks.shape[:2]
        features = encode_clip(model, clip.images, self.freeze)
        prompts = [
            first_prompt(
                clip.masks[k, 0], rng, self.recipe.first_prompt_probs, self.recipe.box_noise
            )
            for k in range(num_objects)
        ]
        count = int(rng.integers(1, self.recipe.max_correction_frames + 1))
        others = rng.permutation(np.arange(1, num_frames))[: count - 1]
        kept = num_frames - 1 - self.recipe.scored_after_rollout
        rollout = range(1, 1 + max(min(length, kept), 0))
        correction_frames = {0, *(int(t) for t in others if t not in rollout)}

        self.prompts, self.correction_frames = prompts, correction_frames
        self.conditioning: dict[int, FrameMemory] = {}
        self.tracked: dict[int, FrameMemory] = {}
        chance = self.recipe.shrunk_memory_prob
        # drawn only when asked for, so recipes without it draw what they always drew
        self.shrink = chance > 0 and rng.random() < chance
        for t in range(num_frames):
            with torch.no_grad() if t in rollout else contextlib.nullcontext():
                self.frame(t, features[t])
        return self.result()

    def frame(self, t: int, f: FrameFeatures) -> None:
        """Predict, score (unless rolled out: no gradients) and remember clip frame t."""
        model, clip, rng, config = self.model, self.clip, self.rng, self.model.config
        num_objects, num_frames = clip.masks.shape[:2]
        prompts, conditioning, tracked = self.prompts, self.conditioning, self.tracked
        memory = None
        if t > 0:
            memory = select_memories(
                t,
                conditioning,
                tracked,
                num_frames=num_frames,
                reverse=False,
                num_maskmem=config.num_maskmem,
                max_obj_ptrs=config.max_obj_ptrs_in_encoder,
                max_cond_frames=config.max_cond_frames_in_attn,
                signed_distances=config.use_signed_tpos_enc_to_obj_ptrs,
            )
        pix_feat = model.condition_on_memory(f, memory, batch=num_objects)
        if t == 0:
            outputs, from_clicks = self.first_frame(f, pix_feat, prompts)
        else:
            prediction = model.predict_masks(pix_feat, f.high_res, multimask=True)
            if torch.is_grad_enabled():
                self.score(prediction, t, slice(None))
            outputs = [prediction]
            from_clicks = [False]
            if t in self.correction_frames:
                outputs, from_clicks = self.correct_all(prediction, pix_feat, f, t, prompts)
        final = torch.cat([p.high_res_masks for p in outputs]).detach()
        self.final_ious.append(mask_iou(final[:, 0], clip.masks[:, t]))
        prompted = t == 0 or any(from_clicks)
        if self.shrink and not prompted:
            radius = int(rng.integers(1, self.recipe.shrunk_memory_px + 1))
            outputs = [_eroded(p, radius) for p in outputs]
        frame_memory = self.remember(f, outputs, from_clicks)
        # prompted frames are conditioning memory, as in the Tracker
        if prompted:
            conditioning[t] = frame_memory
        else:
            tracked[t] = frame_memory

    def first_frame(self, f: FrameFeatures, pix_feat: torch.Tensor, prompts: list[Prompt]):
        """Each object's prediction on the prompted first frame, corrected when clicked."""
        outputs, from_clicks = [], []
        for k, prompt in enumerate(prompts):
            if prompt.kind == "mask":
                mask = prompt.mask[None, None].float()
                outputs.append(self.model.mask_as_output(f.image_embed, f.high_res, mask))
                from_clicks.append(False)
                continue
            coords, labels = _points(prompt, self.model.device)
            prediction = self.model.predict_masks(
                pix_feat[k : k + 1],
                f.high_res,
                coords,
                labels,
                multimask=self.model.use_multimask(prompt.num_points),
            )
            self.score(prediction, 0, k)
            prediction, _ = self.correct(
                prediction, pix_feat[k : k + 1], f, prompt, self.clip.masks[k, 0], 0, k
            )
            outputs.append(prediction)
            from_clicks.append(True)
        return outputs, from_clicks

    def correct_all(self, prediction, pix_feat, f, t, prompts):
        """Corrective clicks on a tracked frame, for objects not prompted by a mask."""
        outputs, from_clicks = [], []
        for k, prompt in enumerate(prompts):
            one = _select(prediction, k)
            if prompt.kind == "mask":
                outputs.append(one)
                from_clicks.append(False)
                continue
            one, clicked = self.correct(
                one, pix_feat[k : k + 1], f, Prompt("clicks"), self.clip.masks[k, t], t, k
            )
            outputs.append(one)
            from_clicks.append(clicked)
        return outputs, from_clicks

    def remember(self, f: FrameFeatures, outputs: list[MaskPrediction], from_clicks: list[bool]):
        """The frame's memory for all objects; masks from clicks are binarized as at inference."""
        if len(outputs) == 1:
            p = outputs[0]
            mem, pos = self.model.encode_memory(
                f, p.high_res_masks, p.object_score_logits, from_clicks[0]
            )
            return FrameMemory(mem, pos, p.obj_ptr)
        parts = [
            self.model.encode_memory(f, p.high_res_masks, p.object_score_logits, clicks)
            for p, clicks in zip(outputs, from_clicks, strict=True)
        ]
        return FrameMemory(
            torch.cat([m for m, _ in parts]),
            torch.cat([pos for _, pos in parts]),
            torch.cat([p.obj_ptr for p in outputs]),
        )

    def result(self) -> StepResult:
        weights = self.recipe.weights
        num_objects = self.clip.masks.shape[0]
        # a clip whose only frame is mask-prompted has nothing to learn from: a zero loss
        total = (
            sum(
                (loss.total(weights).sum() for loss in self.losses),
                start=torch.zeros((), device=self.model.device),
            )
            / num_objects
        )
        terms = {
            name: float(sum(getattr(loss, name).detach().sum() for loss in self.losses))
            / num_objects
            for name in ("focal", "dice", "iou", "object_score")
        }
        ious = torch.stack(self.final_ious, dim=1)  # (K, T)
        present = self.clip.present
        iou = float(ious[present].mean()) if present.any() else 1.0
        return StepResult(total, terms, iou)


def clip_step(
    model: SAM2,
    clip: Clip,
    rng: np.random.Generator,
    recipe: Recipe = Recipe(),
    freeze_encoder: bool = False,
) -> StepResult:
    """Run the model over a clip as in training and return its loss (not yet backpropagated)."""
    return ClipStep(model, clip, rng, recipe, freeze_encoder).run()
