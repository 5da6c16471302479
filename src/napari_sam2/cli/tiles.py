"""`segment --tile`: frames larger than the model input tracked in overlapping tiles at native
resolution (engine.tiled_tracking), for a prompts file or for seeds."""

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SAM2Error
from .common import progress, say

if TYPE_CHECKING:  # the engine is imported when a run needs it, so `--help` stays quick
    from ..engine.tiled_tracking import TiledTracker
    from ..io import Prompts
    from ..model import SAM2


def add_tile_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tile",
        default="off",
        metavar="SIZE|auto|off",
        help="track in overlapping tiles of SIZE pixels at native resolution instead of "
        "shrinking the frame into the model input; auto: tiles of the input size when the "
        "frame is at least 1.5 times larger; off (default)",
    )


def parse_tile(value: str | None) -> str | int:
    """The --tile value as "off", "auto" or a size in pixels; a clear error otherwise."""
    from ..engine.tiles import check_tile_options

    if value is None or value in ("off", "auto"):
        return value or "off"
    try:
        size = int(value)
    except ValueError:
        raise SAM2Error(
            f"--tile must be off, auto or a tile size in pixels (e.g. 1024), got {value!r}"
        ) from None
    try:
        check_tile_options(size, 0)
    except SAM2Error as exc:
        raise SAM2Error(f"--tile {value}: {exc}") from None
    return size


def tile_size(args: argparse.Namespace, frames: np.ndarray, model: "SAM2") -> int | None:
    """The tile size this run uses, or None to track whole frames."""
    from ..engine.tiles import resolve_tile

    return resolve_tile(parse_tile(args.tile), frames.shape[1], frames.shape[2], model.image_size)


def track_prompts_in_tiles(
    args: argparse.Namespace,
    model: "SAM2",
    frames: np.ndarray,
    prompts: "Prompts",
    prompts_name: str,
    size: int,
    options: dict,
) -> np.ndarray:
    """`segment --prompts --tile`: the prompts file's objects tracked in tiles; the labels."""
    from ..engine.tiled_tracking import TiledTracker
    from ..io import apply_prompts

    tracker = TiledTracker(model, frames, size, compile=args.compile, **options)
    with _device_memory(size):
        apply_prompts(tracker, prompts, prompts_name)
    return _track(args, tracker, args.direction)


def track_seeds_in_tiles(
    args: argparse.Namespace,
    model: "SAM2",
    frames: np.ndarray,
    seeds: np.ndarray | str,
    size: int,
    tracker_options: dict,
) -> np.ndarray:
    """`segment --seeds --tile`: every cell seeded on --seed-frame (automatic masks found tile
    by tile, or a label image) tracked both ways in tiles, without divisions; the labels.
    tracker_options: the options of each window's `Tracker`."""
    from ..engine.automatic_masks import settings_for_model
    from ..engine.tiled_tracking import TiledTracker

    if args.divisions == "yes" or args.reseed_every is not None:
        raise SAM2Error(
            "--tile tracks seeds without divisions or reseeding; drop --divisions yes and "
            "--reseed-every, or --tile"
        )
    tracker = TiledTracker(model, frames, size, **tracker_options)
    if isinstance(seeds, str):
        settings = settings_for_model(model.config.name)
        with _device_memory(size):
            seeds = tracker.automatic_seed_labels(args.seed_frame, settings)
        if not seeds.any():
            raise SAM2Error(
                f"the automatic mask generator found no object on frame {args.seed_frame}; "
                "lower its thresholds or give seeds"
            )
        say(args, f"automatic masks: {int(seeds.max())} objects on frame {args.seed_frame}")
    with _device_memory(size):
        tracker.seed_from_labels(args.seed_frame, seeds)
    return _track(args, tracker, "both")


def _track(args: argparse.Namespace, tracker: "TiledTracker", direction: str) -> np.ndarray:
    """Propagate the tracker's objects with a progress bar; its labels."""
    say(args, f"tracking in {len(tracker.windows)} tiles of up to {tracker.tile} pixels")
    total = tracker.propagation_length(direction)
    with _device_memory(tracker.tile), progress(total, args.quiet) as advance:
        for _ in tracker.propagate(direction):
            advance()
    return tracker.labels()


@contextlib.contextmanager
def _device_memory(size: int) -> Iterator[None]:
    """A GPU out of memory becomes one error line saying what to change (as without tiles)."""
    import torch

    try:
        yield
    except torch.cuda.OutOfMemoryError as exc:
        raise SAM2Error(
            f"the device ran out of memory tracking in tiles of {size}; try a smaller --tile "
            "or --device cpu"
        ) from exc
