"""Objects clicked on one frame kept off each other's clicks (engine/exclusive_clicks.py):
the rule with a model that answers a click on one of two touching cells with both, the order
of the clicks, removals, propagation, sessions, the command line, and the demo model on two
touching cells of the plain second generator."""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_sam2.engine import Tracker
from napari_sam2.engine.exclusive_clicks import covered, others_clicks, with_background
from napari_sam2.engine.state import FramePrompt
from napari_sam2.errors import SAM2Error
from napari_sam2.io import FramePrompts, parse_prompts
from napari_sam2.model import MODEL_NAMES, build_model
from napari_sam2.model.catalogue import exclusive_clicks_by_default
from napari_sam2.session import Session, read_session, write_session
from napari_sam2.session.headless import replay_log, session_log
from napari_sam2.session.log import parse_log
from napari_sam2.training.evaluate import interior_point, jaccard

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from independent_stacks import independent_timelapse  # noqa: E402

from setting_helpers import segment_choices  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# two touching squares on 64 x 64 frames; the demo model's low-res grid is the frame's
LEFT = (slice(20, 40), slice(10, 32))
RIGHT = (slice(20, 40), slice(32, 54))
LEFT_CLICK, RIGHT_CLICK = (20, 30), (43, 30)


def square(where) -> np.ndarray:
    mask = np.zeros((64, 64), bool)
    mask[where] = True
    return mask


@pytest.fixture(scope="module")
def model():
    return build_model("demo")


@pytest.fixture
def frames():
    stack = np.full((3, 64, 64), 100, np.uint16)
    stack[:, square(LEFT) | square(RIGHT)] = 1000
    return stack


def merging(model, monkeypatch, carving: bool = False) -> list:
    """The model's answer to clicks: both squares, unless a background click lies on one;
    then the squares its object clicks lie on that no background click lies on (carving: both
    squares but a 5 x 5 block around each background click). Returns the list the (positive,
    background) clicks of each decode are appended to."""
    original, decodes = model.track_frame, []

    def square_of(xy) -> str | None:
        col, row = (int(v * 64 / model.image_size) for v in xy)
        return next((n for n, m in (("L", LEFT), ("R", RIGHT)) if square(m)[row, col]), None)

    def track_frame(features, memory, point_coords=None, point_labels=None, **kwargs):
        prediction = original(features, memory, point_coords, point_labels, **kwargs)
        if point_coords is None:
            return prediction
        clicks = [
            (square_of(xy), int(label))
            for xy, label in zip(point_coords[0], point_labels[0], strict=True)
        ]
        positive = {s for s, label in clicks if label == 1}
        background = {s for s, label in clicks if label == 0}
        decodes.append((sorted(filter(None, positive)), sorted(filter(None, background))))
        inside = positive - {None}
        kept = set() if not inside else {"L", "R"} if not background else inside - background
        mask = np.zeros((64, 64), bool)
        for name, where in (("L", LEFT), ("R", RIGHT)):
            if name in kept or (carving and inside):
                mask[where] = True
        for xy, label in zip(point_coords[0], point_labels[0], strict=True):
            col, row = (int(v * 64 / model.image_size) for v in xy)
            if carving and label == 0:
                mask[row - 2 : row + 3, col - 2 : col + 3] = False
        logits = torch.where(torch.from_numpy(mask), 8.0, -8.0)
        for masks in (prediction.low_res_masks, prediction.low_res_multimasks):
            if masks is not None:
                masks[...] = logits.to(masks.dtype)
        return prediction

    monkeypatch.setattr(model, "track_frame", track_frame)
    return decodes


def pending_area(tracker: Tracker, obj: int, t: int) -> int:
    """How many pixels the object's prompt result on frame t holds (the low-res grid is the
    frame's here), whatever the labels show where objects claim the same pixels."""
    return int((tracker.objects[obj].pending[t].low_res_logits > 0).sum())


def test_the_helpers():
    prompt = FramePrompt(torch.tensor([[1.0, 2.0]]), torch.tensor([1], dtype=torch.int32))
    asked = with_background(prompt, torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
    assert asked.point_coords.tolist() == [[1, 2], [5, 6], [7, 8]]
    assert asked.point_labels.tolist() == [1, 0, 0]
    box = FramePrompt(box=torch.tensor([0.0, 0.0, 9.0, 9.0]))
    boxed = with_background(box, torch.tensor([[5.0, 6.0]]))
    assert boxed.point_labels.tolist() == [0] and torch.equal(boxed.box, box.box)


def test_touching_cells_clicked_one_each_come_apart_in_either_order(model, frames, monkeypatch):
    decodes = merging(model, monkeypatch)
    plain = Tracker(model, frames, exclusive_clicks=False)
    plain.add_points(0, 1, [LEFT_CLICK], [1])
    plain.add_points(0, 2, [RIGHT_CLICK], [1])
    for obj in (1, 2):  # without it, each object's mask is both squares
        assert pending_area(plain, obj, 0) == (square(LEFT) | square(RIGHT)).sum()
    for order in ((1, 2), (2, 1)):
        tracker = Tracker(model, frames, exclusive_clicks=True)
        decodes.clear()
        clicks = {1: LEFT_CLICK, 2: RIGHT_CLICK}
        first, second = order
        alone = tracker.add_points(0, first, [clicks[first]], [1]) > 0
        assert alone.sum() == (square(LEFT) | square(RIGHT)).sum()  # nothing to leave out yet
        logits = tracker.add_points(0, second, [clicks[second]], [1]) > 0
        want = {1: square(LEFT), 2: square(RIGHT)}
        np.testing.assert_array_equal(logits, want[second])
        assert tracker.neighbours_redecoded == [first]  # its mask held the new click
        labels = tracker.labels()[0]
        for obj in (1, 2):
            np.testing.assert_array_equal(labels == obj, want[obj])
        # each object decoded plain, then with the other's click as background: the second
        # at its click, the first again after it
        names = {1: "L", 2: "R"}
        assert decodes[1:] == [
            ([names[second]], []),
            ([names[second]], [names[first]]),
            ([names[first]], []),
            ([names[first]], [names[second]]),
        ]


def test_where_a_background_click_carves_only_around_itself_the_nearest_click_decides(
    model, frames, monkeypatch
):
    merging(model, monkeypatch, carving=True)
    session = Session(Tracker(model, frames), model_name="demo")  # on by default for demo
    session.set_prompts(0, 1, FramePrompts([(*LEFT_CLICK, 1)]))
    for _ in session.propagate("forward"):
        pass
    session.set_prompts(0, 2, FramePrompts([(*RIGHT_CLICK, 1)]))
    tracker = session.tracker
    one, two = tracker.objects[1].pending[0], tracker.objects[2].pending[0]
    union = square(LEFT) | square(RIGHT)
    # decoded: each the two squares but a block around the other's click ...
    for result in (one, two):
        decoded = result.decoded[0, 0].numpy() > 0
        assert decoded.sum() == union.sum() - 25 and (decoded <= union).all()
    # ... kept: each its own square, in what is shown and in what will be remembered
    np.testing.assert_array_equal(one.low_res_logits[0, 0].numpy() > 0, square(LEFT))
    np.testing.assert_array_equal(two.low_res_logits[0, 0].numpy() > 0, square(RIGHT))
    for obj, where in ((1, LEFT), (2, RIGHT)):
        np.testing.assert_array_equal(tracker.labels()[0] == obj, square(where))
    assert sorted(session.stale_objects("forward")) == [1, 2]
    for _ in session.propagate("forward"):
        pass
    assert tracker.objects[1].conditioning[0] is one  # encoded from its own square
    # without it, object 1 keeps both squares where it was prompted
    plain = Tracker(model, frames, exclusive_clicks=False)
    plain.add_points(0, 1, [LEFT_CLICK], [1])
    plain.add_points(0, 2, [RIGHT_CLICK], [1])
    assert pending_area(plain, 1, 0) == union.sum()


def test_a_removed_neighbour_gives_the_mask_back(model, frames, monkeypatch):
    merging(model, monkeypatch)
    tracker = Tracker(model, frames, exclusive_clicks=True)
    tracker.add_points(0, 1, [LEFT_CLICK], [1])
    tracker.add_points(0, 2, [RIGHT_CLICK], [1])
    assert (tracker.labels()[0] == 1).sum() == square(LEFT).sum()
    tracker.remove_object(2)
    assert tracker.neighbours_redecoded[-1] == 1
    np.testing.assert_array_equal(tracker.labels()[0] == 1, square(LEFT) | square(RIGHT))
    # the same when its clicks are cleared instead
    tracker.add_points(0, 2, [RIGHT_CLICK], [1])
    assert (tracker.labels()[0] == 1).sum() == square(LEFT).sum()
    tracker.set_prompts(0, 2)
    np.testing.assert_array_equal(tracker.labels()[0] == 1, square(LEFT) | square(RIGHT))


def test_a_click_elsewhere_or_on_another_frame_changes_nothing(model, frames, monkeypatch):
    decodes = merging(model, monkeypatch)
    tracker = Tracker(model, frames, exclusive_clicks=True)
    tracker.add_points(0, 1, [LEFT_CLICK], [1])
    tracker.add_points(1, 2, [RIGHT_CLICK], [1])  # another frame
    tracker.add_points(0, 3, [(5, 5)], [1])  # on the background, off object 1's mask
    assert tracker.neighbours_redecoded == []
    assert all(background == [] for _, background in decodes)
    assert (tracker.labels()[0] == 1).sum() == (square(LEFT) | square(RIGHT)).sum()
    one = tracker.objects[1].pending[0]
    assert others_clicks(tracker, tracker.objects[1], 0).shape == (1, 2)
    assert not covered(tracker, one.low_res_logits, others_clicks(tracker, tracker.objects[1], 0))


def test_propagation_starts_from_the_masks_kept_apart(model, frames, monkeypatch):
    merging(model, monkeypatch)
    session = Session(Tracker(model, frames, exclusive_clicks=True), model_name="demo")
    session.set_prompts(0, 1, FramePrompts([(*LEFT_CLICK, 1)]))
    for _ in session.propagate("forward"):
        pass
    assert session.stale_objects("forward") == []
    session.set_prompts(0, 2, FramePrompts([(*RIGHT_CLICK, 1)]))
    # object 1's prompted frame changed with the click on object 2: both must run again
    assert sorted(session.stale_objects("forward")) == [1, 2]
    for _ in session.propagate("forward"):
        pass
    assert session.tracker.objects[1].conditioning[0].excluded is not None
    np.testing.assert_array_equal(session.tracker.labels()[0] == 1, square(LEFT))


def test_a_session_replays_the_setting_each_edit_ran_with(tmp_path, model, frames, monkeypatch):
    merging(model, monkeypatch)
    session = Session(Tracker(model, frames, exclusive_clicks=True), model_name="demo")
    session.set_prompts(0, 1, FramePrompts([(*LEFT_CLICK, 1)]))
    session.set_prompts(0, 2, FramePrompts([(*RIGHT_CLICK, 1)]))  # on: they come apart
    session.exclusive_clicks = False
    session.set_prompts(1, 1, FramePrompts([(*LEFT_CLICK, 1)]))
    session.set_prompts(1, 2, FramePrompts([(*RIGHT_CLICK, 1)]))  # off: one mask on both
    saved = session.tracker.labels().copy()
    assert (saved[0] == 1).sum() == square(LEFT).sum()
    assert pending_area(session.tracker, 1, 1) == (square(LEFT) | square(RIGHT)).sum()
    path = write_session(tmp_path / "session.json", session)
    document = json.loads(path.read_text())
    assert document["exclusive_clicks"] is False  # the setting when saved, for clicks to come
    assert [e.get("exclusive_clicks") for e in document["log"]] == [True, True, None, None]
    prompts, _ = read_session(path)
    log = session_log(prompts, "session.json", prompts_only=False)
    for start in (True, False):
        fresh = Tracker(model, frames, exclusive_clicks=start)
        replayed, same = replay_log(fresh, prompts, log, "session.json")
        assert same
        np.testing.assert_array_equal(fresh.labels(), saved)
        assert replayed.exclusive_clicks is False
    # a session saved before the setting existed ran without it
    for entry in document["log"]:
        entry.pop("exclusive_clicks", None)
    del document["exclusive_clicks"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    prompts, _ = read_session(old)
    fresh = Tracker(model, frames)
    replayed, _ = replay_log(
        fresh, prompts, session_log(prompts, "old.json", prompts_only=False), "old.json"
    )
    assert pending_area(fresh, 1, 0) == (square(LEFT) | square(RIGHT)).sum()
    assert replayed.exclusive_clicks is True  # later clicks: the model's default


def test_a_removal_and_a_mask_are_logged_with_it(tmp_path, model, frames, monkeypatch):
    merging(model, monkeypatch)
    session = Session(Tracker(model, frames, exclusive_clicks=True), model_name="demo")
    session.set_prompts(0, 1, FramePrompts([(*LEFT_CLICK, 1)]))
    session.set_prompts(0, 2, FramePrompts([(*RIGHT_CLICK, 1)]))
    session.add_mask(0, 2, square(RIGHT))  # object 2's click is gone: object 1 takes both
    session.remove_object(2)
    saved = session.tracker.labels().copy()
    assert pending_area(session.tracker, 1, 0) == (square(LEFT) | square(RIGHT)).sum()
    path = write_session(tmp_path / "session.json", session)
    document = json.loads(path.read_text())
    assert [e["op"] for e in document["log"]] == ["prompts", "prompts", "mask", "remove"]
    assert all(e["exclusive_clicks"] is True for e in document["log"])
    prompts, _ = read_session(path)
    fresh = Tracker(model, frames, exclusive_clicks=False)
    replay_log(fresh, prompts, session_log(prompts, "s.json", prompts_only=False), "s.json")
    np.testing.assert_array_equal(fresh.labels(), saved)


def test_the_catalogue_and_bad_values():
    assert exclusive_clicks_by_default("demo")
    for name in MODEL_NAMES:
        if name != "demo":
            assert not exclusive_clicks_by_default(name), name
    assert not exclusive_clicks_by_default("my_model")
    assert not exclusive_clicks_by_default(None)
    click = {"op": "prompts", "frame": 0, "object": 1, "points": [[1, 1, 1]]}
    assert parse_log([click], (8, 8))[0].exclusive_clicks is False
    assert parse_log([click | {"exclusive_clicks": True}], (8, 8))[0].exclusive_clicks is True
    with pytest.raises(SAM2Error, match=r"log\[0\]\.exclusive_clicks: expected true or false"):
        parse_log([click | {"exclusive_clicks": "yes"}], (8, 8), "s.json")
    remove = {"op": "remove", "object": 1, "exclusive_clicks": True}
    assert parse_log([remove], (8, 8))[0].exclusive_clicks is True
    top = {"format": "napari-sam2 prompts", "version": 2, "objects": []}
    assert parse_prompts(top).exclusive_clicks is None
    assert parse_prompts(top | {"exclusive_clicks": False}).exclusive_clicks is False
    with pytest.raises(SAM2Error, match=r"p.json: exclusive_clicks: expected true or false"):
        parse_prompts(top | {"exclusive_clicks": 1}, "p.json")


@pytest.fixture(scope="module")
def touching():
    """Frame 0 of the plain second generator's seed 4: two touching cells (ids 2 and 5)
    that the demo model answers one click on either with both."""
    stack = independent_timelapse(4, "ellipse")
    return stack.frames[:2], stack.labels[:2]


def test_the_demo_model_parts_two_touching_cells(model, touching):
    frames, labels = touching
    clicks = {i: interior_point(labels[0] == i) for i in (2, 5)}
    plain = Tracker(model, frames, exclusive_clicks=False)
    merged = {i: plain.add_points(0, i, [clicks[i]], [1]) > 0 for i in clicks}
    both = (labels[0] == 2) | (labels[0] == 5)
    for i in clicks:  # without it, each click gives one mask over the pair
        assert jaccard(merged[i], both) > 0.8, i
    tracker = Tracker(model, frames)  # on by default for the demo model
    for i in clicks:
        tracker.add_points(0, i, [clicks[i]], [1])
    for i in clicks:
        assert jaccard(tracker.labels()[0] == i, labels[0] == i) > 0.8, i


def test_segment_takes_the_flag_then_the_prompts_file_then_the_model(
    tmp_path, monkeypatch, touching
):
    frames, labels = touching
    stack = SimpleNamespace(frames=frames)
    clicks = [interior_point(labels[0] == i) for i in (2, 5)]
    seen, by_default, without = segment_choices(
        tmp_path, monkeypatch, stack, clicks, "exclusive_clicks", "--exclusive-clicks"
    )
    assert seen == [True, False, False, True]
    scores = {
        name: [jaccard(out[0] == obj, labels[0] == cell) for obj, cell in ((1, 2), (2, 5))]
        for name, out in (("on", by_default), ("off", without))
    }
    assert min(scores["on"]) > 0.8, scores
    assert not np.array_equal(by_default, without)  # the flag reached the tracker
