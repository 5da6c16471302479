"""Training SAM 2 on labelled stacks with the SAM 2 recipe: clips, simulated prompts, losses,
the training loop, and fine-tuning entry points."""

from .augment import NO_AUGMENTATION, Augmentation
from .checkpoints import load_trained, read_config, save_model
from .clips import Clip, ClipSampler, LabelledStack
from .evaluate import (
    boundary_f,
    evaluate_stack,
    evaluate_zstack,
    jaccard,
    masklet_score,
    summarize,
)
from .finetune import fine_tune
from .loop import TrainOptions, TrainResult, train
from .losses import LossWeights, dice_loss, focal_loss, frame_loss
from .scratch import init_from_scratch, init_memory_attention, init_prompt_attention
from .step import Recipe, clip_step

__all__ = [
    "NO_AUGMENTATION",
    "Augmentation",
    "Clip",
    "ClipSampler",
    "LabelledStack",
    "LossWeights",
    "Recipe",
    "TrainOptions",
    "TrainResult",
    "boundary_f",
    "clip_step",
    "dice_loss",
    "evaluate_stack",
    "evaluate_zstack",
    "fine_tune",
    "focal_loss",
    "frame_loss",
    "init_from_scratch",
    "init_memory_attention",
    "init_prompt_attention",
    "jaccard",
    "load_trained",
    "masklet_score",
    "read_config",
    "save_model",
    "summarize",
    "train",
]
