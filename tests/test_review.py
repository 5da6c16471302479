"""The review queue lists the frames where something went wrong: a cell that vanishes for
three frames, a merge with a neighbour, a jump in area, an unsure mask, a division not
confirmed."""

import numpy as np
import pytest
from scipy import ndimage

from napari_sam2 import synthetic
from napari_sam2.engine import Tracker
from napari_sam2.engine.cell_tracking import track_cells
from napari_sam2.engine.review import ReviewRecorder
from napari_sam2.model import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _disc(cy, cx, r, shape=(48, 48), inside=8.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, inside, -8.0).astype(np.float32)


def test_injected_failures_are_queued_where_they_happen():
    recorder = ReviewRecorder()
    for t in range(12):
        a = _disc(12, 12, 6)
        b = _disc(36, 36, 6) if not 4 <= t <= 6 else np.full((48, 48), -1024.0, np.float32)
        c = _disc(12, 36, 6 if t != 9 else 10)  # swells on frame 9
        if t == 8:
            a = _disc(12, 30, 7)  # a slides onto c
        recorder.record(t, [1, 2, 3], np.stack([a, b, c]))
    recorder.unconfirmed_division(3, 10)
    queue = recorder.queue()
    found = {(item.obj_id, item.frame, item.reason) for item in queue}
    assert (2, 4, "lost") in found and (2, 7, "reappeared") in found
    assert not any(
        item.obj_id == 2 and item.reason == "lost" and item.frame in (5, 6) for item in queue
    )
    assert (1, 8, "merge") in found and (3, 8, "merge") in found
    assert (3, 9, "area jump") in found and (3, 10, "unconfirmed division") in found
    # nothing is queued for the frames where all is well
    assert not any(item.frame in (0, 1, 2, 3) for item in queue)
    # ranked: lost objects first
    assert queue[0].reason == "lost"
    scores = [item.score for item in queue]
    assert scores == sorted(scores, reverse=True)


def test_unsure_masks_are_low_score():
    recorder = ReviewRecorder()
    recorder.record(0, [1], _disc(20, 20, 8, inside=0.3)[None])
    recorder.record(1, [1], _disc(20, 20, 8)[None])
    reasons = {(item.frame, item.reason) for item in recorder.queue()}
    assert reasons == {(0, "low score")}


def test_a_cell_hidden_for_three_frames_is_queued_when_tracking():
    stack = synthetic.timelapse(num_frames=12, height=128, width=128, num_cells=3, seed=2)
    frames = stack.frames.copy()
    hidden = 2
    background = np.median(frames[:, stack.labels[0] == 0])
    for t in (5, 6, 7):
        frames[t][ndimage.binary_dilation(stack.labels[t] == hidden, iterations=4)] = background
    tracker = Tracker(build_model("demo"), frames)
    result, review = track_cells(tracker, 0, stack.labels[0].astype(np.int32), divisions=False)
    assert not (result.labels[6] == hidden).any()
    lost = [(i.obj_id, i.frame) for i in review.queue() if i.reason == "lost"]
    assert (hidden, 5) in lost
