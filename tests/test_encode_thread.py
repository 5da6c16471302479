"""The threads the widget computes in: background encodes share one thread kept across
encodes, and every job computes with the torch thread count of the code that started it (as
it would in that code's own thread)."""

import threading

import torch

from napari_sam2._qt.background_encoding import _EncodeThread


def run(worker: _EncodeThread, job) -> None:
    done = threading.Event()

    def wrapped() -> None:
        try:
            job()
        finally:
            done.set()

    worker.submit(wrapped, threading.Event())
    assert done.wait(30)


def test_encodes_share_one_thread_that_follows_the_callers_thread_count():
    worker = _EncodeThread()
    seen = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        run(worker, lambda: seen.append((threading.get_ident(), torch.get_num_threads())))
        torch.set_num_threads(1)  # a thread already running ops keeps its count unless told
        run(worker, lambda: seen.append((threading.get_ident(), torch.get_num_threads())))
    finally:
        torch.set_num_threads(before)
        worker.stop()
    assert seen[0][0] == seen[1][0] != threading.get_ident()
    assert [count for _, count in seen] == [2, 1]
    assert not worker._thread.is_alive()


def test_stop_cancels_the_running_job_and_ends_the_thread():
    worker = _EncodeThread()
    started, cancel = threading.Event(), threading.Event()
    worker.submit(lambda: (started.set(), cancel.wait(30)), cancel)
    assert started.wait(30)
    worker.stop()
    assert cancel.is_set() and not worker._thread.is_alive()


def test_engine_jobs_run_with_the_thread_count_the_widget_has_when_they_start(qtbot):
    """napari's pooled worker threads are reused: without this, a job would keep the count
    its thread first ran under (and a replay's masks could differ by a pixel)."""
    from napari_sam2._qt.workers import job

    def counts():
        yield torch.get_num_threads()

    seen = []
    before = torch.get_num_threads()
    try:
        for threads in (2, 1, 2, 1):
            torch.set_num_threads(threads)
            for func in (torch.get_num_threads, counts):  # function and generator workers
                worker = job(func)
                generator = hasattr(worker, "yielded")
                (worker.yielded if generator else worker.returned).connect(seen.append)
                with qtbot.waitSignal(worker.finished, timeout=30_000):
                    worker.start()
    finally:
        torch.set_num_threads(before)
    assert seen == [2, 2, 1, 1, 2, 2, 1, 1]
