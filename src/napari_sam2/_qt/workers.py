"""Workers for engine jobs: napari's thread workers whose errors the widget shows itself,
computing with the torch thread count of the thread that started them."""

import functools
import inspect
from collections.abc import Callable

import torch
from napari.qt.threading import create_worker


def with_callers_thread_count(func: Callable) -> Callable:
    """`func`, run in another thread with the torch thread count this thread has now.

    torch gives a thread the process's count when it first runs an op and never again: a
    pooled worker that ran a job under one count would run every later job under it, and a
    different count sums in a different order, so the masks would differ (by a pixel) from
    the same session replayed where the count is the current one."""
    threads = torch.get_num_threads()

    def follow() -> None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    if inspect.isgeneratorfunction(func):  # napari runs these as generator workers

        @functools.wraps(func)
        def steps(*args, **kwargs):
            follow()
            return (yield from func(*args, **kwargs))

        return steps

    @functools.wraps(func)
    def call(*args, **kwargs):
        follow()
        return func(*args, **kwargs)

    return call


def job(func, *args, **kwargs):
    """A worker for `func` whose errors the widget shows itself (see `SAM2Widget._start`)."""
    return create_worker(with_callers_thread_count(func), *args, _ignore_errors=True, **kwargs)
