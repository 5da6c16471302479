"""Propagating some objects only, and objects removed while a propagation is paused: the
other objects' results, memories and label pixels stay exactly as they were."""

import copy

import numpy as np
import pytest
import torch

from napari_sam2.engine import Tracker, propagate_or_restore
from napari_sam2.errors import SAM2Error
from napari_sam2.synthetic import moving_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(present_tiny_model):
    return present_tiny_model


H, W = 64, 80


@pytest.fixture(scope="module")
def frames():
    stack, _ = moving_cells(
        num_frames=6, height=H, width=W, centers=((20, 25), (40, 55)), radius=8.0
    )
    return stack


def two_objects(model, frames) -> Tracker:
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, [[25.0, 20.0]], [1])
    tracker.add_points(0, 2, [[55.0, 40.0]], [1])
    for _ in tracker.propagate():
        pass
    return tracker


def snapshot(obj):
    return {
        t: (r.low_res_logits.clone(), r.obj_ptr.clone(), r.memory)
        for t, r in {**obj.conditioning, **obj.tracked}.items()
    }


def test_propagating_one_object_leaves_the_others_as_they_were(model, frames):
    tracker = two_objects(model, frames)
    before_two = snapshot(tracker.objects[2])
    direction_two = tracker.objects[2].direction.copy()
    # a correction of object 1 that moves it, then object 1 alone is propagated
    tracker.add_points(0, 1, [[25.0, 20.0], [30.0, 25.0]], [1, 0])
    before_labels = tracker.labels().copy()
    steps = list(tracker.propagate(obj_ids=[1]))
    assert [t for t, _, _ in steps] == list(range(6))
    assert all(ids == [1] for _, ids, _ in steps)
    after = tracker.labels()
    assert not np.array_equal(after == 1, before_labels == 1), "the test needs a change"
    # object 2 keeps every pixel it had; it gains only pixels object 1 gave up where its
    # stored logits claim them
    assert (after[before_labels == 2] == 2).all()
    gained = (after == 2) & (before_labels != 2)
    assert (before_labels[gained] == 1).all()
    after_two = snapshot(tracker.objects[2])
    assert before_two.keys() == after_two.keys()
    for t, (logits, ptr, memory) in before_two.items():
        assert torch.equal(after_two[t][0], logits) and torch.equal(after_two[t][1], ptr)
        assert after_two[t][2] is memory
        if gained[t].any():
            stored = tracker._frame_logits(tracker.objects[2].latest_result(t))
            assert (stored[gained[t]] > 0).all()
    np.testing.assert_array_equal(tracker.objects[2].direction, direction_two)
    # elsewhere object 1 takes exactly its positive pixels
    for t, _, logits in steps:
        free = (before_labels[t] != 2) & ~gained[t]
        np.testing.assert_array_equal(after[t][free] == 1, logits[0][free] > 0)


def test_other_objects_without_stored_results_keep_their_pixels(model, frames):
    tracker = two_objects(model, frames)
    for t in list(tracker.objects[2].tracked):
        del tracker.objects[2].tracked[t]  # as eviction would leave them
    before = tracker.labels().copy()
    list(tracker.propagate(obj_ids=[1]))
    np.testing.assert_array_equal(tracker.labels() == 2, before == 2)


def test_propagation_length_and_start_follow_the_selected_objects(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, [[25.0, 20.0]], [1])
    tracker.add_points(3, 2, [[55.0, 40.0]], [1])
    assert tracker.propagation_length("forward") == 6
    assert tracker.propagation_length("forward", obj_ids=[2]) == 3
    assert [t for t, _, _ in tracker.propagate("forward", obj_ids=[2])] == [3, 4, 5]
    assert not tracker.objects[1].tracked and not tracker.objects[1].direction.any()
    assert not (tracker.labels()[3:] == 1).any()


@pytest.mark.parametrize(
    "obj_ids, message",
    [([9], "no object 9"), ([], "obj_ids is empty"), ([0], "positive integers")],
)
def test_unknown_object_ids_are_a_sam2_error(model, frames, obj_ids, message):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, [[25.0, 20.0]], [1])
    with pytest.raises(SAM2Error, match=message):
        tracker.propagate(obj_ids=obj_ids)
    with pytest.raises(SAM2Error, match=message):
        tracker.propagation_length(obj_ids=obj_ids)


def test_an_object_without_prompts_cannot_be_propagated_alone(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, [[25.0, 20.0]], [1])
    tracker.add_points(1, 2, [[55.0, 40.0]], [1])
    tracker.clear_frame(1, 2)
    with pytest.raises(SAM2Error, match=r"objects \[2\] have no prompts"):
        tracker.propagate(obj_ids=[2])


def test_propagate_or_restore_takes_obj_ids_and_restores_on_cancel(model, frames):
    tracker = two_objects(model, frames)
    before = tracker.labels().copy()
    tracker.add_points(0, 1, [[25.0, 20.0], [30.0, 25.0]], [1, 0])
    run = propagate_or_restore(tracker, "forward", obj_ids=[1])
    assert next(run).total == 6
    run.close()
    after = tracker.labels()
    np.testing.assert_array_equal(after[1:], before[1:])


@pytest.mark.parametrize("forget", ["remove_object", "reset"])
def test_objects_forgotten_while_paused_are_not_resurrected(model, frames, forget):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, [[25.0, 20.0]], [1])
    tracker.add_points(0, 2, [[55.0, 40.0]], [1])
    steps = tracker.propagate()
    next(steps)
    next(steps)
    if forget == "remove_object":
        tracker.remove_object(1)
    else:
        tracker.reset()
    rest = list(steps)
    labels = tracker.labels()
    assert not (labels == 1).any()
    if forget == "reset":
        assert rest == [] and not labels.any() and not tracker.objects
    else:
        assert [t for t, _, _ in rest] == [2, 3, 4, 5]
        assert all(ids == [2] for _, ids, _ in rest)
        assert 1 not in tracker.objects
        assert (labels[2:] == 2).any()


def test_an_object_added_while_paused_keeps_its_pixels(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, [[25.0, 20.0]], [1])
    steps = tracker.propagate()
    next(steps)
    clicked = tracker.add_points(3, 2, [[55.0, 40.0]], [1])
    assert (clicked > 0).any()
    mine = tracker.labels()[3] == 2
    rest = list(steps)
    assert [ids for _, ids, _ in rest] == [[1]] * 5
    kept = copy.deepcopy(tracker.labels()[3] == 2)
    # object 2's click on frame 3 is not tracked by this run: its pixels stay
    np.testing.assert_array_equal(kept, mine)


def test_a_click_composites_like_all_objects_with_fewer_resized(model, frames, monkeypatch):
    """A click resizes only the logits of objects that can be positive where the clicked one
    is or was; the labels are those of compositing with every object on the frame."""
    from napari_sam2.engine import compositing as compositing_module
    from napari_sam2.engine.labels import LabelVolume

    tracker = Tracker(model, frames, fill_hole_area=0)
    tracker.add_mask(0, 1, np.pad(np.ones((8, 8), bool), ((4, H - 12), (4, W - 12))))
    tracker.add_mask(0, 2, np.pad(np.ones((8, 8), bool), ((40, H - 48), (60, W - 68))))
    tracker.add_mask(0, 3, np.pad(np.ones((10, 10), bool), ((8, H - 18), (8, W - 18))))
    before = tracker.labels()[0].copy()
    everyone = {i: tracker._frame_logits(tracker.objects[i].latest_result(0)) for i in (1, 2, 3)}
    resized = []
    to_frame = compositing_module.to_frame_resolution
    monkeypatch.setattr(
        compositing_module,
        "to_frame_resolution",
        lambda logits, h, w: resized.append(1) or to_frame(logits, h, w),
    )
    new = tracker.add_mask(0, 1, np.pad(np.ones((6, 6), bool), ((5, H - 11), (5, W - 11))))
    assert len(resized) == 2, "object 2, far away, is not resized"
    expected = LabelVolume(1, H, W)
    expected.array[0] = before
    expected.write_object(0, 1, new, {2: everyone[2], 3: everyone[3]})
    np.testing.assert_array_equal(tracker.labels()[0], expected.array[0])
