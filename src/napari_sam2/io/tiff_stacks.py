"""Opening TIFF stacks (plain, OME, ImageJ hyperstacks, compressed or tiled) lazily, and
refusing files that lost pages or their end rather than reading them short."""

import logging
from pathlib import Path

import numpy as np

from ..errors import SAM2Error
from .file_array import FileArray
from .image_stack import COLOUR, reason
from .voxel_size import Spacing, tiff_spacing


def _tiff_axes(axes: str) -> str:
    # tifffile's I (image sequence) says no more than our Q; S before the plane holds
    # separate planes, which behave like channels
    axes = axes.upper().replace("I", "Q")
    if COLOUR in axes[:-1]:
        axes = axes[:-1].replace(COLOUR, "C") + axes[-1]
    return axes


def open_tiff(path: Path) -> tuple[object, str, Spacing]:
    """A TIFF's image data, unread, with its axes and voxel size (OME, ImageJ or resolution
    tags); a damaged file is a SAM2Error naming what tifffile found wrong."""
    import tifffile

    damage: list[str] = []
    handler = _DamageReport(damage)
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        with tifffile.TiffFile(path) as tif:
            series = _tiff_series(tif, path)
            try:
                # tifffile reads only the first IFD of ImageJ and shaped files; walking them
                # all finds a file that lost its end even where the pixels survived
                _check_last_page_complete(tif, path)
            except tifffile.TiffFileError as exc:
                damage.append(str(exc))
            if damage:
                raise SAM2Error(f"{path.name} is truncated or damaged ({damage[0]}); copy it again")
            _check_imagej_count(tif, series, path)
            axes = _tiff_axes(series.axes)
            scale = tiff_spacing(tif, axes)
            # series.dtype is in native byte order; the pixels are in the file's
            dtype = np.dtype(series.dtype).newbyteorder(tif.byteorder)
            shape, offset = tuple(series.shape), series.dataoffset
            if 0 in shape:
                raise SAM2Error(f"{path.name} holds no pixels (shape {shape})")
            if offset is not None:
                # uncompressed and contiguous: read plane by plane, never memory-mapped
                planes = 3 if axes.endswith(COLOUR) else 2
                return FileArray(path, offset, shape, dtype, planes), axes, scale
            generic = series.kind == "generic"
    except SAM2Error:
        raise
    except Exception as exc:  # tifffile raises struct, zlib, codec, value and index errors
        raise SAM2Error(f"{path.name} is not a readable TIFF file ({reason(exc)})") from exc
    finally:
        logger.removeHandler(handler)
    # compressed, tiled or scattered pixels: decoded a frame at a time
    options = {"is_shaped": False} if generic else {}
    try:
        import zarr
    except ImportError:
        # without zarr, decode once into a temporary file on disk rather than into memory
        try:
            data = tifffile.imread(path, series=0, out="memmap", **options)
        except Exception as exc:
            raise SAM2Error(f"{path.name} is damaged ({reason(exc)}); copy it again") from exc
        return data, axes, scale
    store = tifffile.imread(path, series=0, aszarr=True, **options)
    data = zarr.open(store, mode="r")
    if not hasattr(data, "shape"):  # a pyramid: the full-resolution level
        data = data["0"]
    return data, axes, scale


class _DamageReport(logging.Handler):
    """Collects tifffile's warnings that mean pages were lost (it logs them and goes on with
    fewer pages, which would silently read a truncated stack as a single frame)."""

    SIGNS = (
        "invalid page offset",
        "invalid offset",
        "corrupted",
        "failed to reshape",
        "truncated",
        "suspicious",
        "raised error",
    )

    def __init__(self, found: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.found = found

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(sign in message.lower() for sign in self.SIGNS):
            self.found.append(message.split("> ", 1)[-1])


def _tiff_series(tif, path: Path):
    """The series that is the stack; every page of a plain multi-page TIFF when its pages
    were stored as separate images, and an error when they differ in shape."""
    if not tif.series:
        raise SAM2Error(f"{path.name} holds no images")
    series = tif.series[0]
    plain = not (tif.is_ome or tif.is_imagej) and all(
        s.kind in ("shaped", "generic", "uniform") for s in tif.series
    )
    if len(tif.series) == 1 or not plain:
        return series
    pages = list(tif.pages)
    first = pages[0]
    for index, page in enumerate(pages[1:], start=1):
        if page.shape != first.shape or page.dtype != first.dtype:
            raise SAM2Error(
                f"{path.name}: page {index} is {_describe_page(page)} but page 0 is "
                f"{_describe_page(first)}; all frames of a stack must have one shape and type"
            )
    return _all_pages(tif)


def _all_pages(tif):
    # the same pages seen without the per-image shape metadata: one series of all pages
    import tifffile

    whole = tifffile.TiffFile(tif.filehandle.path, is_shaped=False)
    try:
        return whole.series[0]
    finally:
        whole.close()


def _describe_page(page) -> str:
    return f"{'x'.join(map(str, page.shape))} {page.dtype}"


def _check_last_page_complete(tif, path: Path) -> None:
    """Raise a SAM2Error if the last page's directory, tag values or pixels reach beyond the
    end of the file (a copy cut short by a few bytes, which tifffile would read silently)."""
    count = len(tif.pages)
    page = tif.pages[count - 1]
    tags = getattr(page, "tags", None)
    if tags is None:
        return
    form = tif.tiff
    ends = [page.offset + form.tagnosize + len(tags) * form.tagsize + form.offsetsize]
    ends += [tag.valueoffset + tag.valuebytecount for tag in tags.values()]
    ends += [o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)]
    size = path.stat().st_size
    if max(ends) > size:
        raise SAM2Error(
            f"{path.name} is truncated: its last page needs {max(ends)} bytes, the file has "
            f"{size}; copy it again"
        )


def _check_imagej_count(tif, series, path: Path) -> None:
    """ImageJ states how many images it wrote; fewer found means the file lost its end."""
    if not tif.is_imagej:
        return
    stated = (tif.imagej_metadata or {}).get("images")
    plane = 3 if series.axes.upper().endswith("S") else 2
    found = int(np.prod(series.shape[: len(series.shape) - plane]))
    if isinstance(stated, int) and stated > found:
        raise SAM2Error(
            f"{path.name} is truncated: ImageJ wrote {stated} images, {found} remain; copy it again"
        )
