"""Objects kept apart on tracked frames (engine/non_overlap.py): the constraint itself, the
Tracker's option and its catalogue default, and sessions that replay it."""

import numpy as np
import pytest
import torch

from napari_sam2.engine import Tracker
from napari_sam2.engine.non_overlap import NON_OWNER_LOGIT, keep_apart
from napari_sam2.errors import SAM2Error
from napari_sam2.io import FramePrompts, parse_prompts
from napari_sam2.model import MODEL_NAMES, build_model
from napari_sam2.model.catalogue import non_overlap_by_default
from napari_sam2.session import Session, read_session, write_session
from napari_sam2.session.headless import replay_log, session_log
from napari_sam2.session.log import parse_log
from napari_sam2.synthetic import timelapse
from napari_sam2.training.evaluate import interior_point
from setting_helpers import segment_choices

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_each_pixel_stays_with_the_highest_logit():
    logits = np.array(
        [
            [[5.0, 1.0, -3.0], [2.0, -1.0, -20.0]],
            [[4.0, 2.0, -2.0], [-5.0, 0.5, -30.0]],
            [[-1.0, 3.0, -1.0], [7.0, -2.0, -40.0]],
        ],
        dtype=np.float32,
    )
    apart = keep_apart(logits)
    assert apart.dtype == np.float32 and apart.shape == logits.shape
    owner = logits.argmax(axis=0)
    for k in range(3):
        mine = owner == k
        np.testing.assert_array_equal(apart[k][mine], logits[k][mine])  # the owner keeps all
        np.testing.assert_array_equal(
            apart[k][~mine], np.minimum(logits[k][~mine], NON_OWNER_LOGIT)
        )
    assert ((apart > 0).sum(axis=0) <= 1).all()
    # where nobody claims a pixel, nobody gains it
    assert not (apart[:, logits.max(axis=0) <= 0] > 0).any()
    one = logits[:1]
    assert keep_apart(one) is one


def test_the_demo_model_keeps_objects_apart_and_sam2_checkpoints_do_not():
    assert non_overlap_by_default("demo")
    for name in MODEL_NAMES:
        if name != "demo":
            assert not non_overlap_by_default(name), name
    assert not non_overlap_by_default("my_model")
    assert not non_overlap_by_default(None)
    frames = np.zeros((2, 32, 32), np.uint8)
    demo = build_model("demo")
    assert Tracker(demo, frames).non_overlap is True
    assert Tracker(demo, frames, non_overlap=False).non_overlap is False


@pytest.fixture(scope="module")
def model():
    return build_model("demo")


@pytest.fixture(scope="module")
def cells():
    """A short time-lapse and two clicks on the same cell, a few pixels apart: two objects
    whose masks cover the same pixels unless kept apart."""
    s = timelapse(6, 96, 96, 2, seed=5, cell_radius=14.0, num_divisions=0, leaving=False)
    ids = [int(i) for i in np.unique(s.labels[0]) if i]
    x, y = interior_point(s.labels[0] == ids[0])
    return s, [(x, y), (x + 3.0, y)]


class MemorySpy:
    """The masks (B, 1, S, S) each memory encoding of the model is given."""

    def __init__(self, model, monkeypatch) -> None:
        self.masks: list[np.ndarray] = []
        original = model.frame_memory

        def frame_memory(features, high_res, *args, **kwargs):
            self.masks.append(high_res.detach().float().cpu().numpy()[:, 0] > 0)
            return original(features, high_res, *args, **kwargs)

        monkeypatch.setattr(model, "frame_memory", frame_memory)


def propagated(model, stack, clicks, **options) -> tuple[Tracker, dict[int, np.ndarray]]:
    # two objects on one cell, on purpose: their clicks are not kept off each other's masks
    tracker = Tracker(model, stack.frames, exclusive_clicks=False, **options)
    for obj_id, xy in enumerate(clicks, start=1):
        tracker.add_points(0, obj_id, [xy], [1])
    masks = {}
    for t, ids, logits in tracker.propagate("forward"):
        masks[t] = {i: logit > 0 for i, logit in zip(ids, logits, strict=True)}
    return tracker, masks


@pytest.mark.parametrize("batch_size", [1, 2])
def test_tracked_frames_and_their_memories_keep_objects_apart(
    model, cells, monkeypatch, batch_size
):
    stack, clicks = cells
    _, together = propagated(model, stack, clicks, non_overlap=False, batch_size=batch_size)
    shared = [(m[1] & m[2]).sum() for t, m in together.items() if t > 0]
    assert min(shared) > 50, shared  # without the option both objects take the cell

    spy = MemorySpy(model, monkeypatch)
    tracker, apart = propagated(model, stack, clicks, non_overlap=True, batch_size=batch_size)
    for t, masks in apart.items():
        if t > 0:
            assert not (masks[1] & masks[2]).any(), t
            assert masks[1].any() or masks[2].any(), t  # the cell is still someone's
    # the prompted frame keeps what each click gave
    np.testing.assert_array_equal(apart[0][1], together[0][1])
    np.testing.assert_array_equal(apart[0][2], together[0][2])
    # what is remembered of the tracked frames is kept apart too; the prompted frame's
    # memories come first (encoded again as propagation starts), as the clicks gave them
    per_object = [m for masks in spy.masks for m in masks]
    assert len(per_object) == 2 * len(stack.frames)
    assert (per_object[0] & per_object[1]).any()
    for first, second in zip(per_object[2::2], per_object[3::2], strict=True):
        assert not (first & second).any()


class StartSpy:
    """The low-resolution mask each click of the model starts from (`prev_mask_logits`)."""

    def __init__(self, model, monkeypatch) -> None:
        self.starts: list[torch.Tensor | None] = []
        original = model.track_frame

        def track_frame(*args, **kwargs):
            start = kwargs.get("prev_mask_logits")
            self.starts.append(None if start is None else start.detach().float().cpu())
            return original(*args, **kwargs)

        monkeypatch.setattr(model, "track_frame", track_frame)


@pytest.mark.parametrize("non_overlap", [True, False])
def test_a_correction_on_a_tracked_frame_starts_from_the_kept_apart_mask(
    model, cells, monkeypatch, non_overlap
):
    stack, clicks = cells
    # stored results overlapping where the other object's logits are higher, as the split at
    # the necks (which labels show but results do not keep) can leave none
    tracker, _ = propagated(model, stack, clicks, non_overlap=non_overlap, split_touching=False)
    t = 3
    mine, theirs = (tracker.objects[i].tracked[t].low_res_logits.clone() for i in (1, 2))
    assert ((mine > 0) & (theirs > 0)).sum() > 0  # the stored results overlap
    spy = StartSpy(model, monkeypatch)
    x, y = clicks[0]
    tracker.add_points(t, 1, [(x, y), (x + 20.0, y + 20.0)], [1, 0])
    (start,) = spy.starts
    expected = keep_apart(torch.cat([mine, theirs])[:, 0].numpy())[:1] if non_overlap else mine
    np.testing.assert_array_equal(start[:, 0].numpy() if non_overlap else start, expected)
    if non_overlap:
        assert not ((start > 0) & (theirs > mine)).any()
        assert (start > 0).sum() < (mine > 0).sum()  # it gave up pixels
    # the other object's stored result is left as it was, to take back what this one frees
    assert torch.equal(tracker.objects[2].tracked[t].low_res_logits, theirs)


def test_a_saved_session_replays_the_setting_to_the_same_labels(tmp_path, model, cells):
    stack, clicks = cells
    session = Session(Tracker(model, stack.frames), model_name="demo")
    for obj_id, (x, y) in enumerate(clicks, start=1):
        session.set_prompts(0, obj_id, FramePrompts([(x, y, 1)]))
    session.tracker.non_overlap = False
    for _ in session.propagate("forward"):
        pass
    overlapping = session.tracker.labels().copy()
    session.tracker.non_overlap = True
    session.set_prompts(0, 1, session.prompts[(0, 1)])  # re-track all with the setting on
    for _ in session.propagate("forward", objects="all"):
        pass
    saved = session.tracker.labels().copy()
    assert (saved != overlapping).any()
    path = write_session(tmp_path / "session.json", session)

    prompts, _ = read_session(path)
    log = session_log(prompts, "session.json", prompts_only=False)
    assert [op.non_overlap for op in log if hasattr(op, "non_overlap")] == [False, True]
    fresh = Tracker(model, stack.frames, non_overlap=False)  # the log says which to use
    _, same = replay_log(fresh, prompts, log, "session.json")
    assert same
    np.testing.assert_array_equal(fresh.labels(), saved)


def test_a_session_log_without_the_setting_ran_without_it_and_a_bad_one_is_named():
    run = {"op": "propagate", "direction": "both", "start_frame": None, "objects": None}
    run |= {"reappear": True, "frames": None}
    assert parse_log([run], (8, 8))[0].non_overlap is False
    assert parse_log([run | {"non_overlap": True}], (8, 8))[0].non_overlap is True
    with pytest.raises(SAM2Error, match=r"log\[0\]\.non_overlap: expected true or false, got 1"):
        parse_log([run | {"non_overlap": 1}], (8, 8), "s.json")
    top = {"format": "napari-sam2 prompts", "version": 2, "objects": []}
    assert parse_prompts(top).non_overlap is None
    assert parse_prompts(top | {"non_overlap": False}).non_overlap is False
    with pytest.raises(SAM2Error, match=r"p.json: non_overlap: expected true or false, got \"no\""):
        parse_prompts(top | {"non_overlap": "no"}, "p.json")


def test_segment_takes_the_flag_then_the_prompts_file_then_the_model(tmp_path, cells, monkeypatch):
    stack, clicks = cells
    seen, apart, together = segment_choices(
        tmp_path, monkeypatch, stack, clicks, "non_overlap", "--non-overlap", same_cell=True
    )
    assert seen == [True, False, False, True]
    assert (apart[1:] != together[1:]).any()
