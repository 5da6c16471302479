"""Fine-tuning in one call: a model by name (official or demo) and a checkpoint, the user's
proofread stacks, and sensible defaults for a laptop CPU or one GPU."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..model import SAM2, build_from_config, build_model
from ..model.build import model_config
from .clips import LabelledStack
from .loop import TrainOptions, TrainResult, train
from .scratch import init_from_scratch


def fine_tune(
    stacks: Sequence[LabelledStack | tuple],
    out_dir: str | Path,
    model: str | SAM2 = "sam2.1_hiera_tiny",
    checkpoint: str | Path | None = "auto",
    image_size: int | None = None,
    steps: int = 500,
    lr: float | None = None,
    freeze_image_encoder: bool | None = None,
    validation: Sequence[LabelledStack | tuple] | None = None,
    validate_every: int = 100,
    checkpoint_every: int = 50,
    resume: bool = True,
    device: str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune a SAM 2 model on labelled stacks and write `out_dir/model.pt`.

    stacks: `LabelledStack`s or (frames, labels) pairs, frames (T, H, W) or (T, H, W, C)
    and labels (T, H, W) integers (time or z as the first axis). model: a model name
    (official or "demo") with `checkpoint` (None = from scratch, "auto" = official / shipped
    weights, or a path), or a built model. image_size: train (and later run) at a smaller
    input, e.g. 512, for speed. lr: default 5e-5 for fine-tuning, 1e-3 from scratch.
    freeze_image_encoder: default True, except from scratch (a random encoder must learn).
    The result loads with `napari_sam2.training.load_trained` or
    `napari_sam2.model.build_model_from_checkpoint(out_dir / "model.pt")`.
    """
    scratch = checkpoint is None and not isinstance(model, SAM2)
    if isinstance(model, SAM2):
        net = model
    elif scratch:
        config = model_config(model)
        if image_size is not None:
            config = config.at_image_size(image_size)
        net = init_from_scratch(build_from_config(config)).to(device)
    else:
        net = build_model(model, checkpoint=checkpoint, device=device, image_size=image_size)
    if lr is None:
        lr = 1e-3 if scratch else 5e-5
    if freeze_image_encoder is None:
        freeze_image_encoder = not scratch
    data = [_as_stack(s) for s in stacks]
    held_out = [_as_stack(s) for s in validation] if validation else None
    options = TrainOptions(
        steps=steps,
        lr=lr,
        freeze_image_encoder=freeze_image_encoder,
        warmup_steps=min(50, max(1, steps // 10)),
        checkpoint_every=checkpoint_every,
        validate_every=validate_every if held_out else 0,
        seed=seed,
    )
    torch.manual_seed(seed)
    return train(net, data, out_dir, options, held_out, resume=resume, progress=progress)


def _as_stack(item: LabelledStack | tuple) -> LabelledStack:
    if isinstance(item, LabelledStack):
        return item
    if hasattr(item, "frames") and hasattr(item, "labels"):  # e.g. a SyntheticStack
        return LabelledStack(item.frames, np.asarray(item.labels), getattr(item, "lineage", {}))
    frames, labels = item
    return LabelledStack(frames, np.asarray(labels))
