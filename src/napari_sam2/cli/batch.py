"""`batch`: segment many stacks, one dask.distributed task per stack, on this machine or a
cluster; resumable, with DIR/summary.csv (napari_sam2.batch does the work)."""

import argparse
import sys
from pathlib import Path

from .common import PROG, add_axis_options, add_device_option
from .segment import add_model_options

PATHS = ("--checkpoint", "--cache-dir")
# segment options a batch passes on unchanged to every stack; segment's parser checks them
FORWARDED = {
    "--checkpoint": "FILE",
    "--image-size": "N",
    "--cache-dir": "DIR",
    "--precision": "auto|fast|float32|bfloat16|bfloat16-encoder|bfloat16-heavy",
    "--direction": "forward|backward|both",
    "--reappear": "auto|yes|no",
    "--size-cue": "auto|yes|no",
    "--non-overlap": "auto|yes|no",
    "--snap-outlines": "auto|yes|no",
    "--clicked-region": "auto|yes|no",
    "--exclusive-clicks": "auto|yes|no",
    "--follow-motion": "auto|yes|no",
    "--seed-frame": "N",
    "--divisions": "auto|yes|no",
    "--reseed-every": "K",
    "--tile": "SIZE|auto|off",
}


def add_parser(commands) -> None:
    batch = commands.add_parser(
        "batch",
        help="segment many stacks on dask.distributed (this machine or a cluster), resumable",
    )
    batch.add_argument("stacks", nargs="+", metavar="STACK", help="TIFF, .npy or .zarr stacks")
    batch.add_argument(
        "--out", required=True, metavar="DIR", help="folder for <stem>.labels.tif, summary.csv"
    )
    source = batch.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--prompts",
        metavar="FILE_OR_DIR",
        help="one prompts file for every stack, or a folder of <stem>.json",
    )
    source.add_argument(
        "--seeds",
        metavar="auto|FILE|DIR",
        help="automatic seeds, one seed label image for every stack, or a folder of <stem>.tif",
    )
    add_model_options(batch)
    for option, metavar in FORWARDED.items():
        if option != "--checkpoint":  # add_model_options has it
            batch.add_argument(option, metavar=metavar, help="as for segment")
    batch.add_argument("--compile", action="store_true", help="as for segment")
    add_device_option(batch)
    add_axis_options(batch)
    batch.add_argument(
        "--scheduler",
        default="local",
        metavar="local|ADDRESS",
        help="local (default): worker processes on this machine; or a dask scheduler's "
        "address (tcp://host:8786) or scheduler file",
    )
    batch.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local worker processes (default: from the cores and memory)",
    )
    batch.add_argument("--ctc", action="store_true", help="also write DIR/<stem>.ctc/")
    batch.add_argument(
        "--overwrite", action="store_true", help="segment again stacks whose outputs are complete"
    )
    batch.add_argument("--quiet", action="store_true", help="no progress output")
    batch.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    from ..batch import run as run_batch
    from .tiles import parse_tile

    parse_tile(args.tile)  # a bad value is one error now, not a failed row per stack
    extra = []
    for option in FORWARDED:
        value = getattr(args, option[2:].replace("-", "_"))
        if value is not None and option in PATHS:  # workers may run in another folder
            value = Path(value).absolute()
        extra += [option, str(value)] if value is not None else []
    extra += ["--compile"] if args.compile else []
    for fix in args.fix:
        extra += ["--fix", fix]
    results = run_batch(
        args.stacks,
        args.out,
        prompts=args.prompts,
        seeds=args.seeds,
        model=args.model,
        scheduler=args.scheduler,
        workers=args.workers,
        ctc=args.ctc,
        axis=args.axis,
        device=args.device,
        overwrite=args.overwrite,
        segment_options=extra,
        progress=not args.quiet,
    )
    failed = [result for result in results if result.status == "failed"]
    for result in failed:
        print(f"{PROG}: error: {result.stack}: {result.error}", file=sys.stderr)
    if failed:
        print(
            f"{PROG}: {len(failed)} of {len(results)} stacks failed; see {args.out}/summary.csv",
            file=sys.stderr,
        )
    return 1 if failed else 0
