"""The tracker against the reference SAM2VideoPredictor: same weights, same frames, same
prompts, the same logits on every frame."""

import numpy as np
import pytest
import torch

from napari_sam2.engine import Tracker
from napari_sam2.model import build_model
from napari_sam2.synthetic import moving_cells

from reference import build_reference_video_predictor, perturb_

IMAGE_SIZE = 256


def _biased_pair(name: str, image_size: int, object_bias: float = 8.0):
    """Reference predictor and our model with equal random weights. The object-score head is
    biased towards "present" in both, so random weights still give non-empty masks."""
    reference = perturb_(build_reference_video_predictor(name, image_size, fill_hole_area=0))
    with torch.no_grad():
        reference.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(object_bias)
    ours = build_model(name, image_size=image_size)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def _upcast_reference_memory(reference, monkeypatch) -> None:
    """The reference stores memories in bfloat16 and, on the CPU, fails to attend to a memory
    without object pointers (it never upcasts them). Feed it the same bf16-rounded values as
    float32, which is what our tracker does."""
    attend = reference.memory_attention.forward

    def upcast(*args, memory, **kwargs):
        return attend(*args, memory=memory.float(), **kwargs)

    monkeypatch.setattr(reference.memory_attention, "forward", upcast)


def _reference_state(reference, tracker: Tracker, monkeypatch):
    images = torch.stack([tracker.frame_tensor(t) for t in range(tracker.num_frames)])
    monkeypatch.setattr(
        "sam2.sam2_video_predictor.load_video_frames",
        lambda **kwargs: (images, tracker.height, tracker.width),
    )
    return reference.init_state(video_path="synthetic")


def assert_logits_close(ours: np.ndarray, theirs, what: str) -> None:
    theirs = np.asarray(theirs, dtype=np.float32)
    scale = max(1.0, float(np.abs(theirs).max()))
    diff = float(np.abs(ours - theirs).max())
    assert diff <= 1e-3 * scale, f"{what}: max abs difference {diff} (logit scale {scale})"
    a, b = ours > 0, theirs > 0
    union = (a | b).sum()
    iou = 1.0 if union == 0 else (a & b).sum() / union
    assert iou >= 0.999, f"{what}: mask IoU {iou}"


def _propagate_both(tracker, reference, state, direction):
    ours = {}
    for t, ids, logits in tracker.propagate(direction):
        ours.setdefault(t, []).append((ids, logits))
    theirs = {}
    passes = {"forward": [False], "backward": [True], "both": [False, True]}[direction]
    for reverse in passes:
        for t, ids, masks in reference.propagate_in_video(state, reverse=reverse):
            theirs.setdefault(t, []).append((list(ids), masks[:, 0].numpy()))
    assert sorted(ours) == sorted(theirs)
    for t in ours:
        assert len(ours[t]) == len(theirs[t])
        for (ids, logits), (ref_ids, ref_logits) in zip(ours[t], theirs[t], strict=True):
            assert ids == ref_ids
            assert_logits_close(logits, ref_logits, f"frame {t}")
    return ours


@pytest.mark.parametrize("direction", ["forward", "backward", "both"])
def test_points_one_object(direction, monkeypatch):
    frames, truth = moving_cells(num_frames=7)
    reference, model = _biased_pair("sam2.1_hiera_tiny", IMAGE_SIZE)
    tracker = Tracker(model, frames, fill_hole_area=0)
    state = _reference_state(reference, tracker, monkeypatch)
    prompt_frame = 3 if direction != "forward" else 0
    points, labels = np.array([[40.0 + 9, 30.0 + 6]]), np.array([1])
    ours = tracker.add_points(prompt_frame, 1, points, labels)
    _, _, theirs = reference.add_new_points_or_box(state, prompt_frame, 1, points, labels)
    assert_logits_close(ours, theirs[0, 0].numpy(), "click")
    results = _propagate_both(tracker, reference, state, direction)
    assert any((logits > 0).any() for runs in results.values() for _, logits in runs)


def test_two_objects_box_and_mask_on_different_frames_with_correction(monkeypatch):
    frames, truth = moving_cells(num_frames=8)
    reference, model = _biased_pair("sam2.1_hiera_tiny", IMAGE_SIZE)
    tracker = Tracker(model, frames, fill_hole_area=0)
    state = _reference_state(reference, tracker, monkeypatch)
    _upcast_reference_memory(reference, monkeypatch)

    box = np.array([25.0, 15.0, 58.0, 47.0])
    ours = tracker.add_box(0, 1, box)
    _, _, theirs = reference.add_new_points_or_box(state, 0, 1, box=box)
    assert_logits_close(ours, theirs[0, 0].numpy(), "box")
    # object 2 is prompted later than object 1: on frames before its prompt its memory holds
    # no object pointer, the case where the reference fails on the CPU
    mask = truth[2] == 2
    ours = tracker.add_mask(2, 2, mask)
    _, _, theirs = reference.add_new_mask(state, 2, 2, mask)
    assert_logits_close(ours, theirs[1, 0].numpy(), "mask")
    _propagate_both(tracker, reference, state, "forward")

    # a correction on a tracked frame, then propagate again
    points, labels = np.array([[70.0, 40.0], [52.0, 36.0]]), np.array([0, 1])
    ours = tracker.add_points(5, 1, points, labels)
    _, _, theirs = reference.add_new_points_or_box(state, 5, 1, points, labels, box=None)
    assert_logits_close(ours, theirs[0, 0].numpy(), "correction")
    _propagate_both(tracker, reference, state, "forward")


def test_box_then_points_on_same_frame_and_sam2_0(monkeypatch):
    frames, _ = moving_cells(num_frames=5, dtype=np.float32)
    reference, model = _biased_pair("sam2_hiera_tiny", IMAGE_SIZE)
    tracker = Tracker(model, frames, fill_hole_area=0)
    state = _reference_state(reference, tracker, monkeypatch)
    box = np.array([25.0, 15.0, 58.0, 47.0])
    tracker.add_box(1, 1, box)
    reference.add_new_points_or_box(state, 1, 1, box=box)
    points, labels = np.array([[40.0, 30.0]]), np.array([0])
    ours = tracker.add_points(1, 1, points, labels)
    _, _, theirs = reference.add_new_points_or_box(state, 1, 1, points, labels, box=box)
    assert_logits_close(ours, theirs[0, 0].numpy(), "box + click")
    _propagate_both(tracker, reference, state, "both")


FOUR_OBJECTS = [
    # objects 1 and 2 on frame 0, objects 3 and 4 on frame 2: frames see two memory layouts
    (0, 1, np.array([[49.0, 36.0]]), np.array([1])),
    (0, 2, np.array([[20.0, 20.0], [60.0, 50.0]]), np.array([1, 0])),
    (2, 3, np.array([[30.0, 40.0]]), np.array([1])),
    (2, 4, np.array([[70.0, 20.0]]), np.array([1])),
]


def _record_calls(monkeypatch, owner, name: str, record) -> list:
    """`owner.name` still runs; each call also appends `record(*args)` to the list returned."""
    calls = []
    original = getattr(owner, name)

    def spy(*args, **kwargs):
        calls.append(record(*args))
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return calls


def _count_batches(model, monkeypatch) -> list[int]:
    return _record_calls(monkeypatch, model, "track_frames", lambda _, memories: len(memories))


def _four_objects_setup(monkeypatch, batch_size: int):
    """The reference and our tracker (its batches counted) on one stack, for FOUR_OBJECTS."""
    frames, _ = moving_cells(num_frames=6)
    reference, model = _biased_pair("sam2.1_hiera_tiny", IMAGE_SIZE)
    tracker = Tracker(model, frames, fill_hole_area=0, batch_size=batch_size)
    state = _reference_state(reference, tracker, monkeypatch)
    _upcast_reference_memory(reference, monkeypatch)
    return reference, model, tracker, state, _count_batches(model, monkeypatch)


def test_four_objects_prompted_on_two_frames_run_in_batches(monkeypatch):
    reference, model, tracker, state, batches = _four_objects_setup(monkeypatch, 8)
    for t, obj_id, points, labels in FOUR_OBJECTS:
        ours = tracker.add_points(t, obj_id, points, labels)
        _, ids, theirs = reference.add_new_points_or_box(state, t, obj_id, points, labels)
        assert_logits_close(ours, theirs[ids.index(obj_id), 0].numpy(), f"click {obj_id}")
    _propagate_both(tracker, reference, state, "forward")
    assert max(batches) >= 2, "objects of the same memory layout share a batch"


def test_batches_track_like_one_object_at_a_time_in_both_directions(monkeypatch):
    """The reference starts its backward pass elsewhere when objects are prompted on several
    frames, so both directions are checked against our own unbatched tracking."""
    frames, _ = moving_cells(num_frames=6)
    _, model = _biased_pair("sam2.1_hiera_tiny", IMAGE_SIZE)
    batches = _count_batches(model, monkeypatch)
    runs = {}
    for batch_size in (8, 1):
        tracker = Tracker(model, frames, fill_hole_area=0, batch_size=batch_size)
        for t, obj_id, points, labels in FOUR_OBJECTS:
            tracker.add_points(t, obj_id, points, labels)
        batches.clear()
        runs[batch_size] = list(tracker.propagate("both"))
        assert (max(batches) >= 2) if batch_size == 8 else (max(batches) == 1)
    for (t, ids, batched), (t1, ids1, single) in zip(runs[8], runs[1], strict=True):
        assert (t, ids) == (t1, ids1)
        np.testing.assert_allclose(batched, single, rtol=0, atol=1e-4)


def test_objects_one_by_one_share_the_frames_first_self_attention(monkeypatch):
    """One object per batch (the CPU default): memory attention's first self-attention, which
    sees only the frame, runs once per frame for all four objects, with the reference's
    results."""
    reference, model, tracker, state, batches = _four_objects_setup(monkeypatch, 1)
    computed = _record_calls(
        monkeypatch, model.memory_attention, "frame_tokens", lambda curr, _: curr.shape[0]
    )
    for t, obj_id, points, labels in FOUR_OBJECTS:
        tracker.add_points(t, obj_id, points, labels)
        reference.add_new_points_or_box(state, t, obj_id, points, labels)
    tracked = _propagate_both(tracker, reference, state, "forward")
    assert max(batches) == 1
    # once per frame (or less: a frame where no object has memory yet attends to none)
    assert set(computed) == {1} and len(computed) <= len(tracked) < len(batches)
