"""Bad input and faults around the tracker's label volume: object ids the label array cannot
hold, and a given label array that already holds labels of its own."""

import numpy as np
import pytest

from napari_sam2.engine import Tracker
from napari_sam2.errors import SAM2Error
from napari_sam2.synthetic import moving_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model(present_tiny_model):
    return present_tiny_model


H, W = 48, 64


@pytest.fixture(scope="module")
def frames():
    return moving_cells(num_frames=3, height=H, width=W)[0]


@pytest.mark.parametrize(
    "dtype, obj_id, maximum",
    [(np.uint8, 256, 255), (np.uint16, 70000, 65535), (np.int16, 40000, 32767)],
)
def test_an_id_beyond_the_given_label_dtype_is_refused_naming_its_maximum(
    model, frames, dtype, obj_id, maximum
):
    tracker = Tracker(model, frames, labels_out=np.zeros((3, H, W), dtype=dtype))
    with pytest.raises(SAM2Error, match=f"{np.dtype(dtype).name}: ids go up to {maximum}"):
        tracker.add_points(0, obj_id, [[30.0, 20.0]], [1])
    assert tracker.object_ids == [] and not tracker.labels().any()
    tracker.add_points(0, maximum, [[30.0, 20.0]], [1])  # the largest id that fits
    assert (tracker.labels()[0] == maximum).any()


def test_ids_of_a_new_label_volume_widen_up_to_uint32(model, frames):
    tracker = Tracker(model, frames)
    tracker.add_points(0, 70000, [[30.0, 20.0]], [1])
    assert tracker.labels().dtype == np.uint32 and (tracker.labels()[0] == 70000).any()
    with pytest.raises(SAM2Error, match="uint32: ids go up to 4294967295"):
        tracker.add_box(0, 2**32, [10.0, 10.0, 30.0, 30.0])
    assert tracker.object_ids == [70000]


def test_labels_of_a_given_array_that_the_tracker_does_not_own_are_kept(model, frames):
    out = np.zeros((3, H, W), dtype=np.uint16)
    out[:, :, :20] = 9  # earlier work of the user's, under the object's masks
    theirs = out == 9
    tracker = Tracker(model, frames, labels_out=out)
    clicked = tracker.add_points(0, 1, [[30.0, 20.0]], [1])
    assert (clicked[theirs[0]] > 0).any(), "the test needs the mask to cover label 9"
    steps = list(tracker.propagate())
    assert len(steps) == 3
    np.testing.assert_array_equal(out == 9, theirs)
    for t, _, logits in steps:
        expected = np.where(theirs[t], 9, np.where(logits[0] > 0, 1, 0))
        np.testing.assert_array_equal(out[t], expected)
    tracker.remove_object(1)
    np.testing.assert_array_equal(out, np.where(theirs, 9, 0))
    tracker.add_points(1, 2, [[30.0, 20.0]], [1])
    tracker.reset()
    np.testing.assert_array_equal(out, np.where(theirs, 9, 0))
