"""Label volumes on disk: compressed uint16/uint32 TIFF with axes, written atomically, never
overwriting by accident."""

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sam2.errors import SAM2Error
from napari_sam2.io import atomic_output, check_writable, read_labels, write_labels

LABELS = np.zeros((4, 20, 30), dtype=np.uint16)
LABELS[:, 5:10, 5:12] = 1
LABELS[2:, 12:18, 20:28] = 2


def test_uint16_labels_are_a_compressed_imagej_hyperstack(tmp_path):
    path = write_labels(tmp_path / "labels.tif", LABELS, axes="ZYX")
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert tif.series[0].axes == "ZYX"
        assert tif.pages[0].compression == tifffile.COMPRESSION.ADOBE_DEFLATE
    data, axes = read_labels(path)
    assert (axes, data.dtype) == ("ZYX", np.uint16)
    np.testing.assert_array_equal(data, LABELS)
    assert path.stat().st_size < LABELS.nbytes / 4


def test_large_ids_become_uint32_with_axes_metadata(tmp_path):
    labels = LABELS.astype(np.int64)
    labels[0, 0, 0] = 70_000
    data, axes = read_labels(write_labels(tmp_path / "many.tif", labels))
    assert (axes, data.dtype) == ("TYX", np.uint32)
    np.testing.assert_array_equal(data, labels)


def test_small_ints_are_stored_as_uint16(tmp_path):
    data, _ = read_labels(write_labels(tmp_path / "b.tif", LABELS.astype(np.int8)))
    assert data.dtype == np.uint16


@pytest.mark.parametrize(
    ("labels", "axes", "message"),
    [
        (LABELS.astype(np.float32), "TYX", "must be integers"),
        (LABELS.astype(np.int32) - 1, "TYX", "must not be negative"),
        (LABELS, "YX", "do not describe labels of shape"),
    ],
)
def test_bad_labels_are_refused(tmp_path, labels, axes, message):
    with pytest.raises(SAM2Error, match=message):
        write_labels(tmp_path / "bad.tif", labels, axes=axes)
    assert list(tmp_path.iterdir()) == []


def test_existing_file_is_kept_unless_overwrite(tmp_path):
    path = tmp_path / "labels.tif"
    path.write_bytes(b"precious")
    with pytest.raises(SAM2Error, match="exists"):
        write_labels(path, LABELS)
    assert path.read_bytes() == b"precious"
    write_labels(path, LABELS, overwrite=True)
    np.testing.assert_array_equal(read_labels(path)[0], LABELS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif"]


def test_failure_while_writing_leaves_nothing(tmp_path):
    path = tmp_path / "labels.tif"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(path, overwrite=True) as temporary:
        temporary.write_bytes(b"half a fi")
        raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.tif"]


def test_unwritable_destinations(tmp_path):
    with pytest.raises(SAM2Error, match="folder .* does not exist"):
        check_writable(tmp_path / "nowhere" / "labels.tif")
    with pytest.raises(SAM2Error, match="is a folder"):
        check_writable(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        folder = locked
        if os.access(locked, os.W_OK):
            # root ignores permissions; nobody can create files in /proc
            if not Path("/proc/self").exists():
                pytest.skip("no read-only folder available to this user")
            folder = Path("/proc")
        with pytest.raises(SAM2Error, match="cannot write to the output folder"):
            write_labels(folder / "labels.tif", LABELS)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_output_gets_ordinary_permissions(tmp_path):
    path = write_labels(tmp_path / "labels.tif", LABELS)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
