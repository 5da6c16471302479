"""The evaluation measures (J, boundary F, masklets) and the z-stack protocol, checked with
masks whose scores are known and with a stand-in tracker that returns chosen masks."""

import numpy as np
import pytest

from napari_sam2.synthetic import zstack
from napari_sam2.training import LabelledStack, boundary_f, evaluate_zstack, jaccard, summarize
from napari_sam2.training import evaluate as evaluate_module
from napari_sam2.training.evaluate import division_followed, track_masklet


def square(size: int, y0: int, x0: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[y0 : y0 + side, x0 : x0 + side] = True
    return mask


def test_jaccard_and_boundary_f():
    a, b = square(64, 10, 10, 20), square(64, 10, 20, 20)
    assert jaccard(a, a) == 1.0 and boundary_f(a, a) == 1.0
    assert jaccard(a, b) == pytest.approx(200 / 600)
    empty = np.zeros_like(a)
    assert jaccard(empty, empty) == 1.0 and boundary_f(empty, empty) == 1.0
    assert jaccard(a, empty) == 0.0 and boundary_f(a, empty) == 0.0
    # a one-pixel shift is within the boundary tolerance; a 10-pixel shift is not
    assert boundary_f(a, square(64, 11, 10, 20)) == 1.0
    assert boundary_f(a, b) < 0.6


class StandIn:
    """A Tracker that answers with chosen masks: `masks[obj_id]` is (Z, H, W)."""

    masks: dict[int, np.ndarray] = {}
    clicks: dict[int, int] = {}
    size_cues: list[bool] = []

    def __init__(self, model, frames, reappear, size_cue) -> None:
        self.num_frames = len(frames)
        StandIn.size_cues.append(size_cue)

    def add_points(self, z, obj_id, points, labels):
        StandIn.clicks[obj_id] = z
        return np.where(self.masks[obj_id][z], 5.0, -5.0)

    def propagate(self, direction):
        assert direction == "both"
        for z in range(self.num_frames):
            ids = sorted(self.masks)
            yield z, ids, np.stack([np.where(self.masks[i][z], 5.0, -5.0) for i in ids])


@pytest.fixture
def nuclei():
    s = zstack(16, 96, 96, 3, seed=4)
    return LabelledStack(s.frames, s.labels)


def test_zstack_protocol_clicks_the_largest_slice_and_scores_volumes(nuclei, monkeypatch):
    monkeypatch.setattr(evaluate_module, "Tracker", StandIn)
    ids = [int(i) for i in np.unique(nuclei.labels) if i]
    StandIn.masks = {i: nuclei.labels == i for i in ids}
    perfect = evaluate_zstack(None, nuclei, size_cue=False)
    assert perfect.object_ids == ids
    for i in ids:
        areas = (nuclei.labels == i).sum(axis=(1, 2))
        assert StandIn.clicks[i] == int(np.argmax(areas))
    assert perfect.click_iou == [1.0] * len(ids)
    assert perfect.volume_iou == [1.0] * len(ids)

    # the right mask on the nucleus's slices, and its largest cross-section on every other
    # slice too: the volume IoU punishes the spill more than the per-slice mean J
    spill = {}
    for i in ids:
        truth = nuclei.labels == i
        z = int(np.argmax(truth.sum(axis=(1, 2))))
        spill[i] = np.where(truth.any(axis=(1, 2))[:, None, None], truth, truth[z])
    StandIn.masks = spill
    spilled = summarize([evaluate_zstack(None, nuclei, size_cue=False)])
    assert spilled["click_iou"] == 1.0
    assert spilled["volume IoU"] < spilled["J"] < 1.0


def test_zstack_protocol_uses_the_size_cue_as_the_command_line_does(nuclei, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setattr(evaluate_module, "Tracker", StandIn)
    StandIn.masks = {i: nuclei.labels == i for i in np.unique(nuclei.labels) if i}
    StandIn.size_cues = []
    for name in ("demo", "sam2.1_hiera_tiny", "sam2_hiera_large"):
        evaluate_zstack(SimpleNamespace(config=SimpleNamespace(name=name)), nuclei)
    evaluate_zstack(SimpleNamespace(config=SimpleNamespace(name="demo")), nuclei, size_cue=False)
    assert StandIn.size_cues == [True, False, False, False]


def _division_movie():
    """A cell (id 1) on frames 0-1 that divides into 2 and 3 on frames 2-5."""
    labels = np.zeros((6, 20, 30), np.uint16)
    labels[:2, 5:15, 8:22] = 1
    labels[2:, 5:15, 4:12] = 2
    labels[2:, 5:15, 18:26] = 3
    return labels, {2: 1, 3: 1}


def test_a_division_is_followed_when_the_masklet_covers_both_daughters():
    labels, _ = _division_movie()
    both = labels > 0
    assert division_followed(both, labels, [2, 3])
    one = (labels == 1) | (labels == 2)
    assert not division_followed(one, labels, [2, 3])
    half = both.copy()
    half[2:, :, 4:9] = False  # 5 of 8 columns of daughter 2 lost: over half of it
    assert not division_followed(half, labels, [2, 3])
    slip = both.copy()
    slip[3] = labels[3] == 2  # one frame in four misses daughter 3: more than one in ten
    assert not division_followed(slip, labels, [2, 3])


def test_track_masklet_takes_the_clicked_track_and_its_daughters():
    labels, lineage = _division_movie()
    masklet = track_masklet(labels, lineage, (15.0, 10.0))
    np.testing.assert_array_equal(masklet, labels > 0)
    # a click just off every track takes the nearest one
    np.testing.assert_array_equal(track_masklet(labels, lineage, (2.0, 1.0)), labels > 0)
    assert not track_masklet(np.zeros_like(labels), {}, (3.0, 3.0)).any()
