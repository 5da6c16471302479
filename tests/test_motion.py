"""Memories that follow a moving object (`Tracker(follow_motion=True)`): the displacement
measured in the images, the memory maps moved by it, and the tracker's use of both."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from napari_sam2.engine import Tracker
from napari_sam2.engine.motion import REACH, displacement, shift_features
from napari_sam2.model import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _texture(size: int = 96, seed: int = 0) -> np.ndarray:
    return ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=(size, size)), 2.0)


@pytest.mark.parametrize("shift", [(3, -5), (0, 0), (-REACH, REACH), (1, 7)])
def test_displacement_finds_how_far_the_patch_under_the_mask_moved(shift):
    before = _texture()
    after = np.roll(before, shift, axis=(0, 1))
    mask = np.zeros(before.shape, bool)
    mask[40:56, 38:60] = True
    assert displacement(before, after, mask).tolist() == list(shift)


def test_displacement_of_nothing_is_zero():
    before = _texture()
    assert displacement(before, before, np.zeros(before.shape, bool)).tolist() == [0, 0]
    flat = np.ones((64, 64), np.float32)
    assert displacement(flat, flat, flat > 0).tolist() == [0, 0]


def test_displacement_at_the_edge_searches_only_inside_the_frame():
    before = _texture()
    after = np.roll(before, (0, 4), axis=(0, 1))
    mask = np.zeros(before.shape, bool)
    mask[40:56, 0:12] = True  # its patch touches the left edge: shifts to the left are skipped
    assert displacement(before, after, mask).tolist() == [0, 4]


def test_shift_features_moves_the_map_by_whole_and_fractional_cells():
    features = torch.zeros(1, 2, 8, 8)
    features[0, :, 3, 2] = 1.0
    moved = shift_features(features, np.array([2.0, 3.0]))
    assert moved[0, 0, 5, 5] == pytest.approx(1.0)
    assert float(moved.sum()) == pytest.approx(2.0)
    half = shift_features(features, np.array([0.0, 0.5]))
    assert half[0, 0, 3, 2] == pytest.approx(0.5) and half[0, 0, 3, 3] == pytest.approx(0.5)
    assert torch.equal(shift_features(features, np.zeros(2)), features)


def _moving_cells(step: float, frames: int = 8, size: int = 128) -> np.ndarray:
    """Two textured blobs, the first moving `step` px per frame to the right."""
    yy, xx = np.mgrid[:size, :size]
    texture = _texture(size, 1)
    stack = []
    for t in range(frames):
        image = np.full((size, size), 20.0)
        for cy, cx in ((40, 30 + step * t), (90, 90)):
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= 14**2
            image[inside] = 200 + 40 * np.roll(texture, int(round(step * t)), axis=1)[inside]
        stack.append(ndimage.gaussian_filter(image, 1.0))
    return np.clip(np.array(stack), 0, None).astype(np.uint16)


def _track(frames: np.ndarray, follow_motion: bool) -> tuple[Tracker, list[np.ndarray]]:
    tracker = Tracker(build_model("demo"), frames, follow_motion=follow_motion)
    tracker.add_points(0, 1, [[30, 40]], [1])
    tracker.add_points(0, 2, [[90, 90]], [1])
    logits = [np.stack(out) for _, _, out in tracker.propagate("forward")]
    return tracker, logits


def test_the_tracker_measures_each_objects_motion_frame_to_frame():
    tracker, _ = _track(_moving_cells(3.0), follow_motion=True)
    moving, still = tracker.objects[1].positions, tracker.objects[2].positions
    for t in range(1, 8):
        assert np.abs(moving[t] - moving[0] - [0, 3 * t]).max() <= 1
        assert np.abs(still[t] - still[0]).max() <= 1


def test_without_motion_the_masks_are_those_of_the_tracker_without_the_option():
    frames = _moving_cells(0.0)
    followed, with_option = _track(frames, follow_motion=True)
    plain, without = _track(frames, follow_motion=False)
    assert not plain.objects[1].positions  # off: nothing measured
    assert all(np.array_equal(a, b) for a, b in zip(with_option, without, strict=True))


def test_following_motion_changes_what_a_moving_object_remembers():
    frames = _moving_cells(3.0)
    _, with_option = _track(frames, follow_motion=True)
    _, without = _track(frames, follow_motion=False)
    assert not all(np.array_equal(a, b) for a, b in zip(with_option, without, strict=True))


def test_the_demo_model_follows_motion_by_default_and_sessions_log_each_run(tmp_path, monkeypatch):
    import json

    import tifffile

    from napari_sam2.cli import main
    from napari_sam2.io import FramePrompts
    from napari_sam2.model import MODEL_NAMES
    from napari_sam2.model.catalogue import follow_motion_by_default
    from napari_sam2.session import Session, read_session, write_session
    from napari_sam2.session.headless import replay_log, session_log
    from setting_helpers import assert_run_flag_parsed, spy_on_trackers

    assert follow_motion_by_default("demo")
    assert not any(follow_motion_by_default(n) for n in MODEL_NAMES if n != "demo")
    assert not follow_motion_by_default(None)
    model = build_model("demo")
    frames = _moving_cells(3.0)
    assert Tracker(model, frames).follow_motion
    assert not Tracker(model, frames, follow_motion=False).follow_motion

    # each run logs whether it followed, and a replay follows (or not) as the run did
    session = Session(Tracker(model, frames), model_name="demo")
    session.set_prompts(0, 1, FramePrompts([(30.0, 40.0, 1)]))
    session.set_prompts(0, 2, FramePrompts([(90.0, 90.0, 1)]))
    for _ in session.propagate("forward"):
        pass
    followed = session.tracker.labels().copy()
    assert not np.array_equal(followed, _track(frames, follow_motion=False)[0].labels())
    path = write_session(tmp_path / "session.json", session)
    prompts, _ = read_session(path)
    fresh = Tracker(model, frames, follow_motion=False)
    replay_log(fresh, prompts, session_log(prompts, "s.json", prompts_only=False), "s.json")
    np.testing.assert_array_equal(fresh.labels(), followed)
    assert fresh.follow_motion is False  # later runs: as the tracker was made
    session.tracker.follow_motion = False
    for _ in session.propagate("forward", objects="all"):
        pass
    path = write_session(tmp_path / "session.json", session)
    runs = [e for e in json.loads(path.read_text())["log"] if e["op"] == "propagate"]
    assert [r.get("follow_motion") for r in runs] == [True, None]  # written only where on
    assert_run_flag_parsed("follow_motion", "yes")

    # the command line: the model's choice, or the flag
    seen = spy_on_trackers(monkeypatch, "follow_motion")
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, frames[:3], imagej=True, metadata={"axes": "TYX"})
    top = {"format": "napari-sam2 prompts", "version": 2}
    top["objects"] = [{"id": 1, "frames": {"0": {"points": [[30, 30, 1]]}}}]
    (tmp_path / "p.json").write_text(json.dumps(top))
    for extra in ([], ["--follow-motion", "no"]):
        argv = ["segment", movie, "--prompts", tmp_path / "p.json", "--out", tmp_path / "l.tif"]
        argv += ["--model", "demo", "--overwrite", "--quiet", *extra]
        assert main([str(a) for a in argv]) == 0
    assert seen == [True, False]
