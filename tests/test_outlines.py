"""Outlines snapped to the image (`engine/outlines.py`, `Tracker(snap_outlines=...)`): a
coarse mask's outline moved onto the object's edge, both halves of a dividing cell kept,
nothing done where the image shows no edge, and the tracker's use of it (on by default for
the demo model only, its labels those of its results, what it remembers)."""

import numpy as np
import pytest
from scipy import ndimage

from napari_sam2.engine import Tracker
from napari_sam2.engine.outlines import BAND, snap_outline
from napari_sam2.errors import SAM2Error
from napari_sam2.io import FramePrompts, parse_prompts
from napari_sam2.model import build_model
from napari_sam2.model.catalogue import snap_outlines_by_default
from napari_sam2.session import Session, read_session, write_session
from napari_sam2.session.headless import replay_log, session_log
from napari_sam2.session.log import parse_log
from napari_sam2.synthetic import timelapse
from napari_sam2.training.evaluate import interior_point, jaccard
from setting_helpers import assert_run_flag_parsed, segment_choices

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _ellipse(size: int = 96, centre=(48.3, 45.7), axes=(17.0, 11.0)) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return ((yy - centre[0]) / axes[0]) ** 2 + ((xx - centre[1]) / axes[1]) ** 2 <= 1


def _image(truth: np.ndarray, bright: bool = True, seed: int = 0) -> np.ndarray:
    """A blurred, noisy picture of `truth`: 0.8 inside on 0.1 (or the reverse)."""
    image = np.where(truth, 0.8, 0.1) if bright else np.where(truth, 0.1, 0.8)
    noise = np.random.default_rng(seed).normal(0, 0.03, truth.shape)
    return ndimage.gaussian_filter(image, 1.0) + noise


def _blocky(mask: np.ndarray, step: int = 4) -> np.ndarray:
    """`mask` as a model's quarter-resolution logits draw it: averaged on a coarse grid,
    then enlarged block by block, one pixel off."""
    h, w = mask.shape
    coarse = mask.reshape(h // step, step, w // step, step).mean(axis=(1, 3)) > 0.5
    return np.roll(np.kron(coarse, np.ones((step, step))) > 0, (1, -1), axis=(0, 1))


def _snapped(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    kept = snap_outline(image, mask)
    assert kept is not None
    logits = kept.apply(np.where(mask, 5.0, -5.0).astype(np.float32))
    return logits > 0


@pytest.mark.parametrize("bright", [True, False])
def test_a_coarse_outline_is_moved_onto_the_objects_edge(bright):
    truth = _ellipse()
    coarse = _blocky(truth)
    assert jaccard(coarse, truth) < 0.87
    snapped = _snapped(_image(truth, bright), coarse)
    assert jaccard(snapped, truth) > 0.95
    # it moved no pixel farther than the band from the coarse outline
    moved = snapped ^ coarse
    far = ndimage.binary_erosion(coarse, iterations=BAND) | ~ndimage.binary_dilation(
        coarse, iterations=BAND
    )
    assert not (moved & far).any()


def test_the_level_follows_the_model_where_the_edge_is_soft():
    # a soft-edged object: where its "edge" lies is the model's call, which the snap keeps
    yy, xx = np.mgrid[:96, :96]
    image = np.exp(-((yy - 48) ** 2 + (xx - 48) ** 2) / (2 * 14.0**2))
    for radius in (12, 18):
        mask = (yy - 48) ** 2 + (xx - 48) ** 2 <= radius**2
        snapped = _snapped(image, mask)
        assert abs(int(snapped.sum()) - int(mask.sum())) < 0.1 * mask.sum()


def test_both_halves_of_a_dividing_cell_are_kept_and_a_neighbours_rim_is_not():
    truth = _ellipse(centre=(30, 30), axes=(9, 9)) | _ellipse(centre=(30, 52), axes=(9, 9))
    neighbour = _ellipse(centre=(30, 76), axes=(9, 9))  # 4 px from the right half's edge
    image = _image(truth | neighbour)
    mask = _blocky(truth)
    snapped = _snapped(image, mask)
    parts, count = ndimage.label(snapped)
    assert count == 2
    assert jaccard(snapped, truth) > jaccard(mask, truth) + 0.1
    assert not (snapped & neighbour).any()


def test_nothing_is_snapped_where_the_image_shows_no_edge():
    mask = _ellipse()
    assert snap_outline(np.full(mask.shape, 0.5), mask) is None  # a featureless image
    noise = np.random.default_rng(1).normal(0.5, 0.01, mask.shape)
    assert snap_outline(noise, mask) is None
    tiny = np.zeros_like(mask)
    tiny[10:13, 10:13] = True
    assert snap_outline(_image(tiny), tiny) is None  # too small to have an outline
    assert snap_outline(_image(mask), np.zeros_like(mask)) is None


def test_the_catalogue_snaps_for_the_demo_model_only():
    assert snap_outlines_by_default("demo")
    assert not snap_outlines_by_default("sam2.1_hiera_tiny")
    assert not snap_outlines_by_default(None)
    assert not snap_outlines_by_default("my-own-model")


def _tracked(snap: bool) -> tuple[Tracker, np.ndarray, np.ndarray]:
    stack = timelapse(6, 128, 128, 3, seed=5)
    # without the split at the necks, which moves pixels between objects after their
    # results are kept (engine/touching_cells.py)
    tracker = Tracker(build_model("demo"), stack.frames, snap_outlines=snap, split_touching=False)
    ids = [int(i) for i in np.unique(stack.labels[0]) if i]
    for i in ids:
        tracker.add_points(0, i, [interior_point(stack.labels[0] == i)], [1])
    for _ in tracker.propagate("forward"):
        pass
    return tracker, tracker.labels().copy(), stack.labels


def test_the_tracker_snaps_its_tracked_masks_and_shows_what_it_kept():
    assert Tracker(build_model("demo"), np.zeros((2, 64, 64), np.uint8)).snap_outlines
    snapped_tracker, snapped, truth = _tracked(True)
    _, plain, _ = _tracked(False)
    assert np.array_equal(snapped[0], plain[0])  # the clicked frame is the model's own
    assert not np.array_equal(snapped[1:], plain[1:])

    def mean_j(labels):
        ids = [int(i) for i in np.unique(truth[0]) if i]
        return np.mean([jaccard(labels[t] == i, truth[t] == i) for t in range(1, 6) for i in ids])

    assert mean_j(snapped) > mean_j(plain)
    # each result, shown again, is the snapped mask the labels were made from (less what a
    # neighbour kept: objects are kept apart)
    for obj_id, obj in snapped_tracker.objects.items():
        for t in range(1, 6):
            assert obj.tracked[t].kept is not None
            shown = snapped_tracker._frame_logits(obj.tracked[t]) > 0
            assert not ((snapped[t] == obj_id) & ~shown).any()
            assert not (shown & (snapped[t] == 0)).any()


def test_what_is_remembered_is_the_snapped_mask(monkeypatch):
    model = build_model("demo")
    seen = []
    original = model.frame_memory

    def frame_memory(features, high_res, *args, **kwargs):
        seen.append(high_res.detach().float().cpu().numpy()[:, 0] > 0)
        return original(features, high_res, *args, **kwargs)

    monkeypatch.setattr(model, "frame_memory", frame_memory)
    stack = timelapse(4, 256, 256, 1, seed=3, num_divisions=0, leaving=False)
    tracker = Tracker(model, stack.frames)  # the model's input is the frame's own size
    tracker.add_points(0, 1, [interior_point(stack.labels[0] > 0)], [1])
    for t, _, logits in tracker.propagate("forward"):
        if t > 0:
            assert np.array_equal(seen[-1][0], logits[0] > 0)


def _session_stack():
    stack = timelapse(5, 96, 96, 2, seed=5, cell_radius=14.0, num_divisions=0, leaving=False)
    ids = [int(i) for i in np.unique(stack.labels[0]) if i]
    return stack, [interior_point(stack.labels[0] == i) for i in ids]


def test_a_saved_session_replays_each_runs_setting(tmp_path):
    model = build_model("demo")
    stack, clicks = _session_stack()
    session = Session(Tracker(model, stack.frames), model_name="demo")
    for obj_id, (x, y) in enumerate(clicks, start=1):
        session.set_prompts(0, obj_id, FramePrompts([(x, y, 1)]))
    session.snap_outlines = False
    for _ in session.propagate("forward"):
        pass
    coarse = session.tracker.labels().copy()
    session.snap_outlines = True
    for _ in session.propagate("forward", objects="all"):
        pass
    saved = session.tracker.labels().copy()
    assert (saved != coarse).any()
    path = write_session(tmp_path / "session.json", session)

    prompts, _ = read_session(path)
    assert prompts.snap_outlines is True
    log = session_log(prompts, "session.json", prompts_only=False)
    assert [op.snap_outlines for op in log if hasattr(op, "snap_outlines")] == [False, True]
    fresh = Tracker(model, stack.frames, snap_outlines=False)  # the log says which to use
    _, same = replay_log(fresh, prompts, log, "session.json")
    assert same
    np.testing.assert_array_equal(fresh.labels(), saved)


def test_a_log_without_the_setting_ran_without_it_and_a_bad_one_is_named():
    run = {"op": "propagate", "direction": "both", "start_frame": None, "objects": None}
    run |= {"reappear": True, "frames": None}
    assert parse_log([run], (8, 8))[0].snap_outlines is False
    assert parse_log([run | {"snap_outlines": True}], (8, 8))[0].snap_outlines is True
    with pytest.raises(SAM2Error, match=r"log\[0\]\.snap_outlines: expected true or false"):
        parse_log([run | {"snap_outlines": "yes"}], (8, 8), "s.json")
    top = {"format": "napari-sam2 prompts", "version": 2, "objects": []}
    assert parse_prompts(top).snap_outlines is None
    assert parse_prompts(top | {"snap_outlines": False}).snap_outlines is False
    with pytest.raises(SAM2Error, match=r"p.json: snap_outlines: expected true or false"):
        parse_prompts(top | {"snap_outlines": 1}, "p.json")


def test_segment_takes_the_flag_then_the_prompts_file_then_the_model(tmp_path, monkeypatch):
    stack, clicks = _session_stack()
    seen, snapped, coarse = segment_choices(
        tmp_path, monkeypatch, stack, clicks, "snap_outlines", "--snap-outlines"
    )
    assert seen == [True, False, False, True]
    assert (snapped[1:] != coarse[1:]).any()


# -- grown outlines ----------------------------------------------------------------------


@pytest.mark.parametrize("bright", [True, False])
def test_a_mask_on_half_its_cell_grows_to_the_whole_within_the_limit(bright):
    truth = _ellipse()
    image = _image(truth, bright)
    half = truth & (np.arange(96)[None, :] >= 46)  # held to where its memories had it
    snapped = _snapped(image, half)
    assert jaccard(snapped, truth) < 0.75  # the band alone cannot make it whole
    area = int(truth.sum())
    kept = snap_outline(image, half, grow_to=1.3 * area)
    grown = kept.apply(np.where(half, 5.0, -5.0).astype(np.float32)) > 0
    assert jaccard(grown, truth) > 0.95
    # a limit under the cell's size: no growing, the snapped mask as before
    small = snap_outline(image, half, grow_to=0.9 * area)
    np.testing.assert_array_equal(
        small.apply(np.where(half, 5.0, -5.0).astype(np.float32)) > 0, snapped
    )


def test_a_touching_neighbour_as_bright_stops_the_growing():
    cell = _ellipse(centre=(48.3, 30.0), axes=(14.0, 12.0))
    neighbour = _ellipse(centre=(48.3, 55.0), axes=(14.0, 13.5))
    image = _image(cell | neighbour)
    half = cell & (np.arange(96)[None, :] < 28)
    kept = snap_outline(image, half, grow_to=1.3 * int(cell.sum()))
    grown = kept.apply(np.where(half, 5.0, -5.0).astype(np.float32)) > 0
    assert not (grown & neighbour & ~cell).any()  # the pair is larger than the limit
    np.testing.assert_array_equal(grown, _snapped(image, half))


def test_growing_is_the_demo_models_default_and_each_run_is_logged(tmp_path, monkeypatch):
    from napari_sam2.engine import propagation
    from napari_sam2.model.catalogue import grow_outlines_by_default

    assert grow_outlines_by_default("demo")
    assert not grow_outlines_by_default("sam2.1_hiera_tiny") and not grow_outlines_by_default(None)
    model = build_model("demo")
    stack, clicks = _session_stack()
    limits = []
    original = propagation.grow_limit

    def grow_limit(tracker, obj, t):
        limits.append((obj.obj_id, t, original(tracker, obj, t)))
        return limits[-1][2]

    monkeypatch.setattr(propagation, "grow_limit", grow_limit)
    session = Session(Tracker(model, stack.frames), model_name="demo")
    assert session.tracker.grow_outlines
    for obj_id, (x, y) in enumerate(clicks, start=1):
        session.set_prompts(0, obj_id, FramePrompts([(x, y, 1)]))
    for _ in session.propagate("forward"):
        pass
    # 1.3 times each object's clicked area, measured once on its prompted frame
    for obj_id, obj in session.tracker.objects.items():
        area = int((session.tracker.labels()[0] == obj_id).sum())
        prompt_area = obj.conditioning[0].prompt_area
        assert abs(prompt_area - area) <= 0.05 * area
        assert {lim for i, _, lim in limits if i == obj_id} == {1.3 * prompt_area}
    tracker = session.tracker
    tracker.size_cue = True  # along Z the cue trims end slices on purpose: nothing grows
    assert original(tracker, tracker.objects[1], 2) is None
    tracker.size_cue = False
    session.tracker.grow_outlines = False
    limits.clear()
    for _ in session.propagate("forward", objects="all"):
        pass
    assert limits and all(lim is None for *_, lim in limits)
    saved = session.tracker.labels().copy()
    path = write_session(tmp_path / "session.json", session)
    document = __import__("json").loads(path.read_text())
    runs = [e for e in document["log"] if e["op"] == "propagate"]
    assert [r.get("grow_outlines") for r in runs] == [True, None]  # written only where on
    prompts, _ = read_session(path)
    fresh = Tracker(model, stack.frames, grow_outlines=False)
    replayed, same = replay_log(
        fresh, prompts, session_log(prompts, "s.json", prompts_only=False), "s.json"
    )
    assert same
    np.testing.assert_array_equal(fresh.labels(), saved)
    assert fresh.grow_outlines is False  # later runs: as the tracker was made
    assert_run_flag_parsed("grow_outlines", 1)
