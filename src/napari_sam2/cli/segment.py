"""`segment`: track the objects of a prompts file through a stack and write a label TIFF."""

import argparse
from pathlib import Path

from ..errors import SAM2Error
from .common import (
    DEFAULT_MODEL,
    add_auto_option,
    add_axis_options,
    add_cache_option,
    add_device_option,
    auto_choice,
    check_image_size,
    non_overlap_choice,
    parse_fixes,
    progress,
    reappear_choice,
    say,
    size_cue_choice,
    snap_outlines_choice,
)
from .segment_cells import add_cell_options, check_exports, export_results, run_cells
from .tiles import add_tile_option, parse_tile, tile_size, track_prompts_in_tiles


def add_parser(commands) -> None:
    segment = commands.add_parser(
        "segment", help="track the objects of a prompts file through a stack, headless"
    )
    segment.add_argument("stack", metavar="STACK", help="a TIFF, .npy or .zarr stack")
    prompts_or_seeds = segment.add_mutually_exclusive_group(required=True)
    prompts_or_seeds.add_argument("--prompts", metavar="JSON", help="the prompts file")
    segment.add_argument("--out", required=True, metavar="TIF", help="the label TIFF to write")
    add_model_options(segment)
    add_device_option(segment)
    segment.add_argument(
        "--precision",
        default=None,
        # engine.precision.PRECISIONS, without importing torch (a test checks they agree)
        choices=("auto", "fast", "float32", "bfloat16", "bfloat16-encoder", "bfloat16-heavy"),
        help="a session file's own precision, else auto: bfloat16 on CUDA as the reference "
        "does, float32 elsewhere; fast: the same, but on a CPU with bfloat16 instructions "
        "and a 512 px or larger input the image encoder, memory attention and memory encoder "
        "in bfloat16 and the SAM heads in float32 (bfloat16-heavy); bfloat16-encoder: the "
        "image encoder alone in bfloat16; fast is the widget's default",
    )
    segment.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the heavy parts first (minutes; pays off on long stacks)",
    )
    add_axis_options(segment)
    add_auto_option(
        segment,
        "--reappear",
        "may an object lost on a frame be found again later? auto: no along Z (a "
        "nucleus spans one run of slices), yes otherwise (cells leave and come back)",
    )
    add_auto_option(
        segment,
        "--size-cue",
        "trim each mask to the object's half-maximum edge measured on its prompted frame "
        "(for fluorescent nuclei through z)? auto: the model's choice along Z (yes for demo), "
        "no along T",
    )
    add_auto_option(
        segment,
        "--non-overlap",
        "keep tracked objects apart, each pixel to the object with the highest logit, in "
        "the masks and in what is remembered? auto: the prompts file's choice, else the "
        "model's (yes for demo, no for SAM 2 checkpoints); a session log replays its own",
    )
    add_auto_option(
        segment,
        "--snap-outlines",
        "move each tracked mask's outline (by up to 2 pixels) to the brightness level "
        "of the image that agrees best with it? auto: the prompts file's choice, else the "
        "model's (yes for demo, no for SAM 2 checkpoints); a session log replays its own",
    )
    add_auto_option(
        segment,
        "--clicked-region",
        "keep each click's mask to the connected pieces its object clicks lie on? auto: "
        "the prompts file's choice, else the model's (yes for demo, no for SAM 2 "
        "checkpoints); a session log replays its own",
    )
    add_auto_option(
        segment,
        "--follow-motion",
        "shift each remembered frame's memory along the object's motion measured in the "
        "images, so that a moving cell's mask is not held to where its memories had it? "
        "auto: the model's choice (yes for demo, no for SAM 2 checkpoints); a session log "
        "replays its own",
    )
    add_auto_option(
        segment,
        "--exclusive-clicks",
        "keep each object's clicked mask off the other objects' clicks on that frame "
        "(added as background clicks), so that touching cells clicked one each come apart? "
        "auto: the prompts file's choice, else the model's (yes for demo, no for SAM 2 "
        "checkpoints); a session log replays its own",
    )
    segment.add_argument(
        "--direction",
        default="both",
        choices=("forward", "backward", "both"),
        help="for prompts without a session log (default: both); a session replays its own",
    )
    segment.add_argument(
        "--prompts-only",
        action="store_true",
        help="a session file: apply only its final prompts and propagate --direction (e.g. "
        "on another stack of the same geometry) instead of replaying its log exactly",
    )
    segment.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    segment.add_argument(
        "--image-size",
        type=int,
        metavar="N",
        help="model input size, a multiple of 32 (default: 1024, or the size a trained "
        "checkpoint was trained at; smaller is faster, coarser)",
    )
    add_tile_option(segment)
    add_cache_option(segment)
    segment.add_argument("--quiet", action="store_true", help="no progress output")
    add_cell_options(segment, prompts_or_seeds)
    segment.set_defaults(command=run)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="NAME",
        help=f"an official model or demo (default: what --checkpoint holds, else the prompts' "
        f"model, else {DEFAULT_MODEL}); official weights are downloaded once, demo ships "
        f"with the package",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a checkpoint file: official, or written by `napari-sam2 train` (works offline)",
    )


def check_model_name(name: str | None) -> None:
    from ..model.catalogue import model_entry

    if name is not None:
        model_entry(name)


def load_model(args: argparse.Namespace, device, fallback: str | None = None):
    """The model the options ask for: a checkpoint file (with the model it holds), else
    `--model`, else `fallback`, else the default, with its official or shipped weights."""
    from ..model import build_model, build_model_from_checkpoint
    from ..model.catalogue import model_entry
    from ..model.weights import fetch_checkpoint

    if args.checkpoint is not None:
        return build_model_from_checkpoint(
            args.checkpoint, name=args.model, device=device, image_size=args.image_size
        )
    name = args.model or fallback or DEFAULT_MODEL
    try:
        check_model_name(name)
    except SAM2Error as exc:  # --model was checked before anything was read
        raise SAM2Error(f"the prompts file's model: {exc}; or pass --model") from exc
    weights = (
        None
        if model_entry(name).shipped
        else fetch_checkpoint(name, args.cache_dir, progress=not args.quiet)
    )
    return build_model(name, checkpoint=weights, device=device, image_size=args.image_size)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..engine import Tracker, propagate_or_restore
    from ..io import (
        apply_prompts,
        check_prompts_fit,
        check_writable,
        label_axes,
        open_stack,
        read_prompts,
        unchosen_axes,
        video_frames,
        write_labels,
    )
    from ..io.label_files import LABEL_SUFFIXES
    from ..model.catalogue import (
        clicked_region_by_default,
        exclusive_clicks_by_default,
        follow_motion_by_default,
    )
    from ..model.devices import resolve_device
    from ..session.headless import (
        replay_log,
        session_fixes,
        session_log,
        session_model,
        session_precision,
    )

    if args.seeds is not None:  # every cell, from a label image or automatic masks
        return run_cells(args)
    check_model_name(args.model)
    check_image_size(args.image_size)
    parse_tile(args.tile)
    fixed = parse_fixes(args.fix)
    out = check_writable(
        args.out, args.overwrite, inputs=(args.stack, args.prompts), suffixes=LABEL_SUFFIXES
    )
    check_exports(args, inputs=(args.stack, args.prompts))
    stack = open_stack(args.stack)
    prompts_name = Path(args.prompts).name
    prompts = read_prompts(args.prompts)
    log = session_log(prompts, prompts_name, args.prompts_only)  # None: prompts only
    axis = args.axis if args.axis is not None else prompts.video_axis
    fixed = fixed or session_fixes(prompts)
    frames = video_frames(stack, axis, fixed)
    for note in unchosen_axes(stack, axis, fixed):
        say(args, f"note: reading {note} of {stack.describe()}; choose with --fix")
    check_prompts_fit(prompts, len(frames), frames.shape[1], frames.shape[2], prompts_name)
    if not any(obj.frames for obj in prompts.objects):
        raise SAM2Error(f"{prompts_name}: objects: no object has a prompt; nothing to segment")
    device = resolve_device(args.device)
    args.checkpoint, args.image_size = session_model(
        prompts, prompts_name, args.model, args.checkpoint, args.image_size
    )
    model = load_model(args, device, fallback=prompts.model)
    norm = prompts.normalization
    options = {}
    if norm is not None and norm.contrast_limits is not None:
        options["contrast_limits"] = norm.contrast_limits
    elif norm is not None and norm.percentiles is not None:
        options["percentiles"] = norm.percentiles
    axes = label_axes(stack, frames)
    options["reappear"] = reappear_choice(args.reappear, axes, prompts.reappear)
    options["size_cue"] = size_cue_choice(args.size_cue, axes, model.config.name, prompts.size_cue)
    options["non_overlap"] = non_overlap_choice(
        args.non_overlap, model.config.name, prompts.non_overlap
    )
    options["snap_outlines"] = snap_outlines_choice(
        args.snap_outlines, model.config.name, prompts.snap_outlines
    )
    options["clicked_region"] = auto_choice(
        args.clicked_region,
        prompts.clicked_region,
        lambda: clicked_region_by_default(model.config.name),
    )
    options["follow_motion"] = auto_choice(
        args.follow_motion, None, lambda: follow_motion_by_default(model.config.name)
    )
    options["exclusive_clicks"] = auto_choice(
        args.exclusive_clicks,
        prompts.exclusive_clicks,
        lambda: exclusive_clicks_by_default(model.config.name),
    )
    options["precision"] = session_precision(prompts, args.precision, device)
    size = tile_size(args, frames, model)
    if size is not None:
        if log is not None:
            raise SAM2Error(
                "--tile tracks a prompts file's final prompts; add --prompts-only to use a "
                "session file's"
            )
        labels = track_prompts_in_tiles(args, model, frames, prompts, prompts_name, size, options)
        write_labels(
            out,
            labels,
            axes=axes,
            overwrite=args.overwrite,
            spacing=stack.spacing,
            unit=stack.unit,
        )
        say(args, f"wrote {out} ({len(prompts.objects)} objects, {len(frames)} frames, tiles)")
        export_results(args, labels, {}, frames, stack)
        return 0
    tracker = Tracker(model, frames, compile=args.compile, **options)
    try:
        if log is not None:  # a session: its log replayed, as the user made it
            with progress(None, args.quiet) as advance:
                _, same = replay_log(tracker, prompts, log, prompts_name, lambda _: advance())
            if not same:
                say(
                    args,
                    "note: the labels differ from those saved with the session "
                    "(another model, stack, device, precision or version?)",
                )
        else:
            apply_prompts(tracker, prompts, prompts_name)
            total = tracker.propagation_length(args.direction)
            with progress(total, args.quiet) as advance:
                for _ in propagate_or_restore(tracker, args.direction):
                    advance()
    except torch.cuda.OutOfMemoryError as exc:
        raise SAM2Error(
            f"the {device} ran out of memory; try a smaller --image-size or --device cpu"
        ) from exc
    write_labels(
        out,
        tracker.labels(),
        axes=axes,
        overwrite=args.overwrite,
        spacing=stack.spacing,
        unit=stack.unit,
    )
    say(args, f"wrote {out} ({len(prompts.objects)} objects, {len(frames)} frames)")
    export_results(args, tracker.labels(), {}, frames, stack)
    return 0
