"""A thread's OpenMP workers, handed back when the thread stops computing.

With GNU OpenMP (the runtime torch's Linux wheels ship, also used there by MKL and oneDNN)
every thread that runs a parallel op keeps a team of worker threads of its own, alive until
the thread exits. Once the process holds more of these workers than it has cores, every team
stops spinning between parallel regions and sleeps instead, so each region of every op
waits for its workers to wake: an idle thread holding a team slows the thread that computes
(docs/performance.md, *Idle OpenMP teams*). The widget computes in several threads (its GUI
thread for quick clicks, napari's pooled workers, the background encoder), each idle most of
the time: each hands its team back when its job ends, so the one that computes next runs at
full speed. A team is made again at the thread's next parallel op. Other libraries may load
their own copy of the runtime (scikit-learn does), each with its own teams: every copy is told.
Elsewhere (LLVM's or Intel's OpenMP, macOS, Windows) this is a no-op.
"""

import ctypes
import os
import sys
from functools import lru_cache

import torch  # noqa: F401  (loads torch's copy of the runtime before any is looked for)

# omp_pause_resource_kind (omp.h, OpenMP 5.0): soft keeps nothing a later region needs
OMP_PAUSE_SOFT = 1


def _loaded_gnu_openmp() -> tuple[ctypes.CDLL, ...]:
    """Every copy of GNU OpenMP loaded in this process; looked for again only after new
    imports (the process's map takes milliseconds to read, and a new copy comes with a new
    extension module)."""
    if not sys.platform.startswith("linux"):
        return ()
    return _copies_when(len(sys.modules))


@lru_cache(maxsize=1)
def _copies_when(modules: int) -> tuple[ctypes.CDLL, ...]:
    try:
        with open("/proc/self/maps") as maps:
            # address, permissions, offset, device, inode, then the path (which may hold spaces)
            paths = {
                fields[5].strip()
                for fields in (line.split(maxsplit=5) for line in maps if "libgomp" in line)
                if len(fields) == 6 and os.path.basename(fields[5]).startswith("libgomp")
            }
    except OSError:
        return ()
    copies = []
    for path in sorted(paths):
        try:
            # the copy already loaded: opening another would manage no thread of ours
            runtime = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            runtime.omp_pause_resource_all.argtypes = [ctypes.c_int]
        except (OSError, AttributeError):
            continue
        runtime.omp_pause_resource_all.restype = ctypes.c_int
        copies.append(runtime)
    return tuple(copies)


def release_thread_team() -> bool:
    """Hand back the calling thread's OpenMP workers in every loaded copy of GNU OpenMP
    (outside a parallel region); True if there was at least one and each did."""
    results = [runtime.omp_pause_resource_all(OMP_PAUSE_SOFT) for runtime in _loaded_gnu_openmp()]
    return bool(results) and all(result == 0 for result in results)
