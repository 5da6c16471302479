"""Overlapping windows (tiles) over a frame larger than the model input, and lazy crops of a
stack to them.

Each window has a core: the cores cut every overlap at its middle, so they partition the frame
and every pixel belongs to exactly one window's core. An object whose centroid lies in a core
is entirely inside that window when its diameter is at most the overlap.
"""

import math
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import SAM2Error
from .frames import FrameSource

# `--tile auto` tiles frames whose longer side is at least this many model input sizes
AUTO_FACTOR = 1.5
# default overlap, as a fraction of the tile size
OVERLAP_SHARE = 0.25


@dataclass(frozen=True)
class Window:
    """One tile: rows y0:y1 and columns x0:x1 of the frame, and the core it owns (cy0:cy1,
    cx0:cx1), all in frame pixels."""

    index: int
    y0: int
    x0: int
    y1: int
    x1: int
    cy0: int
    cx0: int
    cy1: int
    cx1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def offset_xy(self) -> np.ndarray:
        return np.array([self.x0, self.y0], dtype=np.float64)

    def holds(self, y: float, x: float) -> bool:
        """Whether (y, x) lies in the window."""
        return self.y0 <= y < self.y1 and self.x0 <= x < self.x1

    def core_holds(self, y: float, x: float, margin: float = 0.0) -> bool:
        """Whether (y, x) lies in the core grown by `margin` pixels on every side."""
        return (
            self.cy0 - margin <= y < self.cy1 + margin
            and self.cx0 - margin <= x < self.cx1 + margin
        )

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The window's part of a frame-sized (H, W, ...) array (a view)."""
        return image[self.y0 : self.y1, self.x0 : self.x1]


def _axis_spans(length: int, size: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(start, end, core start, core end) of the windows along one axis."""
    if length <= size:
        return [(0, length, 0, length)]
    count = math.ceil((length - overlap) / (size - overlap))
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)]
    ends = [s + size for s in starts]
    # each overlap is cut at its middle, so the cores partition the axis
    cuts = [0] + [(ends[i] + starts[i + 1]) // 2 for i in range(count - 1)] + [length]
    return [(starts[i], ends[i], cuts[i], cuts[i + 1]) for i in range(count)]


def tile_grid(height: int, width: int, size: int, overlap: int) -> list[Window]:
    """Windows of `size` x `size` pixels (smaller where the frame is) covering a height x width
    frame, neighbours overlapping by at least `overlap` pixels, row by row."""
    check_tile_options(size, overlap)
    rows = _axis_spans(height, size, overlap)
    cols = _axis_spans(width, size, overlap)
    windows = []
    for y0, y1, cy0, cy1 in rows:
        for x0, x1, cx0, cx1 in cols:
            windows.append(Window(len(windows), y0, x0, y1, x1, cy0, cx0, cy1, cx1))
    return windows


def check_tile_options(size: int, overlap: int) -> None:
    """A clear error for a tile size or overlap that cannot make a grid."""
    if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 32:
        raise SAM2Error(f"the tile size must be an integer of at least 32 pixels, got {size!r}")
    if not isinstance(overlap, int | np.integer) or isinstance(overlap, bool):
        raise SAM2Error(f"the tile overlap must be an integer number of pixels, got {overlap!r}")
    if not 0 <= overlap <= size // 2:
        raise SAM2Error(
            f"the tile overlap must be between 0 and half the tile size ({size // 2}), "
            f"got {overlap}"
        )


def default_overlap(size: int) -> int:
    """The overlap used when none is given: a quarter of the tile."""
    return int(size * OVERLAP_SHARE)


def resolve_tile(tile: int | str | None, height: int, width: int, image_size: int) -> int | None:
    """The tile size to use, or None for no tiles.

    tile: None or "off" (no tiles), "auto" (tiles of the model input size when the frame's
    longer side is at least AUTO_FACTOR input sizes), or a size in pixels (tiles of that size;
    a frame that fits one tile is tracked as it is).
    """
    if tile is None or tile == "off":
        return None
    if tile == "auto":
        return image_size if max(height, width) >= AUTO_FACTOR * image_size else None
    if isinstance(tile, str):
        try:
            tile = int(tile)
        except ValueError:
            raise SAM2Error(
                f"the tile option must be off, auto or a size in pixels, got {tile!r}"
            ) from None
    check_tile_options(tile, 0)
    return int(tile)


def touches_inner_edge(window: Window, mask: np.ndarray, height: int, width: int) -> bool:
    """Whether a mask of the window touches an edge of the window that is not the edge of the
    height x width frame (the object may go on in the neighbour)."""
    return bool(
        (window.y0 > 0 and mask[0].any())
        or (window.x0 > 0 and mask[:, 0].any())
        or (window.y1 < height and mask[-1].any())
        or (window.x1 < width and mask[:, -1].any())
    )


def window_of(windows: list[Window], y: float, x: float) -> Window:
    """The window whose core holds (y, x) (the nearest core for a point outside the frame)."""
    for window in windows:
        if window.core_holds(y, x):
            return window

    def distance(w: Window) -> float:
        dy = max(w.cy0 - y, 0.0, y - (w.cy1 - 1))
        dx = max(w.cx0 - x, 0.0, x - (w.cx1 - 1))
        return dy * dy + dx * dx

    return min(windows, key=distance)


class SharedFrames:
    """The frames of a `FrameSource` as stored (channels picked), keeping the last frame read,
    so that the windows stepping through one frame together read it once."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._t: int | None = None
        self._frame: np.ndarray | None = None

    def frame(self, t: int) -> np.ndarray:
        with self._lock:
            if self._t != t:
                self._frame = self.source.read(t)
                self._t = t
            return self._frame


class WindowFrames:
    """A lazy (T, h, w[, K]) view of one window of a stack: a frame is read when indexed."""

    def __init__(self, frames: SharedFrames, window: Window) -> None:
        self.frames = frames
        self.window = window
        first = frames.source
        channels = () if first.channels is None or len(first.channels) == 1 else (3,)
        self.shape = (first.num_frames, window.height, window.width, *channels)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(getattr(first.frames, "dtype", np.float32))

    def __getitem__(self, t) -> np.ndarray:
        if not isinstance(t, int | np.integer):
            raise TypeError("a window of frames is indexed by one frame number")
        return self.window.crop(self.frames.frame(int(t) % self.shape[0]))

    def __len__(self) -> int:
        return self.shape[0]


def window_source(frames: SharedFrames, window: Window) -> FrameSource:
    """A FrameSource of one window, normalized with the whole stack's intensity limits (so a
    cell looks the same to the model in every window)."""
    whole = frames.source
    source = FrameSource(WindowFrames(frames, window), whole.image_size, contrast_limits=(0, 1))
    source.limits = whole.limits.copy()
    return source
