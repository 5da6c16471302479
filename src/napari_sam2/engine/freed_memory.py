"""Freed memory between propagated frames: given back to the system, or kept for the next
frame while there is room.

A frame's step frees hundreds of megabytes of activations. glibc keeps part of it in its
heap (its mmap threshold grows after the first large free), so an ordinary process's
resident memory sits hundreds of megabytes above what it holds; `malloc_trim(0)` returns the
free heap pages. But memory given back costs a page fault per 4 KiB when it is used again,
and blocks over 32 MiB (the image encoder's and memory attention's largest) are mapped
afresh and faulted in on every frame whatever the heap keeps: 5.3 million faults in 8 frames
of tiny at 1024, 23 % of the propagation (2.2 us each, measured on the CPU of
docs/performance.md). So while a propagation runs on the CPU of a machine with room to spare
(`KEEP_MIN_AVAILABLE`), glibc is told to serve every block from its heap and to keep what is
freed (`keeping_freed_memory`): the next frame reuses it without faults. When the last
propagation ends, glibc's usual settings come back and the free pages go back to the system.
Elsewhere (macOS, Windows, musl) all of this is a no-op.
"""

import ctypes
import ctypes.util
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import psutil

MIB = 1 << 20
# keep freed memory during a propagation only with this much available (a frame's working
# set at tiny@1024 is ~0.7 GiB; the larger models' more)
KEEP_MIN_AVAILABLE = 6 * 1024 * MIB
# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
# while kept: no block mapped on its own, no free memory handed back by free()
KEPT_SETTINGS = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))
# afterwards: glibc's defaults as its dynamic threshold leaves them once large blocks were
# freed (setting any of them ends the dynamic adjustment, so all three are set)
USUAL_SETTINGS = ((M_MMAP_MAX, 65536), (M_MMAP_THRESHOLD, 32 * MIB), (M_TRIM_THRESHOLD, 64 * MIB))


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has `malloc_trim`), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    libc.malloc_trim.restype = ctypes.c_int
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    return libc


def _malloc_trim() -> Callable[[int], int] | None:
    libc = _glibc()
    return None if libc is None else libc.malloc_trim


def _mallopt() -> Callable[[int, int], int] | None:
    libc = _glibc()
    return None if libc is None else libc.mallopt


_keep_lock = threading.Lock()
_keepers = 0  # propagations keeping freed memory now


def keeps_freed_memory() -> bool:
    """Whether a propagation is keeping freed memory for its next frame now."""
    return _keepers > 0


@contextmanager
def keeping_freed_memory(on_cpu: bool, min_available: int | None = None) -> Iterator[bool]:
    """Within: freed memory stays in the process (see the module's text) when the work runs on
    the CPU, glibc is there and at least `min_available` bytes (default `KEEP_MIN_AVAILABLE`,
    read at each start) are available, checked when the first of nested or concurrent
    propagations starts; yields whether it does. The last one out restores glibc's settings
    and gives the free pages back."""
    global _keepers
    mallopt = _mallopt()
    if min_available is None:
        min_available = KEEP_MIN_AVAILABLE
    with _keep_lock:
        keep = mallopt is not None and on_cpu
        if keep and _keepers == 0:
            keep = psutil.virtual_memory().available >= min_available
            if keep:
                for param, value in KEPT_SETTINGS:
                    mallopt(param, value)
        _keepers += keep
    try:
        yield keep
    finally:
        if keep:
            with _keep_lock:
                _keepers -= 1
                if _keepers == 0:
                    for param, value in USUAL_SETTINGS:
                        mallopt(param, value)
                    _malloc_trim()(0)


_last_release = -float("inf")


def release_freed_memory(min_interval: float = 0.5) -> bool:
    """Return free heap memory to the system, at most once per `min_interval` seconds (a
    trim costs ~20 ms: nothing beside a 1024 frame on a CPU, much beside a GPU's); True when
    it did, False where the C library cannot (not glibc), it is too soon, or a propagation
    keeps freed memory for its next frame."""
    global _last_release
    trim = _malloc_trim()
    now = time.monotonic()
    if trim is None or now - _last_release < min_interval or keeps_freed_memory():
        return False
    trim(0)
    _last_release = time.monotonic()
    return True
