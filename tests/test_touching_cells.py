"""Touching objects' masks split again at their necks (`engine/touching_cells.py`,
`Tracker(split_touching=...)`): what moves and what stays on drawn masks, the demo model on
cells that swallow a touching neighbour, the catalogue default, not along Z, and the session
log."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_sam2.engine import Tracker
from napari_sam2.engine.non_overlap import keep_apart
from napari_sam2.engine.propagation import splits_touching
from napari_sam2.engine.touching_cells import Patch, split_at_necks, touching_groups
from napari_sam2.io import FramePrompts
from napari_sam2.model import build_model
from napari_sam2.model.catalogue import engine_default
from napari_sam2.session import Session, read_session, write_session
from napari_sam2.session.headless import replay_log, session_log
from napari_sam2.training.evaluate import interior_point, jaccard
from setting_helpers import assert_run_flag_parsed, spy_on_propagations

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from independent_stacks import independent_timelapse  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _disc(centre, radius, size=64) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _logits(*masks) -> np.ndarray:
    """Kept-apart logits: each object positive on its mask (the first of two wins)."""
    return keep_apart(np.stack([np.where(m, 5.0, -5.0) for m in masks]).astype(np.float32))


LEFT, RIGHT = _disc((32, 21), 10), _disc((32, 40), 10)  # pressed together around x = 30
X = np.arange(64)


def test_a_mask_spread_over_its_neighbour_is_split_back_at_the_neck():
    spread = LEFT | (RIGHT & (X < 38))  # the left cell's mask over a third of the right one
    logits = _logits(spread, RIGHT & ~spread)
    out = split_at_necks(logits, [Patch.of(LEFT), Patch.of(RIGHT)]) > 0
    assert jaccard(out[0], LEFT) > 0.95 and jaccard(out[1], RIGHT) > 0.95
    assert not (out[0] & out[1]).any() and np.array_equal(out[0] | out[1], LEFT | RIGHT)
    assert jaccard(logits[1] > 0, RIGHT) < 0.75  # as it was


def test_three_in_a_row_and_a_cell_alone():
    middle, right = _disc((32, 32), 7), _disc((32, 45), 6)
    left = _disc((32, 19), 6)
    alone = _disc((8, 8), 5)
    # the middle cell squeezed by both neighbours' masks, the one alone untouched
    squeezed = middle & (X >= 29) & (X <= 35)
    logits = _logits(left | (middle & (X < 29)), squeezed, right | (middle & (X > 35)), alone)
    before = [Patch.of(m) for m in (left, middle, right, alone)]
    out = split_at_necks(logits, before) > 0
    for got, cell in zip(out, (left, middle, right, alone), strict=True):
        assert jaccard(got, cell) > 0.9
    np.testing.assert_array_equal(out[3], alone)
    assert touching_groups(np.argmax(np.stack([np.zeros_like(alone), *out]), axis=0), 4) == [
        [0, 1, 2]
    ]


def test_objects_without_a_core_keep_their_pixels():
    spread = LEFT | (RIGHT & (X < 38))
    logits = _logits(spread, RIGHT & ~spread)
    # no mask on the frame before, or one elsewhere (a cell that moved off its core)
    for before in ([Patch.of(LEFT), None], [Patch.of(_disc((8, 50), 6)), Patch.of(RIGHT)]):
        np.testing.assert_array_equal(split_at_necks(logits, before), logits)
    # apart, nothing to split
    far = _logits(LEFT, _disc((32, 55), 6))
    assert split_at_necks(far, [Patch.of(LEFT), Patch.of(_disc((32, 55), 6))]) is far


def test_patch_crops_and_pastes_back():
    mask = _disc((5, 60), 6)  # cut by the frame's edge
    patch = Patch.of(mask)
    assert patch.crop.shape == (12, 10) and patch.box == (0, 12, 54, 64)
    np.testing.assert_array_equal(patch.within((0, 64, 0, 64)), mask)
    np.testing.assert_array_equal(patch.within((3, 20, 50, 62)), mask[3:20, 50:62])
    assert not patch.within((30, 40, 0, 10)).any() and Patch.of(np.zeros((4, 4), bool)) is None


@pytest.fixture(scope="module")
def model():
    return build_model("demo")


@pytest.mark.parametrize(
    ("kind", "cells", "frames", "victim"),
    [("flat", (4, 8), 16, 4), ("ellipse", (1, 6), 10, 6)],
    ids=["bright-crossing-grey", "large-swallows-small"],
)
def test_the_demo_model_keeps_a_cell_its_neighbour_spread_over(model, kind, cells, frames, victim):
    # independent generator, seed 15: cell 8 (bright) moves onto cell 4 (grey); the large
    # cell 1 swallows the small cell 6 beside it
    stack = independent_timelapse(15, kind)
    frames, labels = np.asarray(stack.frames)[:frames], np.asarray(stack.labels)[:frames]
    last = {}
    for on in (True, False):
        tracker = Tracker(model, frames, split_touching=on)
        for cell in cells:
            tracker.add_points(0, cell, [interior_point(labels[0] == cell)], [1])
        for _ in tracker.propagate("forward"):
            pass
        last[on] = {c: jaccard(tracker.labels()[-1] == c, labels[-1] == c) for c in cells}
    assert min(last[True].values()) > 0.85, last
    assert last[False][victim] < 0.5, last  # without it the victim is half taken or lost


def test_on_for_the_demo_model_not_along_z_and_logged_per_run(tmp_path, model, monkeypatch):
    assert engine_default("demo", "split_touching")
    assert not engine_default("sam2.1_hiera_tiny", "split_touching")
    stack = independent_timelapse(15, "flat")
    frames, labels = np.asarray(stack.frames)[:8], np.asarray(stack.labels)[:8]
    session = Session(Tracker(model, frames), model_name="demo")
    tracker = session.tracker
    assert tracker.split_touching and splits_touching(tracker)
    tracker.size_cue = True  # along Z a nucleus's slices shrink and grow on purpose
    assert not splits_touching(tracker)
    tracker.size_cue = False
    for cell in (1, 6):
        session.set_prompts(0, cell, FramePrompts([(*interior_point(labels[0] == cell), 1)]))
    for _ in session.propagate("forward"):
        pass
    tracker.non_overlap = False  # nothing kept apart: nothing split, logged off
    for _ in session.propagate("forward", objects="all"):
        pass
    tracker.non_overlap = True
    tracker.split_touching = False
    for _ in session.propagate("forward", objects="all"):
        pass
    saved = tracker.labels().copy()
    path = write_session(tmp_path / "session.json", session)
    runs = [e for e in json.loads(path.read_text())["log"] if e["op"] == "propagate"]
    assert [r.get("split_touching") for r in runs] == [True, None, None]
    prompts, _ = read_session(path)
    fresh = Tracker(model, frames, split_touching=False)
    seen = spy_on_propagations(monkeypatch, "split_touching")
    _, same = replay_log(
        fresh, prompts, session_log(prompts, "s.json", prompts_only=False), "s.json"
    )
    assert same and seen[:3] == [True, False, False]
    np.testing.assert_array_equal(fresh.labels(), saved)
    assert fresh.split_touching is False  # later runs: as the tracker was made
    assert_run_flag_parsed("split_touching", "yes")
