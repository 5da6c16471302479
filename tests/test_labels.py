"""LabelVolume: the integer label volume the tracker fills frame by frame; where objects
overlap the highest logit wins, non-positive logits are background."""

import numpy as np
import pytest

from napari_sam2.engine import LabelVolume
from napari_sam2.errors import SAM2Error


def two_object_logits() -> np.ndarray:
    """(2, 2, 4) logits of objects 1 and 2 with every case of overlap."""
    one = np.array([[3.0, 1.0, -1.0, 0.5], [-2.0, 0.0, 2.0, -0.5]])
    two = np.array([[1.0, 2.0, 4.0, -1.0], [-1.0, -3.0, 2.0, -0.1]])
    return np.stack([one, two]).astype(np.float32)


def test_new_volume_is_empty_uint16():
    volume = LabelVolume(3, 2, 4)
    assert volume.array.shape == (3, 2, 4)
    assert volume.array.dtype == np.uint16
    assert not volume.array.any()


def test_write_frame_highest_positive_logit_wins():
    volume = LabelVolume(3, 2, 4)
    volume.write_frame(1, [1, 2], two_object_logits())
    # ties go to the first object listed
    expected = np.array([[1, 2, 2, 1], [0, 0, 1, 0]])
    np.testing.assert_array_equal(volume.array[1], expected)
    assert not volume.array[0].any() and not volume.array[2].any()


def test_write_frame_uses_the_given_ids_in_order():
    volume = LabelVolume(1, 2, 4)
    volume.write_frame(0, [7, 3], two_object_logits())
    np.testing.assert_array_equal(volume.array[0], [[7, 3, 3, 7], [0, 0, 7, 0]])


def test_write_frame_negative_logits_are_background():
    volume = LabelVolume(1, 2, 4)
    volume.array[0] = 9  # whatever was there is replaced
    logits = -np.abs(two_object_logits()) - 0.01
    logits[1, 0, 0] = 0.0  # exactly 0 is background too
    volume.write_frame(0, [1, 2], logits)
    assert not volume.array[0].any()


def test_write_frame_replaces_objects_not_listed():
    volume = LabelVolume(2, 2, 4)
    volume.array[0] = 5
    volume.write_frame(0, [1], two_object_logits()[:1])
    np.testing.assert_array_equal(volume.array[0], [[1, 1, 0, 1], [0, 0, 1, 0]])
    volume.array[1] = 5
    volume.write_frame(1, [], np.zeros((0, 2, 4), dtype=np.float32))
    assert not volume.array[1].any()


def test_write_object_without_others_takes_its_positive_pixels():
    volume = LabelVolume(2, 2, 4)
    volume.array[0] = [[1, 1, 2, 0], [2, 2, 1, 1]]
    volume.array[1] = 1  # other frames are untouched
    logits = np.array([[-1.0, 2.0, 3.0, 0.0], [1.0, -1.0, -1.0, 0.2]], dtype=np.float32)
    volume.write_object(0, 1, logits)
    # its old pixels that are no longer positive become background, it takes over object 2
    np.testing.assert_array_equal(volume.array[0], [[0, 1, 1, 0], [1, 2, 0, 1]])
    assert (volume.array[1] == 1).all()


def test_write_object_with_others_higher_logit_wins():
    logits = two_object_logits()
    volume = LabelVolume(1, 2, 4)
    volume.write_frame(0, [1, 2], logits)
    # object 1 changes: it grows everywhere, but object 2 keeps the pixels where it is higher
    new_one = np.array([[5.0, 1.5, 3.0, 2.0], [1.0, 1.0, 1.0, -4.0]], dtype=np.float32)
    volume.write_object(0, 1, new_one, others={2: logits[1]})
    expected = np.where(np.maximum(new_one, logits[1]) > 0, np.where(new_one >= logits[1], 1, 2), 0)
    np.testing.assert_array_equal(volume.array[0], expected)
    np.testing.assert_array_equal(volume.array[0], [[1, 2, 2, 1], [1, 1, 2, 0]])


def test_write_object_gives_freed_pixels_to_the_best_other_object():
    one = np.array([[4.0, 4.0, 4.0]], dtype=np.float32)
    two = np.array([[1.0, 2.0, -1.0]], dtype=np.float32)
    three = np.array([[3.0, -1.0, -2.0]], dtype=np.float32)
    volume = LabelVolume(1, 1, 3)
    volume.write_frame(0, [1, 2, 3], np.stack([one, two, three]))
    np.testing.assert_array_equal(volume.array[0], [[1, 1, 1]])
    # object 1 shrinks to nothing: its pixels go to whichever other object is higher there
    volume.write_object(0, 1, -one, others={2: two[0], 3: three[0]})
    np.testing.assert_array_equal(volume.array[0], [[3, 2, 0]])


def test_write_object_with_others_matches_write_frame():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 6, 7)).astype(np.float32)
    ids = [4, 1, 9]
    whole = LabelVolume(1, 6, 7)
    whole.write_frame(0, ids, logits)
    incremental = LabelVolume(1, 6, 7)
    incremental.write_frame(0, ids, rng.normal(size=(3, 6, 7)).astype(np.float32))
    for k, obj_id in enumerate(ids):
        others = {i: logits[j] for j, i in enumerate(ids) if i != obj_id}
        incremental.write_object(0, obj_id, logits[k], others)
    np.testing.assert_array_equal(incremental.array, whole.array)


def test_remove_object_on_every_frame():
    volume = LabelVolume(3, 2, 4)
    volume.array[0] = [[1, 2, 2, 1], [0, 3, 1, 0]]
    volume.array[2] = [[2, 2, 2, 2], [1, 1, 1, 1]]
    before = volume.array.copy()
    volume.remove_object(1)
    assert not (volume.array == 1).any()
    np.testing.assert_array_equal(volume.array, np.where(before == 1, 0, before))
    volume.remove_object(42)  # absent: nothing changes
    np.testing.assert_array_equal(volume.array, np.where(before == 1, 0, before))


def test_clear():
    volume = LabelVolume(2, 2, 2)
    volume.array[:] = 3
    volume.clear()
    assert not volume.array.any()


@pytest.mark.parametrize("writer", ["frame", "object"])
def test_ids_beyond_uint16_widen_to_uint32(writer):
    volume = LabelVolume(2, 2, 4)
    volume.array[1] = 7
    logits = two_object_logits()
    if writer == "frame":
        volume.write_frame(0, [70000, 2], logits)
        expected = [[70000, 2, 2, 70000], [0, 0, 70000, 0]]
    else:
        volume.write_object(0, 70000, logits[0])
        expected = [[70000, 70000, 0, 70000], [0, 0, 70000, 0]]
    assert volume.array.dtype == np.uint32
    np.testing.assert_array_equal(volume.array[0], expected)
    assert (volume.array[1] == 7).all()  # earlier labels survive the widening


def test_uint16_ids_stay_uint16():
    volume = LabelVolume(1, 2, 4)
    volume.write_frame(0, [65535, 2], two_object_logits())
    assert volume.array.dtype == np.uint16
    assert volume.array[0, 0, 0] == 65535


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.int64, np.uint32])
def test_writes_land_in_the_given_array(dtype):
    out = np.zeros((2, 2, 4), dtype=dtype)
    volume = LabelVolume(2, 2, 4, out=out)
    volume.write_frame(1, [1, 2], two_object_logits())
    volume.write_object(0, 3, two_object_logits()[0])
    assert volume.array is out
    np.testing.assert_array_equal(out[1], [[1, 2, 2, 1], [0, 0, 1, 0]])
    np.testing.assert_array_equal(out[0], [[3, 3, 0, 3], [0, 0, 3, 0]])
    volume.remove_object(2)
    assert not (out == 2).any()
    volume.clear()
    assert not out.any()


def test_given_memmap_is_written_in_place(tmp_path):
    out = np.lib.format.open_memmap(tmp_path / "labels.npy", "w+", np.uint16, (2, 2, 4))
    volume = LabelVolume(2, 2, 4, out=out)
    volume.write_frame(0, [5, 6], two_object_logits())
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy")[0], [[5, 6, 6, 5], [0, 0, 5, 0]])


@pytest.mark.parametrize(
    "out, match",
    [
        (np.zeros((2, 2, 5), dtype=np.uint16), "shape"),
        (np.zeros((2, 2), dtype=np.uint16), "shape"),
        (np.zeros((3, 2, 4), dtype=np.uint16), "shape"),
        (np.zeros((2, 2, 4), dtype=np.float32), "integer dtype"),
        (np.zeros((2, 2, 4), dtype=bool), "integer dtype"),
    ],
)
def test_given_array_of_wrong_shape_or_dtype_is_an_error(out, match):
    # SAM2Error is what users should see (see test_tracker); ValueError is what is raised now
    with pytest.raises((SAM2Error, ValueError), match=match):
        LabelVolume(2, 2, 4, out=out)


def test_id_too_large_for_the_given_array_is_an_error_and_writes_stay_in_it():
    # widening would copy the array and writes would silently stop reaching the caller's
    # array (a napari Labels layer's data, a memmap); the error reaches users through the
    # Tracker, which must turn it into a SAM2Error (see test_tracker)
    out = np.zeros((1, 2, 4), dtype=np.uint8)
    volume = LabelVolume(1, 2, 4, out=out)
    with pytest.raises((SAM2Error, ValueError), match="300"):
        volume.write_object(0, 300, two_object_logits()[0])
    with pytest.raises((SAM2Error, ValueError), match="300"):
        volume.write_frame(0, [1, 300], two_object_logits())
    assert volume.array is out
    volume.write_object(0, 255, two_object_logits()[0])
    np.testing.assert_array_equal(out[0], [[255, 255, 0, 255], [0, 0, 255, 0]])
