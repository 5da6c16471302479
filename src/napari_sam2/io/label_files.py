"""Label volumes as compressed integer TIFF files that Fiji, napari and Python all read.

uint16 volumes are ImageJ hyperstacks (Fiji shows their T or Z slider); ImageJ has no
uint32, so volumes with more than 65535 objects are plain TIFF with the axes in tifffile's
metadata. Compression is zlib (deflate), which tifffile writes without extra packages.
"""

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import SAM2Error
from .atomic import as_path, atomic_output
from .voxel_size import MICRON, imagej_unit

IMAGEJ_ORDER = "TZCYXS"
LABEL_SUFFIXES = (".tif", ".tiff")
AXES_KEY = "napari_sam2_axes"


def label_dtype(labels: np.ndarray) -> np.dtype:
    """uint16 when every label fits, else uint32; raises for non-integer or negative labels."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biu":
        raise SAM2Error(f"labels must be integers, got {labels.dtype}")
    if labels.size == 0:
        return np.dtype(np.uint16)
    low, high = int(labels.min()), int(labels.max())
    if low < 0:
        raise SAM2Error(f"labels must not be negative, found {low}")
    if high > np.iinfo(np.uint32).max:
        raise SAM2Error(f"label {high} does not fit in uint32")
    return np.dtype(np.uint16 if high <= np.iinfo(np.uint16).max else np.uint32)


def write_labels(
    path: str | Path,
    labels: np.ndarray,
    axes: str = "TYX",
    overwrite: bool = False,
    spacing: Mapping[str, float] | None = None,
    unit: str | None = None,
) -> Path:
    """Write a label volume (e.g. (T, H, W) with axes "TYX" or "ZYX") as a compressed TIFF.

    spacing: physical size per axis letter (e.g. {"Z": 2.0, "Y": 0.65, "X": 0.65}) in `unit`
    (default µm), stored as ImageJ calibration or OME physical sizes, so `open_stack` and Fiji
    read it back. The file appears complete or not at all; an existing file is replaced only
    with overwrite=True.
    """
    import tifffile

    labels = np.asarray(labels)
    axes = axes.upper() if isinstance(axes, str) else axes
    if not isinstance(axes, str) or len(axes) != labels.ndim or not axes.endswith("YX"):
        raise SAM2Error(
            f"axes {axes!r} do not describe labels of shape {labels.shape} (e.g. 'TYX')"
        )
    if labels.ndim < 2 or 0 in labels.shape:
        raise SAM2Error(f"labels of shape {labels.shape} hold no image to write")
    spacing = _checked_spacing(spacing, axes)
    unit = (unit or MICRON) if spacing else None
    dtype = label_dtype(labels)
    labels = labels.astype(dtype, copy=False)
    # ImageJ files squeeze 1x1 planes into the wrong shape (tifffile 2026): OME keeps them
    imagej = dtype == np.uint16 and _imagej_axes(axes) and min(labels.shape[-2:]) > 1
    options: dict = dict(compression="zlib", photometric="minisblack")
    if imagej:
        # the axes again under our own key: ImageJ drops axes of length 1 (a 1-frame volume)
        metadata: dict = {"axes": axes, AXES_KEY: axes}
        if spacing:
            metadata["unit"] = imagej_unit(unit)
            if "Z" in spacing:
                metadata["spacing"] = spacing["Z"]
            if "X" in spacing and "Y" in spacing:
                options["resolution"] = (1 / spacing["X"], 1 / spacing["Y"])
        options.update(imagej=True, metadata=metadata)
    else:
        # OME-TIFF: any axis order, uint32, and physical sizes per axis
        metadata = {"axes": axes, "Name": f"{AXES_KEY} {axes}"}
        for axis, size in spacing.items():
            metadata[f"PhysicalSize{axis}"] = size
            metadata[f"PhysicalSize{axis}Unit"] = unit
        options.update(ome=True, metadata=metadata)
    with atomic_output(path, overwrite, suffixes=LABEL_SUFFIXES) as temporary:
        tifffile.imwrite(temporary, labels, **options)
    return Path(path)


def _checked_spacing(spacing: Mapping[str, float] | None, axes: str) -> dict[str, float]:
    if not spacing:
        return {}
    checked = {}
    for axis, size in dict(spacing).items():
        if axis not in ("Z", "Y", "X") or (axis not in axes and axis != "Z"):
            raise SAM2Error(f"spacing names axis {axis!r}; the labels have axes {axes}")
        try:
            size = float(size)
        except (TypeError, ValueError):
            size = float("nan")
        if not (math.isfinite(size) and size > 0):
            raise SAM2Error(f"spacing of axis {axis} must be a positive number, got {size}")
        checked[axis] = size
    # a z step means nothing for a time-lapse's label volume; keep it only along Z
    if "Z" not in axes:
        checked.pop("Z", None)
    return checked


def _imagej_axes(axes: str) -> bool:
    # ImageJ knows only TZCYXS, each once, in that order
    positions = [IMAGEJ_ORDER.find(a) for a in axes]
    return -1 not in positions and positions == sorted(set(positions))


def read_labels(path: str | Path) -> tuple[np.ndarray, str]:
    """A label TIFF as (array, axes), e.g. a (T, H, W) uint16 array and "TYX"."""
    import tifffile

    path = as_path(path, "label file")
    if not path.is_file():
        raise SAM2Error(f"label file not found: {path}")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            labels, axes = series.asarray(), series.axes.upper()
            written = _written_axes(tif)
            if written and written != axes:
                labels, axes = _unsqueezed(series, labels, written), written
            return labels, axes
    except SAM2Error:
        raise
    except Exception as exc:  # tifffile raises struct, zlib, codec, value and index errors
        raise SAM2Error(f"{path.name} is not a readable TIFF file ({exc})") from exc


def _written_axes(tif) -> str | None:
    """The axes write_labels stored, which the TIFF flavours drop when of length 1."""
    if tif.is_imagej:
        axes = (tif.imagej_metadata or {}).get(AXES_KEY)
    elif tif.is_ome and f"{AXES_KEY} " in (tif.ome_metadata or ""):
        axes = tif.ome_metadata.split(f"{AXES_KEY} ", 1)[1][:8].split('"', 1)[0]
    else:
        return None
    return axes if isinstance(axes, str) and axes.isalpha() and axes.isupper() else None


def _unsqueezed(series, labels: np.ndarray, written: str) -> np.ndarray:
    full_axes = series.get_axes(False).upper()
    full_shape = series.get_shape(False)
    if not all(a in full_axes for a in written):
        return labels
    shape = tuple(full_shape[full_axes.index(a)] for a in written)
    return labels.reshape(shape) if int(np.prod(shape)) == labels.size else labels
