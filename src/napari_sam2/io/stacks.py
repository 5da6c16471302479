"""Image stacks on disk (TIFF, OME-TIFF, ImageJ hyperstacks, .npy, zarr) opened lazily, with
their axes, and seen as the (T, H, W) or (T, H, W, C) video the tracker reads.

Axes use one letter each: T time, Z depth, C channel, Y and X the image plane, S the colour
samples of RGB pixels (kept as the video's last axis), Q an axis of unknown meaning. Files
without axis names get Q for every axis before the image plane.
"""

from pathlib import Path

from ..errors import SAM2Error
from .array_stacks import open_npy, open_zarr
from .atomic import as_path
from .image_stack import COLOUR, PLANE, Stack
from .tiff_stacks import open_tiff
from .video_axis import label_axes, unchosen_axes, video_frames

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
SUPPORTED = "TIFF (.tif, .tiff), NumPy (.npy) or zarr (.zarr folder)"

__all__ = [
    "COLOUR",
    "PLANE",
    "SUPPORTED",
    "TIFF_SUFFIXES",
    "Stack",
    "label_axes",
    "open_stack",
    "unchosen_axes",
    "video_frames",
]


def open_stack(path: str | Path) -> Stack:
    """Open a TIFF, .npy or zarr stack without reading its pixels."""
    path = as_path(path, "stack")
    if not path.exists():
        raise SAM2Error(f"stack file not found: {path}")
    name = path.name.lower()
    scale: tuple[dict[str, float], str | None] = ({}, None)
    if path.is_dir() or name.endswith(".zarr"):
        data, axes, scale = open_zarr(path)
    elif name.endswith(TIFF_SUFFIXES):
        data, axes, scale = open_tiff(path)
    elif name.endswith(".npy"):
        data, axes = open_npy(path)
    else:
        raise SAM2Error(f"cannot read {path.name}: supported are {SUPPORTED}")
    if len(axes) != len(data.shape):
        raise SAM2Error(f"{path.name}: axes {axes!r} do not match its shape {data.shape}")
    spacing, unit = scale
    spacing = {a: v for a, v in spacing.items() if a in "ZYX" and axes.count(a) == 1}
    stack = Stack(data, axes, path, spacing, unit if spacing else None)
    well_formed = all(axes.count(a) == 1 for a in PLANE) and axes.count(COLOUR) <= 1
    if not well_formed or not (axes.endswith(PLANE) or axes.endswith(PLANE + COLOUR)):
        raise SAM2Error(
            f"{stack.describe()} does not end with the image plane Y, X; it cannot be read as "
            "images"
        )
    return stack
