"""Image stacks on disk (TIFF, OME-TIFF, ImageJ hyperstacks, .npy, zarr) opened lazily, with
their axes, and seen as the (T, H, W) or (T, H, W, C) video the tracker reads.

Axes use one letter each: T time, Z depth, C channel, Y and X the image plane, S the colour
samples of RGB pixels (kept as the video's last axis), Q an axis of unknown meaning. Files
without axis names get Q for every axis before the image plane.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.stack_view import VideoAxisView
from ..errors import SAM2Error
from .atomic import as_path
from .file_array import FileArray
from .voxel_size import Spacing, ome_zarr_spacing, tiff_spacing

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
PLANE = "YX"
COLOUR = "S"
SUPPORTED = "TIFF (.tif, .tiff), NumPy (.npy) or zarr (.zarr folder)"


@dataclass(frozen=True)
class Stack:
    """An N-D image read lazily: `data` indexes like a numpy array, one letter per axis."""

    data: object
    axes: str
    path: Path
    # physical size of one pixel (Y, X) or slice step (Z) in `unit`, for the axes whose file
    # says so, e.g. {"Z": 2.0, "Y": 0.65, "X": 0.65}
    spacing: dict[str, float] = field(default_factory=dict)
    unit: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    def describe(self) -> str:
        """The file name, axes and shape, for messages: "cells.tif (axes TZYX, 5x3x64x64)"."""
        return f"{self.path.name} (axes {self.axes}, {'x'.join(map(str, self.shape))})"


def open_stack(path: str | Path) -> Stack:
    """Open a TIFF, .npy or zarr stack without reading its pixels."""
    path = as_path(path, "stack")
    if not path.exists():
        raise SAM2Error(f"stack file not found: {path}")
    name = path.name.lower()
    scale: tuple[dict[str, float], str | None] = ({}, None)
    if path.is_dir() or name.endswith(".zarr"):
        data, axes, scale = _open_zarr(path)
    elif name.endswith(TIFF_SUFFIXES):
        data, axes, scale = _open_tiff(path)
    elif name.endswith(".npy"):
        data, axes = _open_npy(path)
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


def _tiff_axes(axes: str) -> str:
    # tifffile's I (image sequence) says no more than our Q; S before the plane holds
    # separate planes, which behave like channels
    axes = axes.upper().replace("I", "Q")
    if COLOUR in axes[:-1]:
        axes = axes[:-1].replace(COLOUR, "C") + axes[-1]
    return axes


def _open_tiff(path: Path) -> tuple[object, str, Spacing]:
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
        raise SAM2Error(f"{path.name} is not a readable TIFF file ({_reason(exc)})") from exc
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
            raise SAM2Error(f"{path.name} is damaged ({_reason(exc)}); copy it again") from exc
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


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


def _open_npy(path: Path) -> tuple[object, str]:
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
            else:  # 2.0; 3.0 differs only in the header's text encoding
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
            offset = file.tell()
    except (ValueError, OSError, EOFError) as exc:
        raise SAM2Error(f"{path.name} is not a readable .npy array ({_reason(exc)})") from exc
    if dtype.hasobject:
        raise SAM2Error(
            f"{path.name} is not a readable .npy array of pixels (it holds Python objects)"
        )
    if 0 in shape:
        raise SAM2Error(f"{path.name} holds no pixels (shape {shape})")
    axes = _guess_axes(shape)
    if fortran or len(shape) < 2:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    else:
        data = FileArray(path, offset, shape, dtype, 3 if axes.endswith(COLOUR) else 2)
    return data, axes


def _guess_axes(shape: tuple[int, ...]) -> str:
    if len(shape) < 2:
        return "Q" * len(shape)
    if len(shape) >= 4 and shape[-1] in (3, 4):
        return "Q" * (len(shape) - 3) + PLANE + COLOUR
    return "Q" * (len(shape) - 2) + PLANE


def _axis_letter(name: str) -> str:
    name = str(name).lower()
    known = {"t": "T", "time": "T", "z": "Z", "c": "C", "channel": "C", "y": "Y", "x": "X"}
    return known.get(name, "S" if name in ("s", "rgb", "sample") else "Q")


def _open_zarr(path: Path) -> tuple[object, str, Spacing]:
    try:
        import zarr
    except ImportError as exc:
        raise SAM2Error("reading zarr stores needs the zarr package: pip install zarr") from exc
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises many types for a folder that is no store
        raise SAM2Error(f"{path.name} is not a readable zarr store ({exc})") from exc
    names = None
    multiscale = None
    if not hasattr(node, "shape"):
        attrs = dict(node.attrs)
        multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        if multiscales:
            # OME-Zarr: the first dataset is the full resolution
            try:
                image = multiscale = multiscales[0]
                axes_meta = image.get("axes", [])
                names = [a["name"] if isinstance(a, Mapping) else a for a in axes_meta]
                node = node[image["datasets"][0]["path"]]
            except Exception as exc:  # metadata of the wrong shape, or a missing dataset
                raise SAM2Error(
                    f"{path.name}: its OME-Zarr metadata is broken ({_reason(exc)})"
                ) from exc
        else:
            keys = sorted(node.array_keys())
            if len(keys) != 1:
                raise SAM2Error(
                    f"{path.name} is a zarr group with arrays {keys or 'none'}; give the path "
                    f"of one array, e.g. {path / (keys[0] if keys else 'ARRAY')}"
                )
            node = node[keys[0]]
    if names is None:
        names = getattr(node.metadata, "dimension_names", None) or node.attrs.get(
            "_ARRAY_DIMENSIONS"
        )
    if names and len(names) == len(node.shape) and all(names):
        axes = "".join(_axis_letter(n) for n in names)
    else:
        axes = _guess_axes(node.shape)
    scale = ome_zarr_spacing(multiscale, axes) if multiscale is not None else ({}, None)
    return node, axes, scale


def video_frames(
    stack: Stack,
    axis: str | int | None = None,
    fixed: Mapping[str | int, int] | None = None,
) -> VideoAxisView:
    """The stack as a lazy (T, H, W) or (T, H, W, C) video along `axis` (a letter such as "T"
    or "Z", or an axis index).

    Without `axis`: T, else Z, else the one axis besides the image plane. Every other axis
    is fixed at index 0 or at `fixed[axis]` (keys are letters or indices).
    """
    video, positions, _ = _choose(stack, axis, fixed)
    leading = [positions.get(i, 0) for i in range(_leading(stack))]
    return VideoAxisView(stack.data, video, leading, rgb=stack.axes.endswith(COLOUR))


def unchosen_axes(
    stack: Stack, axis: str | int | None = None, fixed: Mapping[str | int, int] | None = None
) -> list[str]:
    """Axes of more than one plane that `video_frames` fixes at 0 because nobody chose,
    e.g. ["Z=0 of 5"], so callers can tell the user that part of the stack is not used."""
    _, _, defaulted = _choose(stack, axis, fixed)
    return [f"{stack.axes[i]}=0 of {stack.shape[i]}" for i in defaulted if stack.shape[i] > 1]


def label_axes(stack: Stack, frames: VideoAxisView) -> str:
    """Axes of the label volume made from `frames`: "ZYX" along Z, else "TYX"."""
    along_z = frames.video_axis is not None and stack.axes[frames.video_axis] == "Z"
    return ("Z" if along_z else "T") + PLANE


def _leading(stack: Stack) -> int:
    return len(stack.axes) - len(PLANE) - stack.axes.endswith(COLOUR)


def _choose(
    stack: Stack, axis: str | int | None, fixed: Mapping[str | int, int] | None
) -> tuple[int | None, dict[int, int], tuple[int, ...]]:
    """(video axis, fixed index per other leading axis, axes fixed by default)."""
    if axis is None:
        video = _default_video_axis(stack, fixed or {})
    else:
        video = _axis_index(stack, axis, "video")
    if video is not None and video >= _leading(stack):
        raise SAM2Error(
            f"axis {stack.axes[video]} of {stack.describe()} is part of the image; choose "
            f"the video axis among {_choices(stack)}"
        )
    positions = {}
    for key, position in (fixed or {}).items():
        index = _axis_index(stack, key, "fixed")
        if index == video or index >= _leading(stack):
            raise SAM2Error(f"axis {key} of {stack.describe()} cannot be fixed: it is read whole")
        size = stack.shape[index]
        if not isinstance(position, int | np.integer) or not 0 <= position < size:
            raise SAM2Error(
                f"index {position} of axis {key} is outside 0..{size - 1} in {stack.describe()}"
            )
        positions[index] = int(position)
    defaulted = tuple(i for i in range(_leading(stack)) if i != video and i not in positions)
    return video, positions, defaulted


def _choices(stack: Stack) -> str:
    options = [
        letter if stack.axes.count(letter) == 1 and letter != "Q" else str(i)
        for i, letter in enumerate(stack.axes)
        if letter not in PLANE + COLOUR
    ]
    return ", ".join(options) if options else "none (it is a single image)"


def _default_video_axis(stack: Stack, fixed: Mapping[str | int, int]) -> int | None:
    for letter in "TZ":
        if letter in stack.axes:
            return stack.axes.index(letter)
    others = [i for i, a in enumerate(stack.axes) if a not in PLANE + COLOUR]
    if [stack.axes[i] for i in others] == ["C"]:
        # channels are not a video: one image, unless the user asks to track through them
        if any(_axis_index(stack, key, "fixed") == others[0] for key in fixed):
            return None
        if stack.shape[others[0]] > 1:
            raise SAM2Error(
                f"{stack.describe()} has channels (C) but no T or Z axis; choose a channel to "
                "segment one image (--fix C=0), or track through the channels (--axis C)"
            )
    if len(others) > 1:
        raise SAM2Error(
            f"cannot tell which axis of {stack.describe()} is the video; choose one of "
            f"{_choices(stack)}"
        )
    return others[0] if others else None


def _axis_index(stack: Stack, axis: str | int, role: str) -> int:
    if isinstance(axis, str) and axis.isascii() and axis.lstrip("-").isdigit():
        axis = int(axis)
    if isinstance(axis, int | np.integer) and not isinstance(axis, bool):
        if not -len(stack.axes) <= axis < len(stack.axes):
            raise SAM2Error(
                f"{stack.describe()} has no axis {axis}; the {role} axis can be {_choices(stack)}"
            )
        return int(axis) % len(stack.axes)
    letter = str(axis).upper()
    count = stack.axes.count(letter)
    if count != 1:
        problem = f"has no {letter} axis" if count == 0 else f"has several {letter} axes"
        raise SAM2Error(f"{stack.describe()} {problem}; the {role} axis can be {_choices(stack)}")
    return stack.axes.index(letter)
