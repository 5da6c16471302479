"""Label volumes as compressed integer TIFF files that Fiji, napari and Python all read.

uint16 volumes are ImageJ hyperstacks (Fiji shows their T or Z slider); ImageJ has no
uint32, so volumes with more than 65535 objects are plain TIFF with the axes in tifffile's
metadata. Compression is zlib (deflate), which tifffile writes without extra packages.
"""

from pathlib import Path

import numpy as np

from ..errors import SAM2Error
from .atomic import atomic_output

IMAGEJ_ORDER = "TZCYXS"


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
    path: str | Path, labels: np.ndarray, axes: str = "TYX", overwrite: bool = False
) -> Path:
    """Write a label volume (e.g. (T, H, W) with axes "TYX" or "ZYX") as a compressed TIFF.

    The file appears complete or not at all; an existing file is replaced only with
    overwrite=True.
    """
    import tifffile

    labels = np.asarray(labels)
    axes = axes.upper()
    if len(axes) != labels.ndim or not axes.endswith("YX"):
        raise SAM2Error(
            f"axes {axes!r} do not describe labels of shape {labels.shape} (e.g. 'TYX')"
        )
    dtype = label_dtype(labels)
    labels = labels.astype(dtype, copy=False)
    imagej = dtype == np.uint16 and _imagej_axes(axes)
    options = dict(compression="zlib", photometric="minisblack")
    with atomic_output(path, overwrite) as temporary:
        if imagej:
            tifffile.imwrite(temporary, labels, imagej=True, metadata={"axes": axes}, **options)
        else:
            tifffile.imwrite(temporary, labels, metadata={"axes": axes}, **options)
    return Path(path)


def _imagej_axes(axes: str) -> bool:
    # ImageJ knows only TZCYXS, each once, in that order
    positions = [IMAGEJ_ORDER.find(a) for a in axes]
    return -1 not in positions and positions == sorted(set(positions))


def read_labels(path: str | Path) -> tuple[np.ndarray, str]:
    """A label TIFF as (array, axes), e.g. a (T, H, W) uint16 array and "TYX"."""
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise SAM2Error(f"label file not found: {path}")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return series.asarray(), series.axes.upper()
    except (tifffile.TiffFileError, ValueError, IndexError) as exc:
        raise SAM2Error(f"{path.name} is not a readable TIFF file ({exc})") from exc
