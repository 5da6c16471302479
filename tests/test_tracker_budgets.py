"""Cache budgets that follow the machine's available memory, can be read and changed, and
freed memory handed back to the system after each propagated frame."""

import sys
from types import SimpleNamespace

import pytest
import torch

from napari_sam2.engine import Tracker, budgets, freed_memory
from napari_sam2.engine import propagation as propagation_module
from napari_sam2.engine.budgets import MIB, CacheBudgets, default_budgets
from napari_sam2.errors import SAM2Error
from napari_sam2.synthetic import moving_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(present_tiny_model):
    return present_tiny_model


@pytest.fixture(scope="module")
def frames():
    return moving_cells(num_frames=4, height=48, width=64)[0]


def available(monkeypatch, nbytes: int) -> None:
    monkeypatch.setattr(budgets.psutil, "virtual_memory", lambda: SimpleNamespace(available=nbytes))


@pytest.mark.parametrize(
    "gib, features_mib, results_mib",
    [(0.25, 64, 16), (2, 256, 32), (8, 1024, 128), (64, 1024, 256)],
)
def test_default_budgets_are_a_share_of_available_memory(
    monkeypatch, gib, features_mib, results_mib
):
    available(monkeypatch, int(gib * 1024 * MIB))
    assert default_budgets(torch.device("cpu")) == CacheBudgets(
        features_mib * MIB, results_mib * MIB
    )


def test_a_tracker_without_budgets_takes_the_defaults(model, frames, monkeypatch):
    available(monkeypatch, 2 * 1024 * MIB)
    tracker = Tracker(model, frames)
    assert tracker.budgets == CacheBudgets(256 * MIB, 32 * MIB)
    assert Tracker(model, frames, feature_budget_bytes=5, result_budget_bytes=7).budgets == (
        CacheBudgets(5, 7)
    )


def test_a_smaller_feature_budget_drops_features_at_once(model, frames):
    tracker = Tracker(model, frames)
    for t in range(3):
        tracker.encode(t)
    assert len(tracker.features) == 3
    tracker.budgets = CacheBudgets(features=0, results=1 * MIB)
    assert len(tracker.features) == 1 and tracker.is_encoded(2)
    assert tracker.result_budget_bytes == 1 * MIB
    with pytest.raises(SAM2Error, match="at least 0 bytes"):
        tracker.budgets = CacheBudgets(features=-1, results=0)


def test_propagation_gives_freed_memory_back_after_each_frame(model, frames, monkeypatch):
    calls = []
    monkeypatch.setattr(propagation_module, "release_freed_memory", lambda: calls.append(1))
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, [[30.0, 20.0]], [1])
    steps = sum(1 for _ in tracker.propagate())
    assert steps == 4 and len(calls) == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_freed_memory_reaches_glibc():
    assert freed_memory.release_freed_memory(min_interval=0) is True
    assert freed_memory.release_freed_memory(min_interval=3600) is False  # too soon
