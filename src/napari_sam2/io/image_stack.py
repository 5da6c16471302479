"""A stack opened lazily (`Stack`: its pixels as an array-like, one letter per axis, its pixel
size) and the axis letters every reader shares.

Axes use one letter each: T time, Z depth, C channel, Y and X the image plane, S the colour
samples of RGB pixels (kept as the video's last axis), Q an axis of unknown meaning.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PLANE = "YX"
COLOUR = "S"


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


def reason(exc: BaseException) -> str:
    """An exception in a few words for a message: its type and first line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
