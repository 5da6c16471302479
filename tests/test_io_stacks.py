"""Reading stacks: TIFF (plain, ImageJ hyperstack, OME, compressed), .npy and zarr, lazily,
with their axes; and choosing the video axis of N-D data."""

import sys

import numpy as np
import pytest
import tifffile

from napari_sam2.errors import SAM2Error
from napari_sam2.io import label_axes, open_stack, unchosen_axes, video_frames
from napari_sam2.io.file_array import FileArray

RNG = np.random.default_rng(0)
TZYX = RNG.integers(0, 4000, (5, 3, 24, 32), dtype=np.uint16)


def _write(path, data, **options):
    tifffile.imwrite(path, data, **options)
    return path


def test_plain_tiff_is_read_lazily_and_its_one_axis_is_the_video(tmp_path):
    path = _write(tmp_path / "plain.tif", TZYX[:, 0], photometric="minisblack")
    stack = open_stack(path)
    assert stack.axes == "QYX"
    assert isinstance(stack.data, FileArray)
    frames = video_frames(stack)
    assert frames.shape == (5, 24, 32)
    np.testing.assert_array_equal(frames[3], TZYX[3, 0])
    assert label_axes(stack, frames) == "TYX"


def test_imagej_hyperstack_video_along_t_or_z(tmp_path):
    path = _write(tmp_path / "hyper.tif", TZYX, imagej=True, metadata={"axes": "TZYX"})
    stack = open_stack(path)
    assert stack.axes == "TZYX"
    along_t = video_frames(stack, fixed={"Z": 2})
    assert along_t.shape == (5, 24, 32)
    np.testing.assert_array_equal(along_t[4], TZYX[4, 2])
    along_z = video_frames(stack, axis="z", fixed={0: 1})
    assert along_z.shape == (3, 24, 32)
    np.testing.assert_array_equal(along_z[2], TZYX[1, 2])
    assert label_axes(stack, along_z) == "ZYX"
    # by default T is the video and Z is fixed at 0, which callers can point out
    assert unchosen_axes(stack) == ["Z=0 of 3"]
    assert unchosen_axes(stack, fixed={"Z": 0}) == []


def test_ome_tiff_with_channels(tmp_path):
    data = RNG.integers(0, 255, (4, 2, 3, 16, 20), dtype=np.uint8)
    path = _write(tmp_path / "cells.ome.tif", data, ome=True, metadata={"axes": "TCZYX"})
    stack = open_stack(path)
    assert stack.axes == "TCZYX"
    frames = video_frames(stack, "Z", {"T": 3, "C": 1})
    assert frames.shape == (3, 16, 20)
    np.testing.assert_array_equal(frames[1], data[3, 1, 1])


def test_compressed_tiff_is_read_lazily_through_zarr(tmp_path):
    path = _write(
        tmp_path / "packed.tif",
        TZYX,
        imagej=True,
        metadata={"axes": "TZYX"},
        compression="zlib",
    )
    stack = open_stack(path)
    assert not isinstance(stack.data, np.ndarray)  # nothing decoded yet
    np.testing.assert_array_equal(video_frames(stack, "T", {"Z": 1})[2], TZYX[2, 1])


def test_compressed_tiff_without_zarr_is_decoded_to_disk(tmp_path, monkeypatch):
    path = _write(tmp_path / "packed.tif", TZYX[:, 0], compression="zlib", photometric="minisblack")
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr now fails
    stack = open_stack(path)
    assert isinstance(stack.data, np.memmap)  # a temporary file of ours, not the user's
    np.testing.assert_array_equal(video_frames(stack)[4], TZYX[4, 0])


def test_rgb_tiff_keeps_colour_last(tmp_path):
    data = RNG.integers(0, 255, (3, 16, 20, 3), dtype=np.uint8)
    stack = open_stack(_write(tmp_path / "rgb.tif", data, photometric="rgb"))
    assert stack.axes == "QYXS"
    frames = video_frames(stack)
    assert frames.shape == (3, 16, 20, 3)
    np.testing.assert_array_equal(frames[1], data[1])


def test_npy_is_read_lazily(tmp_path):
    np.save(tmp_path / "stack.npy", TZYX)
    stack = open_stack(tmp_path / "stack.npy")
    assert stack.axes == "QQYX"
    assert isinstance(stack.data, FileArray)
    with pytest.raises(SAM2Error, match="cannot tell which axis .* choose one of 0, 1"):
        video_frames(stack)
    frames = video_frames(stack, axis=1, fixed={0: 4})
    np.testing.assert_array_equal(frames[0], TZYX[4, 0])


def test_single_image_is_a_one_frame_video(tmp_path):
    np.save(tmp_path / "image.npy", TZYX[0, 0])
    frames = video_frames(open_stack(tmp_path / "image.npy"))
    assert frames.shape == (1, 24, 32)


def test_zarr_array_with_dimension_names(tmp_path):
    zarr = pytest.importorskip("zarr")
    array = zarr.create_array(
        tmp_path / "stack.zarr",
        shape=TZYX.shape,
        dtype="uint16",
        chunks=(1, 1, 24, 32),
        dimension_names=["t", "z", "y", "x"],
    )
    array[:] = TZYX
    stack = open_stack(tmp_path / "stack.zarr")
    assert stack.axes == "TZYX"
    np.testing.assert_array_equal(video_frames(stack, "Z", {"T": 1})[2], TZYX[1, 2])


def test_zarr_group_with_one_array_and_ome_zarr(tmp_path):
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(tmp_path / "one.zarr", mode="w")
    group.create_array("raw", shape=(4, 8, 8), dtype="uint8")[:] = 7
    assert open_stack(tmp_path / "one.zarr").shape == (4, 8, 8)

    ome = zarr.open_group(tmp_path / "ome.zarr", mode="w")
    axes = [{"name": n, "type": "space"} for n in ("z", "y", "x")]
    ome.attrs["multiscales"] = [{"axes": axes, "datasets": [{"path": "0"}, {"path": "1"}]}]
    ome.create_array("0", shape=(6, 8, 8), dtype="uint8")
    ome.create_array("1", shape=(6, 4, 4), dtype="uint8")
    stack = open_stack(tmp_path / "ome.zarr")
    assert (stack.axes, stack.shape) == ("ZYX", (6, 8, 8))

    several = zarr.open_group(tmp_path / "two.zarr", mode="w")
    several.create_array("a", shape=(2, 4, 4), dtype="uint8")
    several.create_array("b", shape=(2, 4, 4), dtype="uint8")
    with pytest.raises(SAM2Error, match="arrays \\['a', 'b'\\]; give the path of one array"):
        open_stack(tmp_path / "two.zarr")


@pytest.mark.parametrize(
    ("axis", "fixed", "message"),
    [
        ("Z", None, "has no Z axis; the video axis can be T"),
        ("Y", None, "is part of the image"),
        (5, None, "has no axis 5"),
        ("T", {"T": 1}, "cannot be fixed"),
        ("T", {"Q": 1}, "has no Q axis"),
    ],
)
def test_wrong_axis_choices_are_explained(tmp_path, axis, fixed, message):
    stack = open_stack(_write(tmp_path / "tyx.tif", TZYX[:, 0], metadata={"axes": "TYX"}))
    with pytest.raises(SAM2Error, match=message):
        video_frames(stack, axis, fixed)


def test_fixed_index_outside_the_axis(tmp_path):
    stack = open_stack(_write(tmp_path / "h.tif", TZYX, imagej=True, metadata={"axes": "TZYX"}))
    with pytest.raises(SAM2Error, match="index 3 of axis Z is outside 0..2"):
        video_frames(stack, "T", {"Z": 3})


def test_unreadable_files(tmp_path):
    with pytest.raises(SAM2Error, match="stack file not found"):
        open_stack(tmp_path / "missing.tif")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SAM2Error, match="supported are"):
        open_stack(tmp_path / "notes.txt")
    (tmp_path / "fake.tif").write_bytes(b"not a tiff at all")
    with pytest.raises(SAM2Error, match="not a readable TIFF"):
        open_stack(tmp_path / "fake.tif")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(SAM2Error, match="not a readable .npy"):
        open_stack(tmp_path / "objects.npy")
    np.save(tmp_path / "line.npy", np.arange(5))
    with pytest.raises(SAM2Error, match="image plane"):
        open_stack(tmp_path / "line.npy")
