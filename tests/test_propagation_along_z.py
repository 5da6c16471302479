"""With `reappear` off (along Z), each object is followed away from its own prompts only: a
nucleus prompted on an early slice keeps what the forward pass found after its prompt when
the backward pass starts from another nucleus's later prompt."""

import numpy as np
import pytest

from napari_sam2.engine import Tracker
from napari_sam2.model import build_model
from napari_sam2.synthetic import zstack
from napari_sam2.training.evaluate import interior_point

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def nuclei():
    """A z-stack and a click on each nucleus where it is largest, {id: (slice, (x, y))},
    with at least two different slices prompted."""
    stack = zstack(20, 128, 128, 4, seed=31_340, nucleus_radius=14.0, z_radius=3.5)
    clicks = {}
    for i in (int(i) for i in np.unique(stack.labels) if i):
        z = int(np.argmax((stack.labels == i).sum(axis=(1, 2))))
        clicks[i] = (z, interior_point(stack.labels[z] == i))
    assert len({z for z, _ in clicks.values()}) > 1
    return stack, clicks


def masks(model, stack, clicks, direction="both") -> dict[int, np.ndarray]:
    # objects kept apart interact on purpose (tests/test_non_overlap.py); here each object's
    # own passes are the point
    tracker = Tracker(model, stack.frames, reappear=False, non_overlap=False)
    for i, (z, xy) in clicks.items():
        tracker.add_points(z, i, [xy], [1])
    out = {i: np.zeros(stack.labels.shape, bool) for i in clicks}
    for t, ids, logits in tracker.propagate(direction):
        for i, logit in zip(ids, logits, strict=True):
            out[i][t] = logit > 0
    return out


def test_each_object_is_tracked_as_if_it_were_alone(nuclei):
    model = build_model("demo")
    stack, clicks = nuclei
    together = masks(model, stack, clicks)
    for i, click in clicks.items():
        alone = masks(model, stack, {i: click})[i]
        np.testing.assert_array_equal(together[i], alone, err_msg=f"nucleus {i}")
        assert together[i][click[0]].any()


def test_forward_leaves_the_slices_before_an_objects_prompt_alone(nuclei):
    stack, clicks = nuclei
    result = masks(build_model("demo"), stack, clicks, "forward")
    for i, (z, _) in clicks.items():
        assert not result[i][:z].any() and result[i][z].any()
