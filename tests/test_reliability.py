"""Bad inputs and faults: each becomes one clear SAM2Error (CLI: one line, exit status 1) or
correct behaviour, and loses nothing. One test per row of docs/reliability.md."""

import numpy as np
import pytest
import tifffile
import torch

from napari_sam2.engine import FrameSource
from napari_sam2.errors import SAM2Error
from napari_sam2.io import open_stack, read_labels, video_frames, write_labels

STACK = np.random.default_rng(0).integers(0, 4000, (6, 64, 80)).astype(np.uint16)


def _truncated(tmp_path, name: str, fraction: float, **options):
    path = tmp_path / name
    tifffile.imwrite(path, STACK, **options)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _read_all(path):
    frames = video_frames(open_stack(path))
    return FrameSource(frames, 256), [frames[t] for t in range(len(frames))]


@pytest.mark.parametrize(
    "options",
    [
        dict(photometric="minisblack"),
        dict(imagej=True, metadata={"axes": "TYX"}),
        dict(photometric="minisblack", compression="zlib"),
        dict(imagej=True, metadata={"axes": "TYX"}, compression="zlib"),
    ],
    ids=["plain", "imagej", "plain-zlib", "imagej-zlib"],
)
@pytest.mark.parametrize("fraction", [0.001, 0.5, 0.97])
def test_truncated_tiff_is_an_error_not_fewer_frames(tmp_path, options, fraction):
    path = _truncated(tmp_path, "cut.tif", fraction, **options)
    with pytest.raises(SAM2Error, match="cut.tif|frame"):
        _read_all(path)


def _damage_page(path, page_index: int, pattern: int = 0x5A) -> None:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[page_index]
        start, count = page.dataoffsets[0], page.databytecounts[0]
    data = bytearray(path.read_bytes())
    for i in range(start + 2, start + count):
        data[i] ^= pattern
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("imagej", [False, True])
def test_corrupted_compressed_pixels_are_an_error_when_read(tmp_path, imagej):
    path = tmp_path / "bad.tif"
    options = dict(imagej=True, metadata={"axes": "TYX"}) if imagej else {}
    tifffile.imwrite(path, STACK, compression="zlib", photometric="minisblack", **options)
    _damage_page(path, 2)
    stack = open_stack(path)  # the header is fine: the damage shows when frame 2 is decoded
    with pytest.raises(SAM2Error, match="frame 2 of the stack cannot be read"):
        FrameSource(video_frames(stack), 256).read(2)


def test_pages_of_another_shape(tmp_path):
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as tif:
        for frame in (STACK[0], STACK[1, :32], STACK[2]):
            tif.write(frame, photometric="minisblack")
    with pytest.raises(SAM2Error, match="page 1 is 32x80 uint16 but page 0 is 64x80"):
        open_stack(path)


def test_pages_written_one_by_one_are_one_stack(tmp_path):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        for frame in STACK[:3]:
            tif.write(frame, photometric="minisblack")
    frames = video_frames(open_stack(path))
    assert frames.shape == (3, 64, 80)
    np.testing.assert_array_equal(frames[2], STACK[2])


def test_frame_of_another_shape_from_an_array_like():
    class Ragged:
        shape, dtype, ndim = (3, 8, 8), np.dtype(np.uint8), 3

        def __getitem__(self, t):
            return np.zeros((8, 8) if t != 1 else (4, 8), np.uint8)

    source = FrameSource(Ragged(), 64, contrast_limits=(0, 1))
    with pytest.raises(SAM2Error, match="frame 1 has shape \\(4, 8\\)"):
        source.read(1)


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_file_truncated_while_it_is_read(tmp_path, suffix):
    """Pixels are read with file reads, not a memory map: a file that shrinks under the reader
    is an error message, never a SIGBUS."""
    path = tmp_path / f"stack{suffix}"
    if suffix == ".npy":
        np.save(path, STACK)
    else:
        tifffile.imwrite(path, STACK, photometric="minisblack")
    frames = video_frames(open_stack(path))
    np.testing.assert_array_equal(frames[5], STACK[5])
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size // 2)
    with pytest.raises(SAM2Error, match="became shorter while it was read"):
        frames[5]
    with pytest.raises(SAM2Error, match="truncated"):
        open_stack(path)


@pytest.mark.parametrize("shape", [(0, 8, 8), (3, 0, 8), (3, 8, 0)])
def test_empty_stacks(tmp_path, shape):
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros(shape, np.uint8))
    np.save(tmp_path / "empty.npy", np.zeros(shape, np.uint8))
    for name in ("empty.tif", "empty.npy"):
        with pytest.raises(SAM2Error):
            _read_all(tmp_path / name)


def test_one_frame_stack_is_a_one_frame_video(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", STACK[:1], photometric="minisblack")
    tifffile.imwrite(tmp_path / "image.tif", STACK[0], photometric="minisblack")
    for name in ("one.tif", "image.tif"):
        source, frames = _read_all(tmp_path / name)
        assert len(frames) == 1 and source.frame_tensor(0).shape == (3, 256, 256)


def test_nan_and_inf_stacks(tmp_path):
    stack = STACK.astype(np.float32)
    stack[1, :10] = np.nan
    stack[2, :5] = np.inf
    np.save(tmp_path / "some.npy", stack)
    source, _ = _read_all(tmp_path / "some.npy")
    with pytest.warns(UserWarning, match="NaN or infinite"):
        tensor = source.frame_tensor(1)
    assert torch.isfinite(tensor).all()
    np.save(tmp_path / "all.npy", np.full((2, 8, 8), np.nan, np.float32))
    with pytest.raises(SAM2Error, match="no finite values"):
        _read_all(tmp_path / "all.npy")


def test_unknown_extension_and_folder_given_as_file(tmp_path):
    (tmp_path / "stack.png").write_bytes(b"\x89PNG")
    with pytest.raises(SAM2Error, match="supported are"):
        open_stack(tmp_path / "stack.png")
    (tmp_path / "folder.tif").mkdir()
    with pytest.raises(SAM2Error):
        open_stack(tmp_path / "folder.tif")


@pytest.mark.parametrize("shape", [(2, 1, 1), (1, 1, 1), (3, 1, 9)])
def test_tiny_label_volumes_read_back(tmp_path, shape):
    labels = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    path = write_labels(tmp_path / "tiny.tif", labels, axes="TYX")
    back, axes = read_labels(path)
    assert axes == "TYX" and back.shape == shape
    np.testing.assert_array_equal(back, labels)
    frames = video_frames(open_stack(path))  # read back as a stack, too
    assert frames.shape == shape
    np.testing.assert_array_equal(frames[shape[0] - 1], labels[-1])
