"""Workers for engine jobs: napari's thread workers whose errors the widget shows itself,
computing with the torch thread count of the thread that started them, and handing back
their OpenMP workers when done (see `engine.openmp_teams`)."""

import functools
import inspect
from collections.abc import Callable

import torch
from napari.qt.threading import create_worker

from ..engine.openmp_teams import release_thread_team


def worker_job(func: Callable) -> Callable:
    """`func`, to run in another thread with the torch thread count this thread has now, that
    hands back the thread's OpenMP workers when it ends.

    torch gives a thread the process's count when it first runs an op and never again: a
    pooled worker that ran a job under one count would run every later job under it, and a
    different count sums in a different order, so the masks would differ (by a pixel) from
    the same session replayed where the count is the current one. A pooled thread that kept
    its OpenMP workers while idle would slow every other thread's ops (`openmp_teams`)."""
    threads = torch.get_num_threads()

    def follow() -> None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    if inspect.isgeneratorfunction(func):  # napari runs these as generator workers

        @functools.wraps(func)
        def steps(*args, **kwargs):
            follow()
            try:
                return (yield from func(*args, **kwargs))
            finally:
                release_thread_team()

        return steps

    @functools.wraps(func)
    def call(*args, **kwargs):
        follow()
        try:
            return func(*args, **kwargs)
        finally:
            release_thread_team()

    return call


def job(func, *args, **kwargs):
    """A worker for `func` whose errors the widget shows itself (see `SAM2Widget._start`)."""
    return create_worker(worker_job(func), *args, _ignore_errors=True, **kwargs)
