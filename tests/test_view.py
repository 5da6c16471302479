"""`napari-sam2 view STACK` in a real viewer: a z-stack's axes are Z, Y, X (not T) and the
image layer carries the file's voxel size as its scale."""

import numpy as np
import pytest
import tifffile

napari = pytest.importorskip("napari")


def test_view_names_z_and_scales_by_voxel_size(make_napari_viewer, monkeypatch, tmp_path):
    from napari_sam2.cli import main

    path = tmp_path / "nuclei.tif"
    stack = np.random.default_rng(0).integers(0, 255, (5, 32, 40), dtype=np.uint8)
    metadata = {"axes": "ZYX", "spacing": 2.0, "unit": "micron"}
    tifffile.imwrite(path, stack, imagej=True, resolution=(2.0, 2.0), metadata=metadata)
    viewer = make_napari_viewer()
    monkeypatch.setattr(napari, "Viewer", lambda *a, **k: viewer)
    monkeypatch.setattr(napari, "run", lambda *a, **k: None)

    assert main(["view", str(path)]) == 0
    layer = viewer.layers["nuclei"]
    assert layer.axis_labels == ("Z", "Y", "X")
    assert tuple(viewer.dims.axis_labels) == ("Z", "Y", "X")
    np.testing.assert_allclose(layer.scale, [2.0, 0.5, 0.5])
    assert str(layer.units[0]) == "micrometer"
    np.testing.assert_array_equal(np.asarray(layer.data[3]), stack[3])
