"""`train`: fine-tune a model on proofread stacks (or train one from scratch) and write a
checkpoint that `segment --checkpoint` and the widget load like an official one."""

import argparse
import sys
from pathlib import Path

import numpy as np

from ..errors import SAM2Error
from .common import (
    PROG,
    add_axis_options,
    add_cache_option,
    add_device_option,
    check_image_size,
    parse_fixes,
    say,
)
from .segment import add_model_options, check_model_name, load_model


def add_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="fine-tune a model on stacks and their proofread label volumes",
        description="Fine-tune SAM 2 on stacks and their label volumes (same (T, H, W) each; "
        "0 background, one id per object across frames) with the SAM 2 training recipe. "
        "Running the same command again resumes an interrupted run.",
    )
    train.add_argument(
        "--images", nargs="+", required=True, metavar="STACK", help="TIFF, .npy or .zarr stacks"
    )
    train.add_argument(
        "--labels",
        nargs="+",
        required=True,
        metavar="LABELS",
        help="their label volumes, in the same order",
    )
    train.add_argument(
        "--out", required=True, metavar="DIR", help="gets model.pt, model.json, training state"
    )
    add_model_options(train)
    train.add_argument(
        "--from-scratch",
        action="store_true",
        help="start from random weights instead of the model's weights (trains the image "
        "encoder too; needs far more steps)",
    )
    train.add_argument("--steps", type=int, default=500, help="optimizer steps (default 500)")
    train.add_argument("--lr", type=float, help="learning rate (default 5e-5, from scratch 1e-3)")
    train.add_argument(
        "--train-image-encoder",
        action="store_true",
        help="train the image encoder too (default: frozen when fine-tuning, faster)",
    )
    train.add_argument(
        "--image-size",
        type=int,
        metavar="N",
        help="train and run at this input size, a multiple of 32 (default: the model's)",
    )
    train.add_argument(
        "--validation-images", nargs="+", default=[], metavar="STACK", help="held-out stacks"
    )
    train.add_argument(
        "--validation-labels", nargs="+", default=[], metavar="LABELS", help="their labels"
    )
    train.add_argument(
        "--validate-every", type=int, default=100, metavar="N", help="steps (default 100)"
    )
    train.add_argument(
        "--checkpoint-every",
        type=int,
        default=50,
        metavar="N",
        help="save the training state every N steps, to resume from (default 50)",
    )
    add_axis_options(train)
    add_device_option(train)
    train.add_argument("--seed", type=int, default=0)
    add_cache_option(train)
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    from ..model.devices import resolve_device
    from ..training import fine_tune

    check_model_name(args.model)
    check_image_size(args.image_size)
    for option in ("steps", "validate_every", "checkpoint_every"):
        if getattr(args, option) <= 0:
            raise SAM2Error(f"--{option.replace('_', '-')} must be at least 1")
    if args.from_scratch and args.checkpoint is not None:
        raise SAM2Error("--from-scratch starts from random weights; leave out --checkpoint")
    fixed = parse_fixes(args.fix)
    stacks = read_pairs(args.images, args.labels, args.axis, fixed, "--images", "--labels")
    validation = read_pairs(
        args.validation_images,
        args.validation_labels,
        args.axis,
        fixed,
        "--validation-images",
        "--validation-labels",
    )
    device = resolve_device(args.device)
    if args.from_scratch:
        model, checkpoint = args.model or "demo", None
    else:  # a checkpoint file keeps the size it was trained at unless --image-size says
        model, checkpoint = load_model(args, device), "auto"
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SAM2Error(f"--out {out} exists and is not a folder")
    try:
        result = fine_tune(
            stacks,
            out,
            model=model,
            checkpoint=checkpoint,
            image_size=args.image_size,
            steps=args.steps,
            lr=args.lr,
            freeze_image_encoder=None if args.from_scratch else not args.train_image_encoder,
            validation=validation or None,
            validate_every=args.validate_every,
            checkpoint_every=args.checkpoint_every,
            device=str(device),
            seed=args.seed,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            f"\n{PROG}: interrupted; run the same command again to resume from the state "
            f"saved in {out} (every {args.checkpoint_every} steps)",
            file=sys.stderr,
        )
        return 130
    scores = [r for r in result.history if "val J&F" in r]
    if scores:
        last = scores[-1]
        say(
            args,
            f"validation at step {int(last['step'])}: click IoU {last['val click_iou']:.3f}, "
            f"J&F {last['val J&F']:.3f}",
        )
    say(args, f"wrote {result.model_path} after {result.steps} steps")
    say(
        args,
        f"use it with: {PROG} segment STACK --prompts PROMPTS --out LABELS --checkpoint "
        f"{result.model_path}, or as the widget's checkpoint file",
    )
    return 0


def read_pairs(
    images: list[str],
    labels: list[str],
    axis: str | None,
    fixed: dict[str, int],
    images_option: str,
    labels_option: str,
) -> list[tuple[object, np.ndarray]]:
    """(frames, labels) per stack, the frames lazy and the labels read whole."""
    from ..io import open_stack, video_frames

    if len(images) != len(labels):
        raise SAM2Error(
            f"{images_option} names {len(images)} stacks but {labels_option} {len(labels)} "
            "label volumes; give one label volume per stack, in the same order"
        )
    pairs = []
    for image_path, label_path in zip(images, labels, strict=True):
        frames = video_frames(open_stack(image_path), axis, fixed)
        label_stack = open_stack(label_path)
        own = {k: v for k, v in fixed.items() if k.upper() in label_stack.axes}
        label_axis = axis if axis is not None and str(axis).upper() in label_stack.axes else None
        view = video_frames(label_stack, label_axis, own)
        volume = np.stack([np.asarray(view[t]) for t in range(len(view))])
        if volume.shape != frames.shape[:3]:
            raise SAM2Error(
                f"{Path(label_path).name} has {volume.shape[0]} frames of "
                f"{volume.shape[1]} x {volume.shape[2]} but {Path(image_path).name} has "
                f"{frames.shape[0]} of {frames.shape[1]} x {frames.shape[2]}; a label volume "
                "must match its stack"
            )
        pairs.append((frames, as_label_ids(volume, Path(label_path).name)))
    return pairs


def as_label_ids(volume: np.ndarray, name: str) -> np.ndarray:
    """Integer ids; float files are accepted when every value is a whole number ≥ 0."""
    if volume.dtype.kind in "ui":
        if volume.min() < 0:
            raise SAM2Error(f"{name} has negative label ids; 0 is background, objects 1 and up")
        return volume
    if volume.dtype.kind == "f" and np.all(np.isfinite(volume)) and np.all(volume >= 0):
        if np.array_equal(volume, np.round(volume)):
            return volume.astype(np.int64)
    raise SAM2Error(
        f"{name} holds {volume.dtype} values that are not label ids; a label volume holds "
        "whole numbers, 0 for background and one id per object"
    )
