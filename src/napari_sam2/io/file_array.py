"""Uncompressed pixels read plane by plane with ordinary file reads instead of a memory map.

A memory-mapped file that shrinks while it is read (a copy still in progress, a network drive
that drops, another program rewriting it) kills the process with SIGBUS, beyond any error
handling. A short read is an ordinary error: it becomes a message, and the process lives.
"""

import os
from pathlib import Path

import numpy as np

from ..errors import SAM2Error


class FileArray:
    """A read-only array-like of C-ordered `shape` and `dtype` stored at `offset` in `path`.

    Indexing reads only the planes it needs (the last `plane_ndim` axes form a plane);
    `np.asarray` reads everything.
    """

    def __init__(
        self,
        path: str | Path,
        offset: int,
        shape: tuple[int, ...],
        dtype: np.dtype,
        plane_ndim: int = 2,
    ) -> None:
        self.path = Path(path)
        self.offset = int(offset)
        self.shape = tuple(int(n) for n in shape)
        self.file_dtype = np.dtype(dtype)
        self.dtype = self.file_dtype.newbyteorder("=")
        self.ndim = len(self.shape)
        self.plane_ndim = min(plane_ndim, self.ndim)
        self.plane_shape = self.shape[self.ndim - self.plane_ndim :]
        self.leading_shape = self.shape[: self.ndim - self.plane_ndim]
        self.plane_bytes = int(np.prod(self.plane_shape)) * self.file_dtype.itemsize
        self.size = int(np.prod(self.shape))
        self.nbytes = self.size * self.dtype.itemsize
        end = self.offset + self.plane_bytes * int(np.prod(self.leading_shape))
        size = self.path.stat().st_size
        if size < end:
            raise SAM2Error(
                f"{self.path.name} is truncated: its pixels need {end} bytes, the file has "
                f"{size}; copy it again"
            )

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        key = _expand(key, self.ndim)
        lead_key = key[: len(self.leading_shape)]
        plane_key = key[len(self.leading_shape) :]
        planes = np.arange(int(np.prod(self.leading_shape)), dtype=np.int64)
        planes = planes.reshape(self.leading_shape)[lead_key]
        chosen = np.asarray(planes).reshape(-1)
        out = np.empty((len(chosen), *self.plane_shape), self.dtype)
        with open(self.path, "rb") as file:
            for i, plane in enumerate(chosen):
                out[i] = self._read_plane(file, int(plane))
        out = out.reshape(np.shape(planes) + self.plane_shape)
        return out[(Ellipsis, *plane_key)] if plane_key else out

    def _read_plane(self, file, plane: int) -> np.ndarray:
        start = self.offset + plane * self.plane_bytes
        data = os.pread(file.fileno(), self.plane_bytes, start)
        if len(data) != self.plane_bytes:
            raise SAM2Error(
                f"{self.path.name} became shorter while it was read (plane {plane} is "
                f"missing); was it being copied or rewritten? Read it again once it is complete"
            )
        return np.frombuffer(data, self.file_dtype).reshape(self.plane_shape)


def _expand(key, ndim: int) -> tuple:
    """An index as a tuple of one entry per axis (Ellipsis expanded, missing axes whole)."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is None for k in key):
        raise TypeError("a FileArray cannot add axes (None) while indexing")
    if sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis")
    at = next((i for i, k in enumerate(key) if k is Ellipsis), None)
    if at is not None:
        key = key[:at] + (slice(None),) * (ndim - len(key) + 1) + key[at + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices for an array of {ndim} dimensions")
    return key + (slice(None),) * (ndim - len(key))
