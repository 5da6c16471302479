"""Giving freed memory back to the system after each propagated frame.

A frame's step frees tens of megabytes of activations; glibc keeps much of it in its heap
(its mmap threshold grows after the first large free), so an ordinary process's resident
memory sits hundreds of megabytes above what it holds. `malloc_trim(0)` returns the free
heap pages; elsewhere (macOS, Windows, musl) this is a no-op.
"""

import ctypes
import ctypes.util
import sys
import time
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc only
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_last_release = -float("inf")


def release_freed_memory(min_interval: float = 0.5) -> bool:
    """Return free heap memory to the system, at most once per `min_interval` seconds (a
    trim costs ~20 ms: nothing beside a 1024 frame on a CPU, much beside a GPU's); True when
    it did, False where the C library cannot (not glibc) or it is too soon."""
    global _last_release
    trim = _malloc_trim()
    now = time.monotonic()
    if trim is None or now - _last_release < min_interval:
        return False
    trim(0)
    _last_release = time.monotonic()
    return True
