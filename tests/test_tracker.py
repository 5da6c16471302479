"""Tracker behaviour: prompts, propagation order, the label volume as results arrive,
stopping early, objects, corrections, errors and bounded memory.

A tiny random-weight model at a small input size; its object-score head is biased towards
"present", so random weights give non-empty masks (as in test_tracker_parity)."""

import inspect
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from napari_sam2.engine import FrameSource, Tracker
from napari_sam2.engine.feature_cache import feature_bytes
from napari_sam2.engine.masks import fill_holes, to_frame_resolution
from napari_sam2.errors import SAM2Error
from napari_sam2.model import build_model
from napari_sam2.synthetic import moving_cells

IMAGE_SIZE = 128
OBJECT_BIAS = 8.0
H, W = 64, 80
# memory window of the official configs: max(num_maskmem, max_obj_ptrs_in_encoder)
MEMORY_WINDOW = 16


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = build_model("sam2.1_hiera_tiny", image_size=IMAGE_SIZE)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(OBJECT_BIAS)
    return model


@contextmanager
def object_bias(model, value: float):
    """Temporarily force the object-score head's verdict (negative: "absent")."""
    bias = model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias
    old = bias.detach().clone()
    with torch.no_grad():
        bias.fill_(value)
    try:
        yield
    finally:
        with torch.no_grad():
            bias.copy_(old)


def cells(num_frames: int = 6, height: int = H, width: int = W, velocity=(2.0, 3.0)):
    return moving_cells(
        num_frames=num_frames,
        height=height,
        width=width,
        centers=((20, 25), (40, 55)),
        radius=8.0,
        velocity=velocity,
    )


@pytest.fixture(scope="module")
def frames():
    return cells()[0]


def cell_xy(cell: int, t: int) -> list[list[float]]:
    """A click (x, y) on cell 1 or 2 of `cells()` on frame t."""
    if cell == 1:
        return [[25.0 + 3 * t, 20.0 + 2 * t]]
    return [[55.0 - 3 * t, 40.0 + 2 * t]]


def labels_from(ids: list[int], logits: np.ndarray) -> np.ndarray:
    """Expected label frame: the highest positive logit wins (first listed on ties)."""
    best = np.argmax(logits, axis=0)
    return np.where(logits.max(axis=0) > 0, np.asarray(ids)[best], 0)


def run(tracker: Tracker, direction: str = "forward", start_frame=None):
    """Every step of a propagation: [(t, ids, logits)]."""
    return list(tracker.propagate(direction, start_frame))


# -- prompts -------------------------------------------------------------------------


def test_add_points_returns_the_frame_logits_and_writes_them_to_labels(model, frames):
    tracker = Tracker(model, frames)
    logits = tracker.add_points(2, 1, cell_xy(1, 2), [1])
    assert logits.shape == (H, W) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    assert (logits > 0).any()
    labels = tracker.labels()
    assert labels.shape == (6, H, W) and np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(labels[2] == 1, logits > 0)
    assert set(np.unique(labels[2])) <= {0, 1}
    assert not np.delete(labels, 2, axis=0).any()
    assert tracker.object_ids == [1]
    # the click is used: another click elsewhere gives another mask
    other = tracker.add_points(2, 2, [[70.0, 5.0], [60.0, 50.0]], [1, 0])
    assert not np.allclose(other, logits, atol=1e-3)


def test_points_and_labels_accept_lists_tuples_and_arrays(model, frames):
    tracker = Tracker(model, frames)
    from_lists = tracker.add_points(1, 1, cell_xy(1, 1), [1])
    from_arrays = tracker.add_points(1, 2, np.array(cell_xy(1, 1)), np.array([1]))
    from_tuple = tracker.add_points(1, 3, tuple(cell_xy(1, 1)[0]), (1,))
    np.testing.assert_array_equal(from_lists, from_arrays)
    np.testing.assert_array_equal(from_lists, from_tuple)


def test_add_box_returns_the_frame_logits_and_writes_them_to_labels(model, frames):
    tracker = Tracker(model, frames)
    box = [15.0, 10.0, 36.0, 31.0]
    logits = tracker.add_box(0, 3, box)
    assert logits.shape == (H, W) and logits.dtype == np.float32
    assert (logits > 0).any()
    np.testing.assert_array_equal(tracker.labels()[0] == 3, logits > 0)
    assert not tracker.labels()[1:].any()
    # corners may come in any order
    swapped = tracker.add_box(0, 4, [36.0, 31.0, 15.0, 10.0])
    np.testing.assert_allclose(swapped, logits, rtol=0, atol=1e-5)
    # a box is not a click
    click = tracker.add_points(0, 5, cell_xy(1, 0), [1])
    assert not np.allclose(click, logits, atol=1e-3)


def test_box_then_click_keeps_the_box(model, frames):
    tracker = Tracker(model, frames)
    box = [15.0, 10.0, 36.0, 31.0]
    tracker.add_box(0, 1, box)
    both = tracker.add_points(0, 1, [[30.0, 25.0]], [0])
    only_click = Tracker(model, frames).add_points(0, 1, [[30.0, 25.0]], [0])
    assert not np.allclose(both, only_click, atol=1e-3)
    prompt = tracker.objects[1].prompts[0]
    assert prompt.box is not None and prompt.point_coords is not None


def test_add_mask_returns_the_mask_as_logits(model, frames):
    _, truth = cells()
    tracker = Tracker(model, frames)
    mask = truth[1] == 1
    logits = tracker.add_mask(1, 1, mask)
    assert logits.shape == (H, W) and logits.dtype == np.float32
    predicted = logits > 0
    iou = (predicted & mask).sum() / (predicted | mask).sum()
    assert iou > 0.9
    # a mask prompt is taken as the output: logits +-10 away from its edge
    assert logits[truth[1] == 0].min() == pytest.approx(-10.0, abs=1e-3)
    assert logits.max() == pytest.approx(10.0, abs=1e-3)
    np.testing.assert_array_equal(tracker.labels()[1] == 1, predicted)
    # masks of any integer or bool dtype
    as_int = tracker.add_mask(1, 2, mask.astype(np.uint8) * 7)
    np.testing.assert_array_equal(as_int, logits)


def test_add_mask_with_a_hole_fills_it_by_default(model, frames):
    # hole filling on (8 low-res pixels, the reference's default) fills a small hole in the
    # mask prompt, off (0) keeps it
    assert inspect.signature(Tracker).parameters["fill_hole_area"].default == 8
    yy, xx = np.mgrid[:H, :W]
    mask = (yy - 32) ** 2 + (xx - 40) ** 2 <= 15**2
    mask &= ~((abs(yy - 32) < 3) & (abs(xx - 40) < 3))
    filled = Tracker(model, frames).add_mask(0, 1, mask)
    kept = Tracker(model, frames, fill_hole_area=0).add_mask(0, 1, mask)
    assert kept[32, 40] < 0 < filled[32, 40]
    # away from the hole both are the same
    far = (abs(yy - 32) > 8) | (abs(xx - 40) > 8)
    np.testing.assert_array_equal(filled[far], kept[far])


def test_default_hole_filling_equals_fill_holes_of_the_raw_result(model, frames):
    default = Tracker(model, frames)
    raw = Tracker(model, frames, fill_hole_area=0)
    assert default.fill_hole_area == 8
    for tracker in (default, raw):
        tracker.add_points(2, 1, cell_xy(1, 2), [1])
    low_raw = raw.objects[1].latest_result(2).low_res_logits
    low_default = default.objects[1].latest_result(2).low_res_logits
    torch.testing.assert_close(low_default, fill_holes(low_raw, 8), rtol=0, atol=0)
    logits = default.add_points(2, 2, cell_xy(1, 2), [1])
    expected = to_frame_resolution(fill_holes(low_raw, 8), H, W)[0].numpy()
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-6)


def test_clicks_replace_earlier_clicks_on_the_frame(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, [[10.0, 10.0], [70.0, 50.0]], [1, 1])
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    prompt = tracker.objects[1].prompts[0]
    assert prompt.point_coords.shape == (1, 2)
    np.testing.assert_allclose(
        prompt.point_coords.numpy(), [[25.0 * IMAGE_SIZE / W, 20.0 * IMAGE_SIZE / H]], 1e-6
    )


def test_empty_clicks_clear_the_frame_and_its_labels(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(1, 1, cell_xy(1, 1), [1])
    assert (tracker.labels()[1] == 1).any()
    logits = tracker.add_points(1, 1, np.zeros((0, 2)), [])
    assert logits.shape == (H, W) and (logits <= 0).all()
    assert not (tracker.labels()[1] == 1).any()
    assert 1 not in tracker.objects[1].prompts
    with pytest.raises(SAM2Error, match="nothing to propagate"):
        next(tracker.propagate())


# -- propagation ---------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_labels_are_written_before_each_yield(model, frames, direction):
    tracker = Tracker(model, frames)
    prompt_frame = 0 if direction == "forward" else 5
    tracker.add_points(prompt_frame, 1, cell_xy(1, prompt_frame), [1])
    visited = []
    for t, ids, logits in tracker.propagate(direction):
        visited.append(t)
        labels = tracker.labels()
        assert ids == [1]
        assert logits.shape == (1, H, W) and logits.dtype == np.float32
        np.testing.assert_array_equal(labels[t], labels_from(ids, logits))
        assert (labels[t] == 1).any()
        not_reached = [f for f in range(6) if f not in visited]
        assert not labels[not_reached].any(), f"frames {not_reached} written before frame {t}"
    assert visited == (list(range(6)) if direction == "forward" else list(range(5, -1, -1)))


def test_propagation_visits_frames_in_the_reference_order(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(2, 1, cell_xy(1, 2), [1])
    tracker.add_points(4, 2, cell_xy(2, 4), [1])
    cases = {
        # forward from the earliest prompted frame, backward from the latest
        ("forward", None): [2, 3, 4, 5],
        ("backward", None): [4, 3, 2, 1, 0],
        ("both", None): [2, 3, 4, 5, 4, 3, 2, 1, 0],
        ("forward", 3): [3, 4, 5],
        ("backward", 1): [1, 0],
        ("both", 3): [3, 4, 5, 3, 2, 1, 0],
        ("forward", 0): [0, 1, 2, 3, 4, 5],
        ("backward", 5): [5, 4, 3, 2, 1, 0],
    }
    for (direction, start), expected in cases.items():
        steps = run(tracker, direction, start)
        assert [t for t, _, _ in steps] == expected, (direction, start)
        for _, ids, logits in steps:
            assert ids == [1, 2]
            assert logits.shape == (2, H, W)


def test_object_prompted_later_is_tracked_backwards_in_both(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(3, 1, cell_xy(1, 3), [1])
    steps = run(tracker, "both")
    assert [t for t, _, _ in steps] == [3, 4, 5, 3, 2, 1, 0]
    for t in (0, 1, 2):
        logits = next(lg for f, _, lg in steps if f == t)
        assert (logits[0] > 0).any()
        np.testing.assert_array_equal(tracker.labels()[t], labels_from([1], logits))
    assert all((tracker.labels()[t] == 1).any() for t in range(6))


def test_prompted_frames_keep_their_prompt_result(model, frames):
    tracker = Tracker(model, frames)
    clicked = tracker.add_points(2, 1, cell_xy(1, 2), [1])
    for direction in ("forward", "backward", "both"):
        for t, _, logits in run(tracker, direction):
            if t == 2:
                np.testing.assert_array_equal(logits[0], clicked)
    assert sorted(tracker.objects[1].conditioning) == [2]


def test_tracked_frames_depend_on_memory_not_only_on_the_image(model, frames):
    # the same frame tracked from prompts on different objects/places gives different masks
    first, second = Tracker(model, frames), Tracker(model, frames)
    first.add_points(0, 1, cell_xy(1, 0), [1])
    second.add_points(0, 1, cell_xy(2, 0), [1])
    a = dict((t, lg) for t, _, lg in run(first))
    b = dict((t, lg) for t, _, lg in run(second))
    # (random weights attend weakly: the difference is small but real)
    assert np.abs(a[3] - b[3]).max() > 1e-5


def stop_after(tracker, frame: int, direction="forward", close=False) -> list[int]:
    visited = []
    steps = tracker.propagate(direction)
    for t, _, _ in steps:
        visited.append(t)
        if t == frame:
            break
    if close:
        steps.close()
    return visited


@pytest.mark.parametrize("close", [False, True])
def test_stopping_early_leaves_a_usable_tracker(model, frames, close):
    clean = Tracker(model, frames)
    clean.add_points(0, 1, cell_xy(1, 0), [1])
    expected = {t: lg for t, _, lg in run(clean)}

    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    assert stop_after(tracker, 2, close=close) == [0, 1, 2]
    labels = tracker.labels()
    assert all((labels[t] == 1).any() for t in (0, 1, 2))
    assert not labels[3:].any(), "frames not reached were written"
    assert not any(t in tracker.objects[1].tracked for t in (3, 4, 5))
    # propagating again works and gives what an uninterrupted run gives
    again = {t: lg for t, _, lg in run(tracker)}
    assert sorted(again) == list(range(6))
    for t in range(6):
        np.testing.assert_allclose(again[t], expected[t], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(tracker.labels(), clean.labels())


def test_stopping_during_the_backward_pass_of_both(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(3, 1, cell_xy(1, 3), [1])
    steps = tracker.propagate("both")
    visited = [next(steps)[0] for _ in range(5)]
    steps.close()
    assert visited == [3, 4, 5, 3, 2]
    assert not tracker.labels()[:2].any()
    assert (tracker.labels()[2:] == 1).any(axis=(1, 2)).all()
    with pytest.raises(StopIteration):
        next(steps)
    assert [t for t, _, _ in run(tracker, "backward")] == [3, 2, 1, 0]
    assert (tracker.labels() == 1).any(axis=(1, 2)).all()


def test_two_objects_overlap_goes_to_the_higher_logit(model, frames):
    tracker = Tracker(model, frames)
    one = tracker.add_points(0, 1, cell_xy(1, 0), [1])
    two = tracker.add_points(0, 2, cell_xy(2, 0), [1])
    assert ((one > 0) & (two > 0)).any(), "the test needs overlapping masks"
    labels = tracker.labels()[0]
    differ = one != two  # on exact ties either object may win
    np.testing.assert_array_equal(labels[differ], labels_from([1, 2], np.stack([one, two]))[differ])
    seen = set()
    for t, ids, logits in tracker.propagate():
        assert ids == [1, 2]
        overlap = (logits > 0).all(axis=0)
        labels = tracker.labels()[t]
        np.testing.assert_array_equal(labels, labels_from(ids, logits))
        winner = np.where(logits[0] >= logits[1], 1, 2)
        np.testing.assert_array_equal(labels[overlap], winner[overlap])
        seen |= set(np.unique(labels).tolist())
    assert {1, 2} <= seen


def test_objects_can_be_added_after_propagating(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    run(tracker)
    tracker.add_points(3, 7, cell_xy(2, 3), [1])
    steps = run(tracker)
    assert [t for t, _, _ in steps] == list(range(6))
    assert all(ids == [1, 7] for _, ids, _ in steps)
    for t, ids, logits in steps:
        np.testing.assert_array_equal(tracker.labels()[t], labels_from(ids, logits))


def test_remove_object_clears_its_labels(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    tracker.add_points(0, 2, cell_xy(2, 0), [1])
    run(tracker)
    before = tracker.labels().copy()
    assert (before == 1).any() and (before == 2).any()
    tracker.remove_object(1)
    after = tracker.labels()
    assert not (after == 1).any()
    np.testing.assert_array_equal(after == 2, before == 2)
    assert tracker.object_ids == [2]
    steps = run(tracker)
    assert all(ids == [2] for _, ids, _ in steps)
    assert not (tracker.labels() == 1).any()
    with pytest.raises(SAM2Error, match="no object 1"):
        tracker.remove_object(1)


def test_reset_forgets_everything_but_keeps_image_features(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    tracker.add_box(2, 2, [40.0, 30.0, 70.0, 50.0])
    run(tracker)
    misses = tracker.features.misses
    tracker.reset()
    assert tracker.object_ids == [] and not tracker.objects
    assert not tracker.labels().any()
    with pytest.raises(SAM2Error, match="nothing to propagate"):
        next(tracker.propagate())
    # start again: nothing of the old objects is left, the features are reused
    fresh = Tracker(model, frames)
    expected = fresh.add_points(4, 1, cell_xy(1, 4), [1])
    logits = tracker.add_points(4, 1, cell_xy(1, 4), [1])
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5)
    assert tracker.features.misses == misses
    assert [t for t, _, _ in run(tracker)] == [4, 5]


def test_clear_frame_removes_the_prompts(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(1, 1, cell_xy(1, 1), [1])
    tracker.clear_frame(1, 1)
    assert not tracker.objects[1].prompts
    with pytest.raises(SAM2Error, match="nothing to propagate"):
        next(tracker.propagate())


def test_clear_frame_of_a_click_never_propagated_erases_its_mask(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(1, 1, cell_xy(1, 1), [1])
    tracker.clear_frame(1)
    assert not (tracker.labels()[1] == 1).any()


def test_clear_frame_after_propagation(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    tracker.add_points(3, 1, cell_xy(1, 3), [1])
    run(tracker)
    assert sorted(tracker.objects[1].conditioning) == [0, 3]
    tracker.clear_frame(3, 1)
    assert sorted(tracker.objects[1].conditioning) == [0]
    assert 3 not in tracker.objects[1].prompts
    assert [t for t, _, _ in run(tracker, "backward")] == [0]
    tracker.clear_frame(0)  # every object
    assert not tracker.objects[1].conditioning and not tracker.objects[1].prompts
    with pytest.raises(SAM2Error, match="nothing to propagate"):
        next(tracker.propagate("both"))
    with pytest.raises(SAM2Error, match="no object 9"):
        tracker.clear_frame(0, 9)
    with pytest.raises(SAM2Error, match="frame 6"):
        tracker.clear_frame(6)


def test_absent_object_from_an_empty_mask_has_an_empty_mask(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    logits = tracker.add_mask(2, 2, np.zeros((H, W), dtype=bool))
    assert (logits <= 0).all()
    assert not (tracker.labels()[2] == 2).any()
    for t, ids, step in run(tracker):
        if t == 2:
            assert (step[ids.index(2)] <= 0).all()
            assert not (tracker.labels()[2] == 2).any()


def test_object_judged_absent_gets_an_empty_mask(model, frames):
    tracker = Tracker(model, frames)
    clicked = tracker.add_points(0, 1, cell_xy(1, 0), [1])
    assert (clicked > 0).any()
    with object_bias(model, -30.0):
        steps = run(tracker)
    for t, _, logits in steps:
        if t == 0:
            np.testing.assert_array_equal(logits[0], clicked)  # the prompt stays
            continue
        assert (logits <= 0).all(), f"frame {t}"
        assert not tracker.labels()[t].any()
    assert (tracker.labels()[0] == 1).any()


def test_correction_on_a_tracked_frame_becomes_a_prompted_frame(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    first = {t: lg[0] for t, _, lg in run(tracker)}
    misses = tracker.features.misses
    correction = tracker.add_points(3, 1, cell_xy(1, 3) + [[70.0, 60.0]], [1, 0])
    assert not np.allclose(correction, first[3], atol=1e-3)
    np.testing.assert_array_equal(tracker.labels()[3] == 1, correction > 0)
    again = {t: lg[0] for t, _, lg in run(tracker)}
    assert sorted(tracker.objects[1].conditioning) == [0, 3]
    assert 3 in tracker.objects[1].prompts
    np.testing.assert_array_equal(again[3], correction)
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(tracker.labels()[3] == 1, correction > 0)
    # it sticks through further propagation in any direction
    for direction in ("backward", "both"):
        for t, _, lg in run(tracker, direction):
            if t == 3:
                np.testing.assert_array_equal(lg[0], correction)
    # re-propagation after a correction reuses the cached image features
    assert tracker.features.misses == misses


def test_correction_uses_memory_and_differs_from_a_first_click(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    run(tracker)
    correction = tracker.add_points(3, 1, cell_xy(1, 3), [1])
    fresh = Tracker(model, frames)
    first_click = fresh.add_points(3, 1, cell_xy(1, 3), [1])
    assert not np.allclose(correction, first_click, atol=1e-3)


def test_correction_on_a_single_frame_stack(model):
    frames = cells(num_frames=1)[0]
    tracker = Tracker(model, frames)
    first = tracker.add_points(0, 1, cell_xy(1, 0), [1])
    assert [t for t, _, _ in run(tracker, "both")] == [0, 0]
    correction = tracker.add_points(0, 1, cell_xy(1, 0) + [[70.0, 60.0]], [1, 0])
    assert np.isfinite(tracker.objects[1].latest_result(0).object_score)
    assert (correction > 0).any()
    assert not np.allclose(correction, first)


# -- bad input -----------------------------------------------------------------------

POINT = [[20.0, 20.0]]
BAD_INPUTS = {
    "frame past the end": (lambda tr: tr.add_points(6, 1, POINT, [1]), "frame 6"),
    "negative frame": (lambda tr: tr.add_points(-1, 1, POINT, [1]), "frame -1"),
    "fractional frame": (lambda tr: tr.add_points(1.5, 1, POINT, [1]), "frame 1.5"),
    "box frame": (lambda tr: tr.add_box(7, 1, [1, 2, 3, 4]), "frame 7"),
    "mask frame": (lambda tr: tr.add_mask(9, 1, np.ones((H, W), bool)), "frame 9"),
    "object id 0": (lambda tr: tr.add_points(0, 0, POINT, [1]), "object ids"),
    "negative object id": (lambda tr: tr.add_points(0, -2, POINT, [1]), "object ids"),
    "float object id": (lambda tr: tr.add_points(0, 1.0, POINT, [1]), "object ids"),
    "string object id": (lambda tr: tr.add_points(0, "1", POINT, [1]), "object ids"),
    "bool object id": (lambda tr: tr.add_points(0, True, POINT, [1]), "object ids"),
    "box object id 0": (lambda tr: tr.add_box(0, 0, [1, 2, 3, 4]), "object ids"),
    "mask object id 0": (lambda tr: tr.add_mask(0, 0, np.ones((H, W), bool)), "object ids"),
    "point right of the frame": (lambda tr: tr.add_points(0, 1, [[81, 5]], [1]), "outside"),
    "point left of the frame": (lambda tr: tr.add_points(0, 1, [[-1, 5]], [1]), "outside"),
    "point below the frame": (lambda tr: tr.add_points(0, 1, [[5, 65]], [1]), "outside"),
    "point NaN": (lambda tr: tr.add_points(0, 1, [[np.nan, 5]], [1]), "finite"),
    "label 2": (lambda tr: tr.add_points(0, 1, POINT, [2]), "labels"),
    "label -1": (lambda tr: tr.add_points(0, 1, POINT, [-1]), "labels"),
    "more labels": (lambda tr: tr.add_points(0, 1, POINT, [1, 0]), "1 points but 2 labels"),
    "more points": (lambda tr: tr.add_points(0, 1, POINT * 2, [1]), "2 points but 1 labels"),
    "mask too wide": (lambda tr: tr.add_mask(0, 1, np.ones((H, W + 1), bool)), "shape"),
    "mask transposed": (lambda tr: tr.add_mask(0, 1, np.ones((W, H), bool)), "shape"),
    "mask 3-D": (lambda tr: tr.add_mask(0, 1, np.ones((1, H, W), bool)), "shape"),
    "box of 6 values": (lambda tr: tr.add_box(0, 1, [1, 2, 3, 4, 5, 6]), "four numbers"),
    "box of 2 values": (lambda tr: tr.add_box(0, 1, [1, 2]), "four numbers"),
    "box outside": (lambda tr: tr.add_box(0, 1, [1, 2, 300, 4]), "outside"),
    "direction": (lambda tr: next(tr.propagate("sideways")), "direction"),
    "start frame": (lambda tr: next(tr.propagate("forward", 6)), "frame 6"),
    "remove unknown object": (lambda tr: tr.remove_object(5), "no object 5"),
    "frame_tensor frame": (lambda tr: tr.frame_tensor(6), "frame 6"),
}


@pytest.fixture(scope="module")
def prompted_tracker(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    return tracker


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_a_sam2_error_naming_the_problem(prompted_tracker, case):
    call, message = BAD_INPUTS[case]
    with pytest.raises(SAM2Error, match=message):
        call(prompted_tracker)
    # a rejected prompt leaves no object behind
    assert prompted_tracker.object_ids == [1]


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda tr: tr.add_box(0, 1, [1, 2, 3]), id="box of 3 values"),
        pytest.param(lambda tr: tr.add_box(0, 1, [1, 2, 3, 4, 5]), id="box of 5 values"),
        pytest.param(lambda tr: tr.add_points(0, 1, [1, 2, 3], [1]), id="point of 3 values"),
        pytest.param(
            lambda tr: tr.add_points(0, 1, [[1, 2, 3], [4, 5, 6]], [1, 1, 1]),
            id="points of (2, 3) values",
        ),
    ],
)
def test_odd_numbers_of_coordinates_are_a_sam2_error(prompted_tracker, call):
    with pytest.raises(SAM2Error):
        call(prompted_tracker)


def test_labels_out_of_wrong_shape_is_a_sam2_error(model, frames):
    with pytest.raises(SAM2Error, match="shape"):
        Tracker(model, frames, labels_out=np.zeros((6, H, W + 1), dtype=np.uint16))
    with pytest.raises(SAM2Error, match="dtype"):
        Tracker(model, frames, labels_out=np.zeros((6, H, W), dtype=np.float32))
    tracker = Tracker(model, frames, labels_out=np.zeros((6, H, W), dtype=np.uint8))
    with pytest.raises(SAM2Error, match="300"):
        tracker.add_points(0, 300, cell_xy(1, 0), [1])


def test_labels_out_receives_the_labels(model, frames):
    out = np.zeros((6, H, W), dtype=np.int32)
    tracker = Tracker(model, frames, labels_out=out)
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    run(tracker)
    assert tracker.labels() is out
    assert (out == 1).any(axis=(1, 2)).all()


def test_frame_source_of_another_input_size_is_an_error(model, frames):
    with pytest.raises(SAM2Error, match="input size"):
        Tracker(model, FrameSource(frames, IMAGE_SIZE * 2))
    source = FrameSource(frames, IMAGE_SIZE)
    tracker = Tracker(model, source)
    assert tracker.frames is source


def test_frame_tensor_is_the_frame_sources(model):
    stack = np.random.default_rng(0).integers(0, 5000, (3, 40, 50, 5)).astype(np.uint16)
    tracker = Tracker(model, stack, channel=(4, 1, 0), contrast_limits=(100, 4000))
    expected = FrameSource(stack, IMAGE_SIZE, channel=(4, 1, 0), contrast_limits=(100, 4000))
    for t in range(3):
        torch.testing.assert_close(
            tracker.frame_tensor(t), expected.frame_tensor(t), rtol=0, atol=0
        )
    assert tracker.frame_tensor(1).shape == (3, IMAGE_SIZE, IMAGE_SIZE)


def test_normalized_frame_is_the_frame_sources_and_checks_the_frame(model):
    stack = np.random.default_rng(1).integers(0, 5000, (3, 40, 50)).astype(np.uint16)
    tracker = Tracker(model, stack, contrast_limits=(100, 4000))
    expected = FrameSource(stack, IMAGE_SIZE, contrast_limits=(100, 4000)).normalized(2)
    assert tracker.normalized_frame(2).shape == (40, 50, 3)
    np.testing.assert_array_equal(tracker.normalized_frame(2), expected)
    with pytest.raises(SAM2Error, match="frame 3 does not exist"):
        tracker.normalized_frame(3)


class CountingFrames:
    """An array-like recording which frames are read; refuses whole conversion."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.frames_read: list[int] = []

    def __getitem__(self, key):
        self.frames_read.append(int(key))
        return self.data[key]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole stack was converted to an array")


def test_tracker_reads_frames_lazily(model):
    data = cells(num_frames=40, velocity=(0.5, 0.3))[0]
    frames = CountingFrames(data)
    tracker = Tracker(model, frames)
    sampled = set(frames.frames_read)
    assert len(sampled) <= 16
    t = next(t for t in range(40) if t not in sampled)
    frames.frames_read.clear()
    tracker.add_points(t, 1, [[30.0, 20.0]], [1])
    assert set(frames.frames_read) == {t}


# -- bounded memory ------------------------------------------------------------------


def test_memory_window_of_the_model(model):
    config = model.config
    assert max(config.num_maskmem, config.max_obj_ptrs_in_encoder) == MEMORY_WINDOW


@pytest.fixture(scope="module")
def long_frames():
    return cells(num_frames=40, height=48, width=64, velocity=(0.3, 0.5))[0]


def near(frame: int, prompts) -> bool:
    return any(abs(frame - c) < MEMORY_WINDOW for c in prompts)


@pytest.mark.parametrize(
    "direction, prompt_frame", [("forward", 0), ("backward", 39), ("both", 20)]
)
def test_results_held_are_bounded_with_no_result_budget(
    model, long_frames, direction, prompt_frame
):
    bounded = Tracker(model, long_frames, result_budget_bytes=0)
    unbounded = Tracker(model, long_frames)
    for tracker in (bounded, unbounded):
        tracker.add_points(prompt_frame, 1, [[30.0, 22.0]], [1])
    expected = run(unbounded, direction)
    steps = []
    backward = direction == "backward"
    for t, ids, logits in bounded.propagate(direction):
        backward = backward or (bool(steps) and t <= steps[-1][0])
        steps.append((t, ids, logits))
        obj = bounded.objects[1]
        if t in obj.conditioning:
            continue  # nothing is tracked, so nothing is dropped, on a prompted frame
        reach = range(t, t + MEMORY_WINDOW) if backward else range(t - MEMORY_WINDOW + 1, t + 1)
        extra = [f for f in obj.tracked if f not in reach and not near(f, obj.conditioning)]
        assert not extra, f"frame {t}: results of frames {sorted(extra)} are still held"
    obj = bounded.objects[1]
    near_prompts = [f for f in range(40) if near(f, obj.conditioning) and f not in obj.conditioning]
    assert len(obj.tracked) <= MEMORY_WINDOW + len(near_prompts)
    # dropping them changes nothing: later frames never attend to them
    assert [t for t, _, _ in steps] == [t for t, _, _ in expected]
    for (t, _, ours), (_, _, theirs) in zip(steps, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4, err_msg=f"frame {t}")
    # without a budget, every tracked frame is kept
    assert len(unbounded.objects[1].tracked) == 39
    assert len(bounded.objects[1].tracked) < 39


def test_feature_cache_budget_is_respected(model, frames):
    one_frame = feature_bytes(Tracker(model, frames).frame_features(0))
    tracker = Tracker(model, frames, feature_budget_bytes=int(2.5 * one_frame))
    tracker.add_points(0, 1, cell_xy(1, 0), [1])
    for _ in tracker.propagate():
        assert len(tracker.features) <= 2
        assert tracker.features.nbytes <= 2.5 * one_frame
    assert tracker.features.misses == 6
    # a budget below one frame still keeps the newest
    tiny = Tracker(model, frames, feature_budget_bytes=0)
    tiny.add_points(0, 1, cell_xy(1, 0), [1])
    for t, _, _ in tiny.propagate():
        assert len(tiny.features) == 1 and t in tiny.features
    # the default budget holds the whole (small) stack: propagating again computes nothing
    default = Tracker(model, frames)
    default.add_points(0, 1, cell_xy(1, 0), [1])
    run(default)
    misses = default.features.misses
    run(default, "both")
    assert default.features.misses == misses == 6


def test_candidate_masks_of_a_single_click_can_be_chosen(model, frames):
    tracker = Tracker(model, frames, fill_hole_area=0)
    shown = tracker.add_points(1, 1, cell_xy(1, 1), [1])
    candidates = tracker.candidate_logits(1, 1)
    assert candidates.shape == (3, *frames.shape[1:])
    assert any(np.array_equal(c, shown) for c in candidates)  # the best one is shown
    for index in (2, 0, 1):
        chosen = tracker.choose_candidate(1, 1, index)
        np.testing.assert_array_equal(chosen, candidates[index])
        np.testing.assert_array_equal(tracker.labels()[1] == 1, chosen > 0)
    pointers = tracker.objects[1].pending[1].candidate_ptrs
    assert torch.equal(tracker.objects[1].pending[1].obj_ptr, pointers[:, 1])
    assert not torch.equal(pointers[:, 0], pointers[:, 1])
    with pytest.raises(SAM2Error, match="candidate"):
        tracker.choose_candidate(1, 1, 3)
    # the choice is what propagation remembers for that frame
    next(tracker.propagate(start_frame=1))
    np.testing.assert_array_equal(tracker.labels()[1] == 1, candidates[1] > 0)


def test_more_clicks_give_a_single_mask_and_no_candidates(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(1, 1, cell_xy(1, 1) + [[5.0, 5.0]], [1, 0])
    assert tracker.candidate_logits(1, 1).shape[0] == 0


def test_bfloat16_precision_on_the_cpu_is_close_to_float32():
    """precision="bfloat16" runs autocast on the CPU too: the shipped demo model tracks a
    synthetic cell to nearly the same masks as in float32 (measured IoU 0.998)."""
    from napari_sam2.synthetic import timelapse

    model = build_model("demo")
    stack = timelapse(8, 128, 128, 3, seed=3)
    ys, xs = np.nonzero(stack.labels[0] == 1)
    volumes = []
    for precision in ("float32", "bfloat16"):
        tracker = Tracker(model, stack.frames, precision=precision)
        assert tracker.bfloat16 == (precision == "bfloat16")
        tracker.add_points(0, 1, [[xs.mean(), ys.mean()]], [1])
        for _ in tracker.propagate():
            pass
        volumes.append(tracker.labels() == 1)
    full, half = volumes
    assert full.sum() > 1000
    assert (full & half).sum() / (full | half).sum() > 0.95
    with pytest.raises(
        SAM2Error, match="precision must be one of auto, fast, float32, bfloat16, bfloat16-encoder"
    ):
        Tracker(model, stack.frames, precision="float16")


def test_compiled_model_tracks_like_the_eager_one():
    """Tracker(compile=True) torch.compiles the image encoder and the memory attention in
    place: same state_dict keys, same logits (a tiny configuration keeps compiling short)."""
    from napari_sam2.model import build_from_config
    from training_helpers import TINY, drifting_discs

    torch.manual_seed(0)
    eager = build_from_config(TINY).eval()
    compiled = build_from_config(TINY).eval()
    compiled.load_state_dict(eager.state_dict())
    data = drifting_discs(num_frames=5)
    runs = []
    for model, compile in ((eager, False), (compiled, True)):
        tracker = Tracker(model, data.frames, compile=compile)
        tracker.add_points(0, 1, [[12, 16]], [1])
        runs.append(np.stack([logits[0] for _, _, logits in tracker.propagate()]))
    assert compiled.compiled and not eager.compiled
    assert list(compiled.state_dict()) == list(eager.state_dict())
    assert np.abs(runs[0]).max() > 1e-3
    np.testing.assert_allclose(runs[1], runs[0], atol=1e-5 * np.abs(runs[0]).max())
