"""Axes and pixel/voxel size end to end: read from ImageJ, OME-TIFF and OME-Zarr, written into
label files that read back, and given to napari as axis labels and scale."""

import json

import numpy as np
import pytest
import tifffile

from napari_sam2.errors import SAM2Error
from napari_sam2.io import open_stack, read_labels, write_labels

ZYX = np.arange(4 * 16 * 20, dtype=np.uint16).reshape(4, 16, 20)


def test_imagej_calibration(tmp_path):
    path = tmp_path / "z.tif"
    metadata = {"axes": "ZYX", "spacing": 2.5, "unit": "micron"}
    tifffile.imwrite(path, ZYX, imagej=True, resolution=(1 / 0.65, 1 / 0.65), metadata=metadata)
    stack = open_stack(path)
    assert stack.axes == "ZYX"
    assert stack.spacing == {"Z": 2.5, "Y": 0.65, "X": 0.65} and stack.unit == "µm"


def test_ome_tiff_physical_sizes_in_other_units(tmp_path):
    path = tmp_path / "z.ome.tif"
    metadata = {"axes": "ZYX", "PhysicalSizeX": 325, "PhysicalSizeY": 325}
    metadata.update(PhysicalSizeXUnit="nm", PhysicalSizeYUnit="nm", PhysicalSizeZ=1.5)
    tifffile.imwrite(path, ZYX, ome=True, metadata=metadata)
    stack = open_stack(path)
    assert stack.spacing == {"Z": 1.5, "Y": 0.325, "X": 0.325} and stack.unit == "µm"


def test_uncalibrated_files_have_no_spacing(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", ZYX, imagej=True, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "b.tif", ZYX, photometric="minisblack")
    np.save(tmp_path / "c.npy", ZYX)
    for name in ("a.tif", "b.tif", "c.npy"):
        stack = open_stack(tmp_path / name)
        assert stack.spacing == {} and stack.unit is None, name


def test_ome_zarr_scale(tmp_path):
    zarr = pytest.importorskip("zarr")
    root = zarr.open_group(str(tmp_path / "image.zarr"), mode="w", zarr_format=2)
    root.create_array("0", data=ZYX)
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "z", "type": "space", "unit": "micrometer"},
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [3, 0.5, 0.5]}],
                }
            ],
        }
    ]
    stack = open_stack(tmp_path / "image.zarr")
    assert stack.axes == "ZYX"
    assert stack.spacing == {"Z": 3.0, "Y": 0.5, "X": 0.5} and stack.unit == "µm"


@pytest.mark.parametrize("high", [7, 70000])  # ImageJ uint16, OME uint32
def test_label_files_keep_the_voxel_size(tmp_path, high):
    labels = np.zeros((3, 8, 10), np.uint32)
    labels[1, 2:4, 3:6] = high
    path = write_labels(
        tmp_path / "labels.tif", labels, axes="ZYX", spacing={"Z": 2.0, "Y": 0.65, "X": 0.65}
    )
    stack = open_stack(path)
    assert stack.axes == "ZYX" and stack.spacing == {"Z": 2.0, "Y": 0.65, "X": 0.65}
    assert stack.unit == "µm"
    back, axes = read_labels(path)
    assert axes == "ZYX" and np.array_equal(back, labels)


def test_label_spacing_is_checked(tmp_path):
    labels = np.zeros((2, 4, 4), np.uint16)
    for spacing in ({"X": 0}, {"X": float("nan")}, {"Q": 1.0}, {"": 1.0}, {"Y": "wide"}):
        with pytest.raises(SAM2Error, match="spacing"):
            write_labels(tmp_path / "l.tif", labels, spacing=spacing)
    assert list(tmp_path.iterdir()) == []


def test_file_to_layer_to_labels_to_file(tmp_path):
    """view's image layer of a ZYX file has Z and the physical scale; labels saved with that
    scale read back with it."""
    pytest.importorskip("napari")
    from napari.layers import Image

    from napari_sam2.cli.view import image_layer_options

    path = tmp_path / "z.tif"
    metadata = {"axes": "ZYX", "spacing": 2.0, "unit": "um"}
    tifffile.imwrite(path, ZYX, imagej=True, resolution=(2.0, 2.0), metadata=metadata)
    stack = open_stack(path)
    layer = Image(stack.data, **image_layer_options(stack))
    assert layer.axis_labels == ("Z", "Y", "X")
    assert list(layer.scale) == [2.0, 0.5, 0.5]
    spacing = dict(zip(layer.axis_labels, map(float, layer.scale), strict=True))
    saved = write_labels(tmp_path / "labels.tif", np.ones((4, 16, 20), np.uint8), "ZYX",
                         spacing=spacing, unit=stack.unit)  # fmt: skip
    assert open_stack(saved).spacing == stack.spacing
    assert json.dumps(layer.metadata["spacing"])  # plain data, for session files
