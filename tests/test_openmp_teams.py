"""Threads that stop computing hand back their OpenMP workers: a worker job when it ends, a
background encode while it waits at a check for a click, the GUI thread after a quick click.
An idle team left behind makes every other thread's parallel ops wait for sleeping workers
once the process holds more workers than cores (engine/openmp_teams.py)."""

import os
import sys
import threading
import time
from collections import deque
from types import SimpleNamespace

import pytest
import torch

from napari_sam2._qt import background_encoding, quick_clicks
from napari_sam2._qt.workers import worker_job
from napari_sam2.engine.openmp_teams import release_thread_team

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="torch uses GNU OpenMP on Linux only"
)


def os_threads() -> set[int]:
    """The process's threads that share the calling thread's name: OpenMP workers take the
    name of the thread that made them, Qt's pooled threads have names of their own."""

    def name(tid) -> str | None:
        try:
            with open(f"/proc/self/task/{tid}/comm") as comm:
                return comm.read()
        except OSError:  # ended meanwhile
            return None

    mine = name(threading.get_native_id())
    return {int(tid) for tid in os.listdir("/proc/self/task") if name(tid) == mine}


def settled_threads() -> set[int]:
    """`os_threads()` once it stops changing (read every 20 ms, for at most 2 s): a released
    worker ends on its own time, later on a loaded machine."""
    last = os_threads()
    for _ in range(100):
        time.sleep(0.02)
        now = os_threads()
        if now == last:
            return now
        last = now
    return last


def parallel_op() -> None:
    """An op torch runs on two threads (after `two_threads`): this thread's OpenMP team, one
    worker besides it."""
    torch.ones(1 << 22).mul_(2.0)


def two_threads() -> None:
    """Two torch threads in this thread (the process's first call also starts a thread of
    torch's own, so it comes before any count)."""
    torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def keep_thread_count():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def in_thread(job) -> dict:
    """Run `job(seen)` in a new thread that stays alive until told; `seen` gets what it
    records, and "done" the threads there are after the job, with the thread still alive."""
    seen, done, finish = {}, threading.Event(), threading.Event()

    def run():
        two_threads()
        try:
            job(seen)
        finally:
            done.set()
            finish.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert done.wait(30)
    seen["done"] = os_threads()
    finish.set()
    thread.join(10)
    return seen


def test_a_thread_hands_back_its_workers():
    def job(seen):
        seen["before"] = os_threads()
        parallel_op()
        seen["with team"] = os_threads()
        seen["released"] = release_thread_team()
        seen["after"] = settled_threads()
        parallel_op()  # a team is made again at the next parallel op
        seen["again"] = os_threads()
        release_thread_team()

    seen = in_thread(job)
    made = seen["with team"] - seen["before"]
    assert seen["released"] is True and len(made) == 1
    assert not made & seen["after"]  # the worker is gone
    assert len(seen["again"] - seen["after"]) == 1


@pytest.mark.parametrize("kind", ["function", "generator"])
def test_a_worker_job_hands_back_its_workers_when_it_ends(kind):
    def compute(seen):
        seen["before"] = os_threads()
        parallel_op()
        seen["with team"] = os_threads()

    def steps(seen):
        compute(seen)
        yield

    def job(seen):
        if kind == "function":
            worker_job(compute)(seen)
        else:
            list(worker_job(steps)(seen))

    seen = in_thread(job)
    made = seen["with team"] - seen["before"]
    assert len(made) == 1 and not made & seen["done"]  # the thread alive, its worker gone


def test_an_encode_waiting_for_a_click_hands_back_its_workers_first():
    computed, go, went_on = threading.Event(), threading.Event(), []
    counts = {}

    def encode():
        two_threads()
        with background_encoding.background_encode(5, threading.Event()):
            counts["before"] = os_threads()
            parallel_op()
            counts["with team"] = os_threads()
            computed.set()
            go.wait(10)
            background_encoding._stop_if_cancelled(None, ())  # the next check: held
            went_on.append(True)
        release_thread_team()

    thread = threading.Thread(target=encode, daemon=True)
    thread.start()
    assert computed.wait(30)
    go.set()
    with background_encoding.hold_for_click({2}, wait_s=30):  # starts once the encode waits
        counts["click"] = settled_threads()
        assert went_on == []
    thread.join(10)
    assert went_on == [True]
    made = counts["with team"] - counts["before"]
    assert len(made) == 1 and not made & counts["click"]


def test_a_quick_click_in_the_gui_thread_hands_back_its_workers():
    class Model:  # the recorded click times are kept per model, weakly
        pass

    model = Model()
    quick_clicks._recent[model] = deque([1.0], maxlen=5)  # quick: runs in this thread
    host = SimpleNamespace(
        tracker=SimpleNamespace(is_encoded=lambda t: True),
        model=model,
        failed=lambda error: None,
        session_changed=lambda: None,
    )

    def job(seen):
        seen["before"] = os_threads()

        def apply():
            parallel_op()
            seen["with team"] = os_threads()

        seen["here"] = quick_clicks.run_here(host, {(0, 1): None}, apply, lambda done: None)
        seen["after"] = settled_threads()

    seen = in_thread(job)
    assert seen["here"] is True
    made = seen["with team"] - seen["before"]
    assert len(made) == 1 and not made & seen["after"]


def test_workers_are_handed_back_when_another_library_loaded_its_own_openmp():
    """scikit-learn (which the tracking metrics bring) loads a second copy of GNU OpenMP:
    torch's workers must still go."""
    from sklearn.utils import _openmp_helpers  # noqa: F401

    assert sum("libgomp" in line for line in open("/proc/self/maps")) > 0

    def job(seen):
        seen["before"] = os_threads()
        parallel_op()
        seen["with team"] = os_threads()
        release_thread_team()
        seen["after"] = settled_threads()

    seen = in_thread(job)
    made = seen["with team"] - seen["before"]
    assert len(made) == 1 and not made & seen["after"]
