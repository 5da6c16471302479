"""A thread's OpenMP workers, handed back when the thread stops computing.

With GNU OpenMP (the runtime torch's Linux wheels ship, also used there by MKL and oneDNN)
every thread that runs a parallel op keeps a team of worker threads of its own, alive until
the thread exits. Once the process holds more of these workers than it has cores, every team
stops spinning between parallel regions and sleeps instead, so each region of every op
waits for its workers to wake. A further click at tiny@1024 on 2 cores took 104 ms instead
of 60 while an idle second thread merely held a team, and 43 once that thread had handed its
team back (measured, alternating in one process). The widget computes in several threads (its
GUI thread for quick clicks, napari's pooled workers, the background encoder), each idle most
of the time: each hands its team back when its job ends, so the one that computes next runs
at full speed. A team is made again at the thread's next parallel op, for a few hundred
microseconds. Elsewhere (other OpenMP runtimes, macOS, Windows) this is a no-op.
"""

import ctypes
import os
import sys
from functools import cache

# omp_pause_resource_kind (omp.h, OpenMP 5.0): soft keeps nothing a later region needs
OMP_PAUSE_SOFT = 1


@cache
def _gnu_openmp() -> ctypes.CDLL | None:
    """The GNU OpenMP runtime this process has loaded (torch's own copy), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            # only one already loaded: a second copy would manage no thread of ours
            runtime = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            pause = runtime.omp_pause_resource_all
        except (OSError, AttributeError):
            continue
        pause.argtypes = [ctypes.c_int]
        pause.restype = ctypes.c_int
        return runtime
    return None


def release_thread_team() -> bool:
    """Hand back the calling thread's OpenMP workers (outside a parallel region); True if
    there was a GNU OpenMP runtime to do it."""
    import torch  # noqa: F401  (loads the runtime this looks for)

    runtime = _gnu_openmp()
    return runtime is not None and runtime.omp_pause_resource_all(OMP_PAUSE_SOFT) == 0
