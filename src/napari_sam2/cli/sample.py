"""`sample`: a small synthetic time-lapse, its ground truth and a prompts file to try on."""

import argparse
from pathlib import Path

import numpy as np

from ..errors import SAM2Error

# two textured, deforming, bleaching cells from the generator the demo model is trained on;
# they neither divide nor leave the field, so the ground truth keeps one id per cell. Radius 9
# px: at the model's 256-pixel input, as large as the cells of most of its training stacks.
# The seed was picked among 1-7, where the demo model's lowest-frame IoU was 0.76-0.87
# (docs/demo_model.md).
SAMPLE_FRAMES, SAMPLE_HEIGHT, SAMPLE_WIDTH = 12, 128, 160
SAMPLE_CELLS, SAMPLE_SEED, SAMPLE_RADIUS = 2, 4, 9.0
SAMPLE_FILES = ("timelapse.tif", "ground_truth.tif", "prompts.json")


def sample_stack():
    """The sample time-lapse (T, Y, X) uint16 and its ground-truth labels."""
    from ..synthetic import timelapse

    stack = timelapse(
        SAMPLE_FRAMES,
        SAMPLE_HEIGHT,
        SAMPLE_WIDTH,
        SAMPLE_CELLS,
        seed=SAMPLE_SEED,
        cell_radius=SAMPLE_RADIUS,
        num_divisions=0,
        leaving=False,
    )
    return stack.frames, stack.labels


def click_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel deepest inside a (H, W) bool mask, where a user would click."""
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(x), float(y)


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
    frames, truth = sample_stack()
    timelapse, labels, prompts_file = (outdir / name for name in SAMPLE_FILES)
    with atomic_output(timelapse, args.overwrite) as temporary:
        tifffile.imwrite(temporary, frames, imagej=True, metadata={"axes": "TYX"})
    write_labels(labels, truth, axes="TYX", overwrite=args.overwrite)
    prompts = Prompts(video_axis="T", frame_shape=(SAMPLE_HEIGHT, SAMPLE_WIDTH))
    for i in range(1, SAMPLE_CELLS + 1):
        x, y = click_point(truth[0] == i)
        first = FramePrompts(points=[(x, y, 1)])
        prompts.objects.append(ObjectPrompts(i, f"cell {i}", {0: first}))
    write_prompts(prompts_file, prompts, overwrite=args.overwrite)
    for path in (timelapse, labels, prompts_file):
        print(path)
    return 0
