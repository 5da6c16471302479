"""Every cell of a stack: seeds from labels reproduce them, divisions give two daughters with
the right parent, and the CTC export scores at least the classical baseline."""

import numpy as np
import pytest
from scipy import ndimage

from ctc_helpers import score
from napari_sam2 import synthetic
from napari_sam2.baseline import classical_tracking
from napari_sam2.engine import Tracker
from napari_sam2.engine.cell_tracking import CellTracker, DivisionRule, lobes, track_cells
from napari_sam2.errors import SAM2Error
from napari_sam2.io.ctc import write_ctc, write_ctc_ground_truth
from napari_sam2.model import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return build_model("demo")


@pytest.fixture(scope="module")
def dividing():
    return synthetic.timelapse(num_frames=20, height=160, width=160, num_cells=5, seed=0)


@pytest.fixture(scope="module")
def tracked(model, dividing):
    seed_frame = 3
    tracker = Tracker(model, dividing.frames)
    seeds = dividing.labels[seed_frame].astype(np.int32)
    result, review = track_cells(tracker, seed_frame, seeds, divisions=True)
    return result, review


def test_seeds_from_labels_reproduce_them_on_the_seed_frame(dividing, tracked):
    result, _ = tracked
    seeds = dividing.labels[result.seed_frame]
    assert (result.labels[result.seed_frame] == seeds).all()
    # tracked both ways: cells are labelled before the seed frame too
    assert set(np.unique(result.labels[0])) >= set(np.unique(dividing.labels[0]))


def test_divisions_give_two_new_daughters_with_the_right_parent(dividing, tracked):
    result, _ = tracked
    mothers = sorted(set(result.lineage.values()))
    assert mothers == sorted(set(dividing.lineage.values()))
    for mother in mothers:
        daughters = [d for d, p in result.lineage.items() if p == mother]
        assert len(daughters) == 2 and min(daughters) > max(np.unique(dividing.labels[0]))
        end = result.spans[mother][1]
        assert all(result.spans[d][0] == end + 1 for d in daughters)
        assert not (result.labels[end + 1 :] == mother).any()
        # the daughters are where the true daughters are
        true_daughters = [d for d, p in dividing.lineage.items() if p == mother]
        t = end + 2
        for d in daughters:
            overlap = np.bincount(dividing.labels[t][result.labels[t] == d], minlength=20)
            assert overlap.argmax() in true_daughters


def test_ctc_export_scores_at_least_the_baseline(tmp_path, dividing, tracked):
    result, _ = tracked
    write_ctc_ground_truth(tmp_path / "gt", dividing.labels, dividing.lineage)
    write_ctc(tmp_path / "ours", result.labels, result.lineage)
    write_ctc(tmp_path / "baseline", *classical_tracking(dividing.frames))
    ours, baseline = (
        score(tmp_path / "ours", tmp_path / "gt"),
        score(tmp_path / "baseline", tmp_path / "gt"),
    )
    assert ours["Valid"] == 1
    for metric in ("TRA", "SEG", "DET"):
        assert ours[metric] >= baseline[metric], (metric, ours, baseline)
    assert ours["BC(1)"] >= 0.5


def test_without_divisions_the_mother_keeps_one_id(model):
    stack = synthetic.timelapse(num_frames=12, height=128, width=128, num_cells=3, seed=1)
    tracker = Tracker(model, stack.frames)
    result, _ = track_cells(tracker, 0, stack.labels[0].astype(np.int32), divisions=False)
    assert result.lineage == {} and set(np.unique(result.labels)) <= {0, 1, 2, 3}


def test_lobes_of_a_dumbbell_and_not_of_a_disc():
    yy, xx = np.mgrid[:60, :80]
    disc = (yy - 30) ** 2 + (xx - 40) ** 2 < 15**2
    dumbbell = ((yy - 30) ** 2 + (xx - 25) ** 2 < 12**2) | ((yy - 30) ** 2 + (xx - 50) ** 2 < 12**2)
    assert lobes(disc, DivisionRule()) is None
    found = lobes(dumbbell, DivisionRule())
    assert found is not None and sorted(int(c[1]) for c in found) == pytest.approx([25, 50], abs=3)


@pytest.mark.parametrize(
    ("frame", "seeds", "message"),
    [
        (0, np.zeros((7, 9), np.int32), "shape"),
        (0, np.zeros((64, 64), np.int32), "no object"),
        (9, np.ones((64, 64), np.int32), "out of range"),
        (0, np.ones((64, 64), np.float32), "integer"),
    ],
)
def test_bad_seeds_are_refused(model, frame, seeds, message):
    tracker = Tracker(model, np.zeros((4, 64, 64), np.uint8))
    with pytest.raises(SAM2Error, match=message):
        CellTracker(tracker).seed_from_labels(frame, seeds)
    assert tracker.object_ids == []


def test_a_masklet_shrunk_to_part_of_its_cell_is_prompted_again(model):
    stack = synthetic.timelapse(seed=101, num_frames=3)
    cells = CellTracker(Tracker(model, stack.frames), divisions=False)
    cells.seed_from_labels(0, stack.labels[0].astype(np.int32))
    cell, t = 7, 1
    truth = stack.labels[t] == cell
    cells.volume[t] = np.where(truth, 0, stack.labels[t])  # the other cells are tracked
    # the masklet kept only the middle third of its cell (as the demo model's sometimes do)
    depth = ndimage.distance_transform_edt(truth)
    core = depth > np.percentile(depth[truth], 65)
    assert cells._recover(t, [cell], np.where(core, 5.0, -5.0)[None].astype(np.float32))
    prompt = cells.prompt_masks[t][cell]
    assert (prompt & truth).sum() / (prompt | truth).sum() > 0.6
    assert not (prompt & (cells.volume[t] > 0)).any()
    # a masklet of its cell's size is left alone
    whole = np.where(truth, 5.0, -5.0)[None].astype(np.float32)
    assert not cells._recover(2, [cell], whole)
