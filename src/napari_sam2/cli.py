"""The `napari-sam2` command: list and fetch weights, segment a stack headless from a prompts
file, write a sample to try it on, or open napari.

Every user mistake ends as one line, "napari-sam2: error: ...", and a non-zero exit code;
outputs are written atomically, so a failed run leaves no partial file behind.
"""

import argparse
import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .errors import SAM2Error

DEFAULT_MODEL = "sam2.1_hiera_tiny"
PROG = "napari-sam2"
# the sample: a small time-lapse of two cells that pass each other
SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH = 12, 128, 160
SAMPLE_CENTERS = ((40, 50), (80, 110))
SAMPLE_FILES = ("timelapse.tif", "ground_truth.tif", "prompts.json")


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` (default: sys.argv[1:]); returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already reported
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.command(args)
    except SAM2Error as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Segment and track objects through time-lapses and z-stacks with SAM 2.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list the official models and their cache")
    _cache_option(models)
    models.set_defaults(command=_models)

    fetch = commands.add_parser("fetch", help="download one model's official checkpoint")
    fetch.add_argument("name", metavar="NAME", help="a model name, see `napari-sam2 models`")
    _cache_option(fetch)
    fetch.add_argument(
        "--url", help="base address of the weights (default: Meta's, or $NAPARI_SAM2_WEIGHTS_URL)"
    )
    fetch.set_defaults(command=_fetch)

    segment = commands.add_parser(
        "segment", help="track the objects of a prompts file through a stack, headless"
    )
    segment.add_argument("stack", metavar="STACK", help="a TIFF, .npy or .zarr stack")
    segment.add_argument("--prompts", required=True, metavar="JSON", help="the prompts file")
    segment.add_argument("--out", required=True, metavar="TIF", help="the label TIFF to write")
    segment.add_argument(
        "--model",
        metavar="NAME",
        help=f"the model (default: the checkpoint's file name, the prompts' model, or "
        f"{DEFAULT_MODEL}); without --checkpoint its official weights are used, downloaded "
        f"once",
    )
    segment.add_argument("--checkpoint", metavar="FILE", help="a checkpoint file (works offline)")
    segment.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    segment.add_argument(
        "--axis", help="the video axis: T, Z or an axis index (default: T, else Z)"
    )
    segment.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="AXIS=INDEX",
        help="the plane to use on another axis, e.g. --fix Z=4 --fix C=1 (default: 0)",
    )
    segment.add_argument("--direction", default="both", choices=("forward", "backward", "both"))
    segment.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    segment.add_argument(
        "--image-size",
        type=int,
        metavar="N",
        help="model input size, a multiple of 32 (default 1024; smaller is faster, coarser)",
    )
    _cache_option(segment)
    segment.add_argument("--quiet", action="store_true", help="no progress output")
    segment.set_defaults(command=_segment)

    sample = commands.add_parser(
        "sample", help="write a synthetic time-lapse, its ground truth and a prompts file"
    )
    sample.add_argument("outdir", metavar="OUTDIR")
    sample.add_argument("--overwrite", action="store_true", help="replace existing files")
    sample.set_defaults(command=_sample)

    view = commands.add_parser(
        "view", help="open napari with the SAM 2 widget, optionally with a stack or sample data"
    )
    view.add_argument("stack", nargs="?", metavar="STACK")
    view.add_argument(
        "--sample",
        choices=("timelapse", "zstack"),
        help="open a synthetic sample (cells over time, or nuclei through z)",
    )
    view.set_defaults(command=_view)
    return parser


def _cache_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where checkpoints are kept (default: $NAPARI_SAM2_CACHE, else the user cache)",
    )


# -- models and fetch -------------------------------------------------------------------


def _models(args: argparse.Namespace) -> int:
    from .model.weights import REGISTRY, cache_directory, cached_path, is_cached

    print(f"weights cache: {cache_directory(args.cache_dir)}")
    rows = [("model", "size", "cached", "path")]
    for name, entry in REGISTRY.items():
        cached = is_cached(name, args.cache_dir)
        path = str(cached_path(name, args.cache_dir)) if cached else "-"
        rows.append((name, f"~{entry.size_mb} MB", "yes" if cached else "no", path))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for *cells, path in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)),
            path,
            sep="  ",
        )
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from .model.weights import fetch_checkpoint

    print(fetch_checkpoint(args.name, args.cache_dir, args.url))
    return 0


# -- segment ---------------------------------------------------------------------------


def _segment(args: argparse.Namespace) -> int:
    import torch

    from .engine import Tracker, propagate_or_restore
    from .io import (
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
    from .model import MODEL_NAMES, build_model

    if args.model is not None and args.model not in MODEL_NAMES:
        raise SAM2Error(f"unknown model {args.model!r}; choose one of: {', '.join(MODEL_NAMES)}")
    if args.image_size is not None and (args.image_size <= 0 or args.image_size % 32):
        raise SAM2Error(f"--image-size must be a positive multiple of 32, got {args.image_size}")
    fixed = _parse_fixes(args.fix)
    out = check_writable(args.out, args.overwrite)
    stack = open_stack(args.stack)
    prompts_name = Path(args.prompts).name
    prompts = read_prompts(args.prompts)
    axis = args.axis if args.axis is not None else prompts.video_axis
    frames = video_frames(stack, axis, fixed)
    for note in unchosen_axes(stack, axis, fixed):
        _say(args, f"note: reading {note} of {stack.describe()}; choose with --fix")
    check_prompts_fit(prompts, len(frames), frames.shape[1], frames.shape[2], prompts_name)
    if not any(obj.frames for obj in prompts.objects):
        raise SAM2Error(f"{prompts_name}: objects: no object has a prompt; nothing to segment")
    name, checkpoint = _model_and_checkpoint(args, prompts.model)
    from .model.devices import resolve_device

    device = resolve_device(args.device)
    model = build_model(name, checkpoint=checkpoint, device=device, image_size=args.image_size)
    norm = prompts.normalization
    options = {}
    if norm is not None and norm.contrast_limits is not None:
        options["contrast_limits"] = norm.contrast_limits
    elif norm is not None and norm.percentiles is not None:
        options["percentiles"] = norm.percentiles
    tracker = Tracker(model, frames, **options)
    try:
        apply_prompts(tracker, prompts, prompts_name)
        total = tracker.propagation_length(args.direction)
        with _progress(total, args.quiet) as advance:
            for _ in propagate_or_restore(tracker, args.direction):
                advance()
    except torch.cuda.OutOfMemoryError as exc:
        raise SAM2Error(
            f"the {device} ran out of memory; try a smaller --image-size or --device cpu"
        ) from exc
    write_labels(out, tracker.labels(), axes=label_axes(stack, frames), overwrite=args.overwrite)
    _say(args, f"wrote {out} ({len(prompts.objects)} objects, {len(frames)} frames)")
    return 0


def _parse_fixes(values: list[str]) -> dict[str, int]:
    fixed = {}
    for value in values:
        axis, sep, index = value.partition("=")
        if not sep or not axis or not index.strip().isdigit():
            raise SAM2Error(f"--fix expects AXIS=INDEX such as Z=4, got {value!r}")
        fixed[axis.strip()] = int(index)
    return fixed


def _model_and_checkpoint(args: argparse.Namespace, prompts_model: str | None):
    from .model import MODEL_NAMES
    from .model.weights import fetch_checkpoint

    if args.checkpoint is not None:
        checkpoint = Path(args.checkpoint)
        if not checkpoint.is_file():
            raise SAM2Error(f"checkpoint file not found: {checkpoint}")
        # an official file keeps its official name, which says which model it holds
        from_name = checkpoint.stem if checkpoint.stem in MODEL_NAMES else None
        return args.model or from_name or prompts_model or DEFAULT_MODEL, checkpoint
    name = args.model or prompts_model or DEFAULT_MODEL
    return name, fetch_checkpoint(name, args.cache_dir, progress=not args.quiet)


@contextlib.contextmanager
def _progress(total: int, quiet: bool) -> Iterator[Callable[[], None]]:
    """A callable to advance by one frame: a tqdm bar if tqdm is installed, else a counter."""
    if quiet:
        yield lambda: None
        return
    if importlib.util.find_spec("tqdm") is not None:
        from tqdm import tqdm

        with tqdm(total=total, unit="frame", desc="propagating", file=sys.stderr) as bar:
            yield lambda: bar.update(1)
        return
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        print(f"\rpropagating: {done}/{total} frames", end="", file=sys.stderr, flush=True)

    try:
        yield advance
    finally:
        print(file=sys.stderr)


def _say(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {message}", file=sys.stderr)


# -- sample ----------------------------------------------------------------------------


def _sample(args: argparse.Namespace) -> int:
    import tifffile

    from .io import FramePrompts, ObjectPrompts, Prompts, atomic_output, write_labels, write_prompts
    from .synthetic import moving_cells

    outdir = Path(args.outdir)
    if outdir.exists() and not outdir.is_dir():
        raise SAM2Error(f"{outdir} exists and is not a folder")
    existing = [name for name in SAMPLE_FILES if (outdir / name).exists()]
    if existing and not args.overwrite:
        raise SAM2Error(f"{outdir} already holds {', '.join(existing)}; use --overwrite")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SAM2Error(f"cannot create {outdir} ({exc.strerror or exc})") from exc
    frames, truth = moving_cells(
        num_frames=SAMPLE_FRAMES,
        height=SAMPLE_HEIGHT,
        width=SAMPLE_WIDTH,
        centers=SAMPLE_CENTERS,
        radius=14.0,
        dtype=np.uint16,
        bleaching=0.02,
    )
    timelapse, labels, prompts_file = (outdir / name for name in SAMPLE_FILES)
    with atomic_output(timelapse, args.overwrite) as temporary:
        tifffile.imwrite(temporary, frames, imagej=True, metadata={"axes": "TYX"})
    write_labels(labels, truth, axes="TYX", overwrite=args.overwrite)
    prompts = Prompts(video_axis="T", frame_shape=(SAMPLE_HEIGHT, SAMPLE_WIDTH))
    for i, (y, x) in enumerate(SAMPLE_CENTERS):
        first = FramePrompts(points=[(float(x), float(y), 1)])
        prompts.objects.append(ObjectPrompts(i + 1, f"cell {i + 1}", {0: first}))
    write_prompts(prompts_file, prompts, overwrite=args.overwrite)
    for path in (timelapse, labels, prompts_file):
        print(path)
    return 0


# -- view ------------------------------------------------------------------------------


def _view(args: argparse.Namespace) -> int:
    """Open napari with the stack as an image layer and the SAM 2 dock widget."""
    from .io import open_stack

    stack = open_stack(args.stack) if args.stack else None
    try:
        import napari
    except ImportError as exc:
        raise SAM2Error("`napari-sam2 view` needs napari: pip install 'napari[all]'") from exc
    viewer = napari.Viewer()
    if stack is not None:
        rgb = stack.axes.endswith("S") and stack.shape[-1] in (3, 4)
        layer_axes = stack.axes[:-1] if rgb else stack.axes
        viewer.add_image(stack.data, name=stack.path.stem, rgb=rgb)
        viewer.dims.axis_labels = list(layer_axes)
    if args.sample:
        viewer.open_sample("napari-sam2", args.sample)
    viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
