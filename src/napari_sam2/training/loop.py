"""The training loop: AdamW with warm-up and cosine decay over clips drawn from labelled
stacks, periodic checkpoints that a later run resumes from, and a validation score.

Randomness is drawn from (seed, step), so a run resumed after an interruption continues with
the clips and prompts the uninterrupted run would have seen.
"""

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import SAM2Error
from ..model import SAM2
from ..model.config import config_to_dict
from .augment import Augmentation
from .checkpoints import (
    load_training_state,
    save_model,
    save_training_state,
)
from .clips import ClipSampler, LabelledStack
from .evaluate import evaluate_stack, summarize
from .step import Recipe, clip_step

STATE_FILE = "training_state.pt"
MODEL_FILE = "model.pt"


@dataclass(frozen=True)
class TrainOptions:
    """Settings of a training run.

    steps: optimizer steps; clips_per_step: clips whose gradients add up in a step;
    lr: peak learning rate, reached after warmup_steps and decayed by a cosine to
    lr * final_lr_fraction; freeze_image_encoder: train only the heads and memory;
    train_only_memory: train only what tracked frames read from (memory encoder, memory
    attention, object pointers), so a prompted frame's masks stay exactly as they were;
    train_only: parameter-name prefixes (e.g. "sam_mask_decoder.output_upscaling"): train
    those alone, everything else stays as it was;
    checkpoint_every / validate_every: steps between saves / validations (0 = never);
    validation_frames: frames tracked per validation stack; dropout: replaces the memory
    attention's dropout rate (0.1) while training, e.g. 0 for small models; stop_at: end this
    run after that many steps of the `steps`-long schedule (a later run resumes from there).
    """

    steps: int = 1000
    clips_per_step: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_steps: int = 50
    final_lr_fraction: float = 0.1
    grad_clip: float = 1.0
    freeze_image_encoder: bool = False
    train_only_memory: bool = False
    train_only: tuple[str, ...] = ()
    clip_length: int = 8
    max_objects: int = 3
    reverse_prob: float = 0.5
    augmentation: Augmentation = field(default_factory=Augmentation)
    recipe: Recipe = field(default_factory=Recipe)
    seed: int = 0
    checkpoint_every: int = 100
    validate_every: int = 0
    validation_frames: int = 16
    validation_objects: int = 4
    log_every: int = 10
    dropout: float | None = None
    half_precision_output: bool = False
    stop_at: int | None = None


@dataclass
class TrainResult:
    """Where the trained model is, how many steps it has, and the logged history."""

    model_path: Path
    steps: int
    history: list[dict[str, float]]


def learning_rate(options: TrainOptions, step: int) -> float:
    """Linear warm-up, then cosine decay to lr * final_lr_fraction at the last step."""
    if step < options.warmup_steps:
        return options.lr * (step + 1) / options.warmup_steps
    span = max(1, options.steps - options.warmup_steps)
    progress = min(1.0, (step - options.warmup_steps) / span)
    low = options.lr * options.final_lr_fraction
    return low + (options.lr - low) * 0.5 * (1 + math.cos(math.pi * progress))


# what a prompted frame's masks are computed from; the rest of SAM 2 only carries memory
PROMPTED_FRAME_PATH = (
    "image_encoder",
    "sam_prompt_encoder",
    "sam_mask_decoder",
    "no_mem_embed",
    "no_mem_pos_enc",
)


def _chosen(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _trainable(model: SAM2, options: TrainOptions) -> list[torch.nn.Parameter]:
    names = [name for name, _ in model.named_parameters()]
    unmatched = [p for p in options.train_only if not any(_chosen(n, (p,)) for n in names)]
    if unmatched:
        parts = sorted({n.split(".")[0] for n in names})
        raise SAM2Error(
            f"train_only names {unmatched}, which match no parameter of this model; give "
            f"prefixes of parameter names, e.g. one of {parts} or a module inside one"
        )
    for name, p in model.named_parameters():
        part = name.split(".")[0]
        frozen = (
            (options.freeze_image_encoder and part == "image_encoder")
            or (options.train_only_memory and part in PROMPTED_FRAME_PATH)
            or (bool(options.train_only) and not _chosen(name, options.train_only))
        )
        p.requires_grad_(not frozen)
    return [p for p in model.parameters() if p.requires_grad]


def _set_dropout(model: SAM2, rate: float) -> None:
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = rate
        elif hasattr(module, "dropout_p"):
            module.dropout_p = rate


def _optimizer(params, options: TrainOptions) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)


class ProgressLine:
    """A one-line text progress bar on stderr: step, rate, remaining time and the latest
    numbers; a new line is kept every `keep_every` steps so a log file shows the history."""

    def __init__(self, total: int, start: int, keep_every: int, stream=sys.stderr) -> None:
        self.total, self.start, self.keep_every = total, start, keep_every
        self.began = time.monotonic()
        self.stream = stream

    def update(self, step: int, numbers: dict[str, float]) -> None:
        done = step - self.start
        elapsed = time.monotonic() - self.began
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (self.total - step) / rate if rate > 0 else float("nan")
        width = 20
        filled = int(width * step / max(self.total, 1))
        text = " ".join(f"{k} {v:.3f}" for k, v in numbers.items())
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} "
            f"{elapsed / 60:.1f} min, {left / 60:.1f} min left | {text}"
        )
        end = "\n" if step % self.keep_every == 0 or step == self.total else "\r"
        self.stream.write(line + end)
        self.stream.flush()


def validate(
    model: SAM2, stacks: list[LabelledStack], num_frames: int, max_objects: int
) -> dict[str, float]:
    """Mean click IoU and masklet J&F on held-out stacks, with the Tracker (no correction)."""
    was_training = model.training
    model.eval()
    try:
        results = [
            evaluate_stack(model, s, num_frames, max_objects=max_objects, correct=False)
            for s in stacks
        ]
    finally:
        model.train(was_training)
    summary = summarize(results)
    return {f"val {k}": v for k, v in summary.items() if k != "objects"}


def train(
    model: SAM2,
    stacks: list[LabelledStack],
    out_dir: str | Path,
    options: TrainOptions = TrainOptions(),
    validation: list[LabelledStack] | None = None,
    resume: bool = True,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train `model` (in place) on clips of `stacks`, saving to `out_dir`.

    out_dir receives `training_state.pt` every checkpoint_every steps (resumed from when
    `resume` and present) and, at the end, `model.pt` (`{"model", "config"}`) with `model.json`.
    The model trains at its own `image_size`; build it smaller to train faster.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / STATE_FILE
    params = _trainable(model, options)
    # whichever option froze it, the trunk then runs without gradients
    frozen_encoder = not any(p.requires_grad for p in model.image_encoder.parameters())
    optimizer = _optimizer(params, options)
    start, history = 0, []
    if resume and state_path.is_file():
        state = load_training_state(state_path)
        if state["config"] != config_to_dict(model.config):
            raise SAM2Error(
                f"{state_path} was written for another model configuration; "
                "use another output folder or start without resuming"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = int(state["step"]), list(state["history"])

    sampler = ClipSampler(
        stacks,
        model.image_size,
        length=options.clip_length,
        max_objects=options.max_objects,
        reverse_prob=options.reverse_prob,
        augmentation=options.augmentation,
    )
    bar = ProgressLine(options.steps, start, options.log_every) if progress else None
    if options.dropout is not None:
        _set_dropout(model, options.dropout)
    model.train()
    running: dict[str, float] = {}
    last = options.steps if options.stop_at is None else min(options.stop_at, options.steps)
    for step in range(start, last):
        rng = np.random.default_rng([options.seed, step])
        torch.manual_seed(options.seed * 1_000_003 + step)  # dropout
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(options, step)
        optimizer.zero_grad(set_to_none=True)
        numbers: dict[str, float] = {}
        for _ in range(options.clips_per_step):
            clip = sampler.sample(rng)
            result = clip_step(model, clip, rng, options.recipe, frozen_encoder)
            if result.loss.requires_grad:
                (result.loss / options.clips_per_step).backward()
            for k, v in {
                "loss": float(result.loss.detach()),
                **result.terms,
                "mask_iou": result.iou,
            }.items():
                numbers[k] = numbers.get(k, 0.0) + v / options.clips_per_step
        if options.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, options.grad_clip)
        optimizer.step()

        done = step + 1
        # a smoothed view for the progress line; the history keeps the raw numbers
        running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in numbers.items()}
        record = {"step": float(done), "lr": learning_rate(options, step), **numbers}
        if validation and options.validate_every and done % options.validate_every == 0:
            record.update(
                validate(model, validation, options.validation_frames, options.validation_objects)
            )
            if bar is not None:
                sys.stderr.write(
                    "\nvalidation at step "
                    f"{done}: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in record.items() if k.startswith("val"))
                    + "\n"
                )
        history.append(record)
        if bar is not None:
            bar.update(done, {k: running[k] for k in ("loss", "mask_iou")})
        if on_step is not None:
            on_step(done, record)
        if options.checkpoint_every and (done % options.checkpoint_every == 0 or done == last):
            save_training_state(state_path, model, optimizer, done, history)

    model.eval()
    model_path = save_model(model, out_dir / MODEL_FILE, half=options.half_precision_output)
    return TrainResult(model_path, max(start, last), history)
