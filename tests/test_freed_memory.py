"""Freed memory between propagated frames (engine/freed_memory.py): kept for the next frame
while a propagation runs on the CPU of a machine with room, given back when it ends."""

import sys

import numpy as np
import pytest

from napari_sam2.engine import Tracker, freed_memory
from napari_sam2.engine.freed_memory import (
    KEPT_SETTINGS,
    USUAL_SETTINGS,
    keeping_freed_memory,
    keeps_freed_memory,
    release_freed_memory,
)
from napari_sam2.model import build_model

glibc = pytest.mark.skipif(
    freed_memory._malloc_trim() is None, reason="glibc only (elsewhere a no-op by design)"
)


class FakeLibc:
    def __init__(self, monkeypatch) -> None:
        self.calls: list = []
        monkeypatch.setattr(freed_memory, "_mallopt", lambda: self.mallopt)
        monkeypatch.setattr(freed_memory, "_malloc_trim", lambda: self.trim)

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1

    def trim(self, pad: int) -> int:
        self.calls.append(("trim", pad))
        return 1


def test_nested_propagations_keep_once_and_the_last_one_out_gives_back(monkeypatch):
    libc = FakeLibc(monkeypatch)
    with keeping_freed_memory(on_cpu=True, min_available=0) as kept:
        assert kept and keeps_freed_memory()
        assert libc.calls == list(KEPT_SETTINGS)
        assert release_freed_memory(min_interval=0) is False  # kept for the next frame
        with keeping_freed_memory(on_cpu=True, min_available=0) as inner:
            assert inner
        assert libc.calls == list(KEPT_SETTINGS)  # the outer one still keeps
    assert not keeps_freed_memory()
    assert libc.calls == [*KEPT_SETTINGS, *USUAL_SETTINGS, ("trim", 0)]
    assert release_freed_memory(min_interval=0) is True


def test_nothing_is_kept_off_the_cpu_or_without_room(monkeypatch):
    libc = FakeLibc(monkeypatch)
    with keeping_freed_memory(on_cpu=False, min_available=0) as kept:
        assert not kept and not keeps_freed_memory()
    with keeping_freed_memory(on_cpu=True, min_available=1 << 62) as kept:
        assert not kept and not keeps_freed_memory()
    assert libc.calls == []


def test_an_error_inside_still_gives_the_memory_back(monkeypatch):
    libc = FakeLibc(monkeypatch)
    with pytest.raises(RuntimeError), keeping_freed_memory(on_cpu=True, min_available=0):
        raise RuntimeError("propagation failed")
    assert not keeps_freed_memory()
    assert libc.calls[-1] == ("trim", 0)


def test_a_cpu_propagation_keeps_freed_memory_while_it_runs(monkeypatch):
    FakeLibc(monkeypatch)
    monkeypatch.setattr(freed_memory, "KEEP_MIN_AVAILABLE", 0)
    tracker = Tracker(build_model("demo"), np.random.default_rng(0).random((4, 32, 32)))
    tracker.add_points(0, 1, [[16.0, 16.0]], [1])
    during = [keeps_freed_memory() for _ in tracker.propagate("forward")]
    assert during == [True] * 4
    assert not keeps_freed_memory()


# run in a fresh process: what glibc does with a large block depends on what the process
# allocated and freed before (earlier tests leave free memory in the heap)
FAULTS_SCRIPT = """
import json, resource, torch
from napari_sam2.engine.freed_memory import keeping_freed_memory

def block_faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(16 << 20).fill_(1.0)  # 64 MiB allocated, touched and freed
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = [block_faults() for _ in range(3)]
with keeping_freed_memory(on_cpu=True, min_available=0) as kept:
    inside = [block_faults() for _ in range(6)]
after = [block_faults() for _ in range(3)]
print(json.dumps({"kept": kept, "outside": outside, "inside": inside, "after": after}))
"""


@glibc
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page-fault counts: Linux")
def test_a_large_block_freed_while_kept_is_reused_without_faults():
    """What the module is for: a 64 MiB block is mapped afresh (16384 faults) every time
    outside, and comes from memory the heap kept inside (once the heap holds enough free
    memory for it: the first one or two are new); after, it is given back again."""
    import json
    import subprocess

    run = subprocess.run(
        [sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True, check=True
    )
    faults = json.loads(run.stdout.strip().splitlines()[-1])
    assert faults["kept"]
    assert min(faults["outside"]) > 8000, faults
    assert min(faults["inside"][2:]) < 1000, faults
    # glibc's usual settings are back and the kept memory was given back: the next block is
    # mapped afresh (later ones may again come from the heap, depending on its layout: in
    # half of the runs the third was served without faults)
    assert faults["after"][0] > 8000 and max(faults["after"][1:]) > 8000, faults
