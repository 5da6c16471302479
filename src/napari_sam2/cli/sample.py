"""`sample`: a small synthetic time-lapse, its ground truth and a prompts file to try on."""

import argparse
from pathlib import Path

import numpy as np

from ..errors import SAM2Error

# two cells that pass each other
SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH = 12, 128, 160
SAMPLE_CENTERS = ((40, 50), (80, 110))
SAMPLE_FILES = ("timelapse.tif", "ground_truth.tif", "prompts.json")


def add_parser(commands) -> None:
    sample = commands.add_parser(
        "sample", help="write a synthetic time-lapse, its ground truth and a prompts file"
    )
    sample.add_argument("outdir", metavar="OUTDIR")
    sample.add_argument("--overwrite", action="store_true", help="replace existing files")
    sample.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    import tifffile

    from ..io import (
        FramePrompts,
        ObjectPrompts,
        Prompts,
        atomic_output,
        write_labels,
        write_prompts,
    )
    from ..synthetic import moving_cells

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
