"""What the subcommands share: option groups, messages and the progress display."""

import argparse
import contextlib
import importlib.util
import sys
from collections.abc import Callable, Iterator

from ..errors import SAM2Error

PROG = "napari-sam2"
DEFAULT_MODEL = "sam2.1_hiera_tiny"


def add_cache_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where checkpoints are kept (default: $NAPARI_SAM2_CACHE, else the user cache)",
    )


def add_axis_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--axis", help="the video axis: T, Z or an axis index (default: T, else Z)")
    parser.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="AXIS=INDEX",
        help="the plane to use on another axis, e.g. --fix Z=4 --fix C=1 (default: 0)",
    )


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))


def check_image_size(value: int | None) -> None:
    from ..model.config import MAX_IMAGE_SIZE

    if value is not None and not (32 <= value <= MAX_IMAGE_SIZE and value % 32 == 0):
        raise SAM2Error(
            f"--image-size must be a positive multiple of 32 up to {MAX_IMAGE_SIZE}, got {value}"
        )


def parse_fixes(values: list[str]) -> dict[str, int]:
    """--fix AXIS=INDEX options as {axis: index}."""
    fixed = {}
    for value in values:
        axis, sep, index = value.partition("=")
        index = index.strip()
        if not sep or not axis.strip() or not (index.isascii() and index.isdigit()):
            raise SAM2Error(f"--fix expects AXIS=INDEX such as Z=4, got {value!r}")
        fixed[axis.strip()] = int(index)
    return fixed


@contextlib.contextmanager
def progress(total: int, quiet: bool) -> Iterator[Callable[[], None]]:
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


def say(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {message}", file=sys.stderr)


def add_auto_option(parser, flag: str, help: str) -> None:
    """An auto|yes|no option (default auto), read with `auto_choice`."""
    parser.add_argument(flag, default="auto", choices=("auto", "yes", "no"), help=help)


def auto_choice(flag: str, saved: bool | None, default: Callable[[], bool]) -> bool:
    """An auto|yes|no option: yes/no wins; auto takes a prompts file's choice (`saved`) when
    it has one, else `default()`."""
    if flag != "auto":
        return flag == "yes"
    return saved if saved is not None else default()


def size_cue_choice(flag: str, axes: str, model_name: str, saved: bool | None = None) -> bool:
    """--size-cue: auto is the file's choice, else the model catalogue's along Z (on for
    demo) and off along T."""
    from ..model.catalogue import size_cue_by_default

    return auto_choice(flag, saved, lambda: size_cue_by_default(model_name, axes[0] == "Z"))


def non_overlap_choice(flag: str, model_name: str, saved: bool | None = None) -> bool:
    """--non-overlap: auto is the file's choice, else the model catalogue's (on for demo)."""
    from ..model.catalogue import non_overlap_by_default

    return auto_choice(flag, saved, lambda: non_overlap_by_default(model_name))


def snap_outlines_choice(flag: str, model_name: str, saved: bool | None = None) -> bool:
    """--snap-outlines: auto is the file's choice, else the model catalogue's (on for demo)."""
    from ..model.catalogue import snap_outlines_by_default

    return auto_choice(flag, saved, lambda: snap_outlines_by_default(model_name))


def reappear_choice(flag: str, axes: str, saved: bool | None = None) -> bool:
    """--reappear: auto is the file's choice, else no along Z (a nucleus spans one run of
    slices) and yes otherwise."""
    return auto_choice(flag, saved, lambda: axes[0] != "Z")
