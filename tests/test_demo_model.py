"""The shipped demo model: `build_model("demo")` loads its weights, and on a held-out
synthetic time-lapse a click on a cell segments it and the masklet follows it, which random
weights cannot do."""

import numpy as np
import pytest
import torch

from napari_sam2.engine import Tracker
from napari_sam2.model import build_model
from napari_sam2.model.build import build_from_config
from napari_sam2.model.demo import DEMO_CONFIG, demo_weights_path
from napari_sam2.synthetic import timelapse
from napari_sam2.training import read_config
from napari_sam2.training.evaluate import interior_point, jaccard

# On this stack the five cells that stay whole in view measured click IoU 0.84-0.91 and
# masklet mean IoU 0.82-0.90 over the 30 frames (docs/demo_model.md); the bounds keep a margin.
CLICK_IOU = 0.8
MASKLET_IOU = 0.7


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def stack():
    # a seed far from those the demo model was trained (0..) and validated (10000..) on
    return timelapse(30, 256, 256, 8, seed=31_337)


def test_build_model_demo_loads_the_shipped_weights():
    model = build_model("demo")
    assert model.config == DEMO_CONFIG and not model.training
    stored = torch.load(demo_weights_path(), weights_only=True)
    assert read_config(demo_weights_path()) == DEMO_CONFIG
    for key, value in model.state_dict().items():
        assert value.dtype == torch.float32
        torch.testing.assert_close(value, stored["model"][key].float(), rtol=0, atol=0)
    assert demo_weights_path().stat().st_size < 10e6
    assert build_model("demo", checkpoint="auto").state_dict().keys() == model.state_dict().keys()


def _cells(stack, count=4):
    ids, areas = np.unique(stack.labels[0], return_counts=True)
    ids = [int(i) for i, a in zip(ids, areas, strict=True) if i and a >= 200]
    # cells that neither divide nor leave within the stack, so the truth is one label
    steady = [i for i in ids if all((stack.labels[t] == i).any() for t in range(len(stack.labels)))]
    return steady[:count]


def _click_and_track(model, stack, obj_id):
    tracker = Tracker(model, stack.frames)
    truth = stack.labels == obj_id
    logits = tracker.add_points(0, obj_id, [interior_point(truth[0])], [1])
    click = jaccard(logits > 0, truth[0])
    ious = [jaccard(masks[0] > 0, truth[t]) for t, _, masks in tracker.propagate()]
    return click, float(np.mean(ious))


def test_a_click_on_a_cell_segments_it_and_the_masklet_follows_it(stack):
    model = build_model("demo")
    cells = _cells(stack, 5)
    assert len(cells) == 5
    for obj_id in cells:
        click, masklet = _click_and_track(model, stack, obj_id)
        assert click >= CLICK_IOU, (obj_id, click)
        assert masklet >= MASKLET_IOU, (obj_id, masklet)


def test_random_weights_do_not(stack):
    torch.manual_seed(0)
    model = build_from_config(DEMO_CONFIG).eval()
    obj_id = _cells(stack, 1)[0]
    click, _ = _click_and_track(model, stack, obj_id)
    assert click < 0.5


def test_a_click_on_a_nucleus_segments_its_slice_in_a_zstack():
    """On a held-out nuclei z-stack, a click on each nucleus's largest slice segments it
    (measured IoU 0.81-0.93). Through z the masks do not stop where a nucleus ends (volume
    IoU 0.46-0.60, docs/demo_model.md): the bound guards that level, it does not call it good."""
    from napari_sam2.synthetic import zstack
    from napari_sam2.training import LabelledStack, evaluate_zstack

    s = zstack(20, 192, 192, 6, seed=31_337)
    scores = evaluate_zstack(build_model("demo"), LabelledStack(s.frames, s.labels))
    assert len(scores.object_ids) == 6
    assert min(scores.click_iou) >= 0.75, scores.click_iou
    assert min(scores.volume_iou) >= 0.35, scores.volume_iou


def test_in_a_zstack_lost_nuclei_do_not_return_when_told():
    """Nucleus 2 of this held-out z-stack spans slices 1-8; above slice 20 another nucleus
    sits at the same place and SAM 2 takes it for nucleus 2 coming back. With reappear=False
    the masklet ends where the mask first comes out empty, until a prompted slice."""
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
    assert areas[True][z] > 300 and areas[True][20:].min() > 100  # found "again"
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
    assert z < lost < 20 and not after[lost:25].any() and after[25:].all()
