"""The shipped demo model on stacks it never saw: the README's command-line example, a click
on each cell segments it and its masklet follows it (daughters included) better than the
classical baseline, which random weights cannot do, and nuclei are followed through z."""

from contextlib import chdir

import numpy as np
import pytest
import tifffile
import torch

from napari_sam2.baseline import classical_tracking
from napari_sam2.cli import main as cli
from napari_sam2.engine import Tracker
from napari_sam2.model import build_model
from napari_sam2.model.build import build_from_config
from napari_sam2.model.demo import DEMO_CONFIG, demo_weights_path
from napari_sam2.synthetic import timelapse
from napari_sam2.training import read_config
from napari_sam2.training.evaluate import (
    division_followed,
    family,
    interior_point,
    jaccard,
    track_masklet,
)

# The goals of docs/demo_model.md, checked on seeds the model was neither trained (0.., 100000..)
# nor validated (10000..) nor evaluated (20000.., 30000..) on; measured values are quoted in
# each test.
README_IOU = 0.8
CLICK_IOU = 0.85
MASKLET_J = 0.8
SLICE_J = 0.7


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stack():
    return timelapse(30, 256, 256, 8, seed=31_337, num_divisions=3)


@pytest.fixture(scope="module")
def tracked(stack):
    """One click on each cell of frame 0, forward propagation: (clicks, frame-0 masks,
    masklets, truths with daughters)."""
    labels = stack.labels
    ids, areas = np.unique(labels[0], return_counts=True)
    ids = [int(i) for i, a in zip(ids, areas, strict=True) if i and a >= 50]
    truth = {i: np.isin(labels, sorted(family(stack.lineage, i))) for i in ids}
    clicks = {i: interior_point(truth[i][0]) for i in ids}
    tracker = Tracker(build_model("demo"), stack.frames)
    first = {i: tracker.add_points(0, i, [xy], [1]) > 0 for i, xy in clicks.items()}
    masklets = {i: np.zeros(labels.shape, bool) for i in ids}
    for t, obj_ids, logits in tracker.propagate():
        for i, logit in zip(obj_ids, logits, strict=True):
            masklets[i][t] = logit > 0
    return clicks, first, masklets, truth


def _mean_j(pred, truth):
    return float(np.mean([jaccard(p, g) for p, g in zip(pred, truth, strict=True)]))


def test_build_model_demo_loads_the_shipped_weights():
    model = build_model("demo")
    assert model.config == DEMO_CONFIG and not model.training
    stored = torch.load(demo_weights_path(), weights_only=True)
    assert read_config(demo_weights_path()) == DEMO_CONFIG
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, stored["model"][key].float(), rtol=0, atol=0)
    assert demo_weights_path().stat().st_size <= 20e6
    assert build_model("demo", checkpoint="auto").state_dict().keys() == model.state_dict().keys()


def test_the_readme_example_segments_every_frame(tmp_path):
    """`napari-sam2 sample demo` then `segment ... --model demo`, as the README writes it:
    mean IoU of the sample's cells against its ground truth on every frame."""
    with chdir(tmp_path):
        assert cli(["sample", "demo"]) == 0
        argv = ["segment", "demo/timelapse.tif", "--prompts", "demo/prompts.json"]
        assert cli([*argv, "--out", "labels.tif", "--model", "demo", "--quiet"]) == 0
        labels, truth = tifffile.imread("labels.tif"), tifffile.imread("demo/ground_truth.tif")
    per_frame = [
        np.mean([jaccard(p == i, g == i) for i in (1, 2)])
        for p, g in zip(labels, truth, strict=True)
    ]
    assert min(per_frame) >= README_IOU, np.round(per_frame, 3)


def test_a_click_segments_each_cell_and_its_masklet_follows_it(tracked):
    clicks, first, masklets, truth = tracked
    assert len(clicks) == 8
    click = [jaccard(first[i], truth[i][0]) for i in clicks]
    masklet = [_mean_j(masklets[i], truth[i]) for i in clicks]
    assert np.mean(click) >= CLICK_IOU, np.round(click, 3)
    assert np.mean(masklet) >= MASKLET_J, np.round(masklet, 3)


def test_masklets_beat_the_classical_baseline(stack, tracked):
    clicks, _, masklets, truth = tracked
    labels, lineage = classical_tracking(stack.frames)
    ours = [_mean_j(masklets[i], truth[i]) for i in clicks]
    baseline = [_mean_j(track_masklet(labels, lineage, clicks[i]), truth[i]) for i in clicks]
    assert np.mean(ours) > np.mean(baseline) + 0.05, (np.mean(ours), np.mean(baseline))


def test_a_dividing_cell_s_masklet_takes_both_daughters(stack, tracked):
    _, _, masklets, _ = tracked
    mothers = sorted(set(stack.lineage.values()))
    assert len(mothers) == 3
    followed = [
        division_followed(
            masklets[m], stack.labels, [d for d, p in stack.lineage.items() if p == m]
        )
        for m in mothers
    ]
    assert sum(followed) >= 2, followed


def _click_and_track(model, stack, obj_id):
    tracker = Tracker(model, stack.frames)
    truth = stack.labels == obj_id
    logits = tracker.add_points(0, obj_id, [interior_point(truth[0])], [1])
    return jaccard(logits > 0, truth[0])


def test_random_weights_do_not(stack):
    torch.manual_seed(0)
    model = build_from_config(DEMO_CONFIG).eval()
    assert _click_and_track(model, stack, 2) < 0.5


def test_a_click_on_a_nucleus_segments_its_slice_in_a_zstack():
    """On a held-out nuclei z-stack, a click on each nucleus's largest slice segments it
    (measured IoU 0.89-0.94) and follows it through z, with the size cue as along Z by
    default: mean slice J 0.865 (goal 0.7), volume IoU 0.80-0.86 (goal 0.75). The model
    alone draws the end slices too large: volume IoU 0.62-0.74, mean slice J 0.821
    (docs/demo_model.md; the first demo model measured 0.46-0.60)."""
    from napari_sam2.synthetic import zstack
    from napari_sam2.training import LabelledStack, evaluate_zstack

    s = zstack(20, 192, 192, 6, seed=31_337)
    scores = evaluate_zstack(build_model("demo"), LabelledStack(s.frames, s.labels))
    assert len(scores.object_ids) == 6
    assert min(scores.click_iou) >= 0.85, scores.click_iou
    assert np.mean([m.j for m in scores.masklet]) >= SLICE_J, scores.masklet
    assert min(scores.volume_iou) >= 0.7, scores.volume_iou


def test_in_a_zstack_lost_nuclei_do_not_return_when_told():
    """Nucleus 2 of this held-out z-stack spans slices 1-8; above slice 20 another nucleus
    sits at the same place (the first demo model took it for nucleus 2 coming back; this one
    does not). With reappear=False the masklet ends where the mask first comes out empty,
    until a prompted slice."""
    from napari_sam2.synthetic import zstack

    s = zstack(32, 256, 256, 12, seed=20_000)
    truth = s.labels == 2
    z = int(np.argmax(truth.sum(axis=(1, 2))))
    click = [interior_point(truth[z])]
    areas = {}
    for reappear in (True, False):
        tracker = Tracker(build_model("demo"), s.frames, reappear=reappear)
        tracker.add_points(z, 2, click, [1])
        for _ in tracker.propagate("both"):
            pass
        areas[reappear] = (tracker.labels() == 2).sum(axis=(1, 2))
    assert areas[True][z] > 300
    gone = int(np.argmax(areas[False][z:] == 0)) + z
    assert z < gone < 20 and not areas[False][gone:].any()
    np.testing.assert_array_equal(areas[False][:gone], areas[True][:gone])

    # a prompt on a later slice (the same place, on the nucleus above) is the user saying it
    # is there: it is followed from there
    tracker.add_points(25, 2, click, [1])
    for _ in tracker.propagate("forward"):
        pass
    after = (tracker.labels() == 2).sum(axis=(1, 2))
    # (the new prompt is in every frame's memory, so where it is lost may move a little)
    lost = int(np.argmax(after[z:] == 0)) + z
    assert z < lost < 20 and not after[lost:25].any() and after[25:27].all()
