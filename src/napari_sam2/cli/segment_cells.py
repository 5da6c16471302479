"""`segment --seeds`: every cell of a stack from a label image or SAM 2's automatic masks,
tracked both ways with divisions; and the exports any `segment` run can write (CTC folder,
tracks, review queue, measurements)."""

import argparse
from pathlib import Path

import numpy as np

from ..errors import SAM2Error
from .common import (
    add_auto_option,
    check_image_size,
    non_overlap_choice,
    parse_fixes,
    progress,
    reappear_choice,
    say,
    size_cue_choice,
    snap_outlines_choice,
)


def add_cell_options(parser: argparse.ArgumentParser, prompts_or_seeds) -> None:
    """The options of cell tracking and exports; `prompts_or_seeds` is the mutually exclusive
    group --seeds joins."""
    prompts_or_seeds.add_argument(
        "--seeds",
        metavar="auto|LABELS",
        help="instead of --prompts: every cell from a label image (TIFF or .npy; a frame, or "
        "shaped like the stack along its video axis) or 'auto' (SAM 2's automatic masks) on "
        "--seed-frame",
    )
    parser.add_argument(
        "--seed-frame", type=int, default=0, metavar="N", help="the frame the seeds are on (0)"
    )
    add_auto_option(
        parser,
        "--divisions",
        "find cell divisions while tracking forward; auto: on along T with --seeds, off "
        "along Z and for --prompts runs",
    )
    parser.add_argument(
        "--reseed-every",
        type=int,
        metavar="K",
        help="with --seeds: every K frames, cells the automatic masks find where no object is "
        "become new objects (cells entering later)",
    )
    parser.add_argument("--ctc", metavar="DIR", help="also write a Cell Tracking Challenge folder")
    parser.add_argument("--tracks", metavar="CSV", help="also write track_id,t,y,x,parent_track_id")
    parser.add_argument(
        "--geff", metavar="PATH", help="also write the tracks as a GEFF graph (a zarr folder)"
    )
    parser.add_argument("--review", metavar="CSV", help="also write the ranked review queue")
    parser.add_argument(
        "--measurements", metavar="CSV", help="also write region properties per object and frame"
    )


def check_exports(args: argparse.Namespace, inputs) -> None:
    """Refuse export paths that cannot be written, before any work."""
    from ..io import check_writable
    from ..io.ctc import check_ctc_folder

    if args.seeds is None and (args.divisions == "yes" or args.reseed_every is not None):
        raise SAM2Error(
            "--divisions yes and --reseed-every work with --seeds; a prompts file is tracked "
            "as it is (its objects keep their ids)"
        )
    files = [p for p in (args.out, args.tracks, args.review, args.measurements) if p]
    resolved = [Path(p).resolve() for p in files]
    if len(set(resolved)) != len(resolved):
        raise SAM2Error("two outputs have the same file name; give each its own")
    for path in files[1:]:
        check_writable(path, args.overwrite, inputs=inputs)
    if args.ctc:
        check_ctc_folder(args.ctc, args.overwrite)
    if getattr(args, "geff", None):
        from ..io.geff import check_geff_path

        check_geff_path(args.geff, args.overwrite)


def export_results(
    args: argparse.Namespace,
    labels: np.ndarray,
    lineage: dict[int, int],
    frames,
    stack,
    review_items=None,
) -> None:
    """Write what the export options ask for from a finished label volume."""
    from ..engine.review import review_labels
    from ..io.ctc import write_ctc
    from ..io.measurements import measure, write_measurements_csv
    from ..io.review_queue import write_review_csv
    from ..io.tracks import write_tracks_csv

    if args.ctc:
        tracks = write_ctc(args.ctc, labels, lineage, overwrite=args.overwrite)
        say(args, f"wrote {args.ctc} ({len(tracks)} tracks)")
    if args.tracks:
        write_tracks_csv(args.tracks, labels, lineage, overwrite=args.overwrite)
        say(args, f"wrote {args.tracks}")
    if getattr(args, "geff", None):
        from ..io import label_axes
        from ..io.geff import write_geff

        axes = label_axes(stack, frames)
        nodes = write_geff(
            args.geff, labels, lineage, axes, stack.spacing, stack.unit, args.overwrite
        )
        say(args, f"wrote {args.geff} ({nodes} nodes)")
    if args.review:
        items = review_items if review_items is not None else review_labels(labels).queue()
        write_review_csv(args.review, items, overwrite=args.overwrite)
        say(args, f"wrote {args.review} ({len(items)} entries)")
    if args.measurements:
        table = measure(labels, frames, stack.spacing, stack.unit)
        write_measurements_csv(args.measurements, table, overwrite=args.overwrite)
        say(args, f"wrote {args.measurements}")


def read_seeds(path: str, seed_frame: int, num_frames: int, height: int, width: int):
    """The seed frame's (H, W) labels from a label image file: 2-D, or (T, H, W)."""
    from ..io import read_labels

    name = Path(path).name
    if Path(path).suffix.lower() == ".npy":
        if not Path(path).is_file():
            raise SAM2Error(f"seeds file not found: {path}")
        try:
            seeds = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise SAM2Error(f"{name} is not a readable .npy file ({exc})") from exc
    else:
        seeds, _ = read_labels(path)
    seeds = np.squeeze(np.asarray(seeds)) if np.asarray(seeds).ndim > 3 else np.asarray(seeds)
    if seeds.shape == (num_frames, height, width):
        seeds = seeds[seed_frame]
    elif seeds.shape != (height, width):
        raise SAM2Error(
            f"{name} has shape {seeds.shape}; seeds are a frame {(height, width)} or the stack "
            f"along its video axis {(num_frames, height, width)}"
        )
    if seeds.dtype.kind not in "iub":
        raise SAM2Error(f"{name} holds {seeds.dtype} values; seeds must be integer labels")
    if seeds.dtype.kind == "i" and seeds.size and seeds.min() < 0:
        raise SAM2Error(f"{name} holds negative labels; labels are 1 or more, 0 is background")
    if not seeds.any():
        raise SAM2Error(f"{name} has no object on frame {seed_frame} (every pixel is 0)")
    return np.ascontiguousarray(seeds).astype(np.int64)


def run_cells(args: argparse.Namespace) -> int:
    """`segment --seeds ...`: seed, track every cell both ways with divisions, write."""
    import torch

    from ..engine import Tracker
    from ..engine.automatic_masks import settings_for_model
    from ..engine.cell_tracking import CellTracker
    from ..io import (
        check_writable,
        label_axes,
        open_stack,
        unchosen_axes,
        video_frames,
        write_labels,
    )
    from ..model.devices import resolve_device
    from .segment import check_model_name, load_model
    from .tiles import parse_tile, tile_size, track_seeds_in_tiles

    check_model_name(args.model)
    check_image_size(args.image_size)
    parse_tile(args.tile)
    if args.reseed_every is not None and args.reseed_every < 1:
        raise SAM2Error(f"--reseed-every must be 1 or more, got {args.reseed_every}")
    fixed = parse_fixes(args.fix)
    inputs = [args.stack] + ([] if args.seeds == "auto" else [args.seeds])
    out = check_writable(args.out, args.overwrite, inputs=inputs)
    check_exports(args, inputs)
    stack = open_stack(args.stack)
    frames = video_frames(stack, args.axis, fixed)
    for note in unchosen_axes(stack, args.axis, fixed):
        say(args, f"note: reading {note} of {stack.describe()}; choose with --fix")
    num_frames, height, width = len(frames), frames.shape[1], frames.shape[2]
    if not 0 <= args.seed_frame < num_frames:
        raise SAM2Error(
            f"--seed-frame {args.seed_frame} is out of range: the stack has {num_frames} frames "
            f"(0 to {num_frames - 1})"
        )
    seeds = "auto"
    if args.seeds != "auto":
        seeds = read_seeds(args.seeds, args.seed_frame, num_frames, height, width)
    axes = label_axes(stack, frames)
    along_z = axes[0] == "Z"
    divisions = args.divisions == "yes" or (args.divisions == "auto" and not along_z)
    device = resolve_device(args.device)
    model = load_model(args, device)
    # the same Tracker options for whole frames and for each tile's window
    options = dict(
        precision=args.precision or "auto",
        compile=args.compile,
        reappear=reappear_choice(args.reappear, axes),
        size_cue=size_cue_choice(args.size_cue, axes, model.config.name),
        non_overlap=non_overlap_choice(args.non_overlap, model.config.name),
        snap_outlines=snap_outlines_choice(args.snap_outlines, model.config.name),
    )
    size = tile_size(args, frames, model)
    if size is not None:
        labels = track_seeds_in_tiles(args, model, frames, seeds, size, options)
        write_labels(
            out, labels, axes=axes, overwrite=args.overwrite, spacing=stack.spacing, unit=stack.unit
        )
        say(args, f"wrote {out} ({len(np.unique(labels)) - 1} objects, {num_frames} frames, tiles)")
        export_results(args, labels, {}, frames, stack)
        return 0
    tracker = Tracker(model, frames, **options)
    cells = CellTracker(
        tracker,
        divisions=divisions,
        reseed_every=args.reseed_every,
        mask_settings=settings_for_model(model.config.name),
    )
    try:
        if isinstance(seeds, str):
            ids = cells.seed_automatic(args.seed_frame)
            say(args, f"automatic masks: {len(ids)} objects on frame {args.seed_frame}")
        else:
            cells.seed_from_labels(args.seed_frame, seeds)
        with progress(num_frames, args.quiet) as advance:
            for _ in cells.run():
                advance()
    except torch.cuda.OutOfMemoryError as exc:
        raise SAM2Error(
            f"the {device} ran out of memory; try a smaller --image-size or --device cpu"
        ) from exc
    result = cells.result()
    write_labels(
        out,
        result.labels,
        axes=axes,
        overwrite=args.overwrite,
        spacing=stack.spacing,
        unit=stack.unit,
    )
    say(
        args,
        f"wrote {out} ({len(result.spans)} objects, {len(result.divisions)} divisions, "
        f"{num_frames} frames)",
    )
    export_results(args, result.labels, result.lineage, frames, stack, cells.review.queue())
    return 0
