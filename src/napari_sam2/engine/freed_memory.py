"""Giving freed memory back to the system after each propagated frame.

A frame's step frees tens of megabytes of activations; glibc keeps much of it in its heap
(its mmap threshold grows after the first large free), so an ordinary process's resident
memory sits hundreds of megabytes above what it holds. `malloc_trim(0)` returns the free
heap pages; elsewhere (macOS, Windows, musl) this is a no-op.
"""

import ctypes
import ctypes.util
import sys
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


def release_freed_memory() -> bool:
    """Return free heap memory to the system; True where the C library can (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
