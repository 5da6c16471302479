"""Tracks and measurements tables: gaps become child tracks, centroids per frame, region
properties in physical units when the stack has a pixel size."""

import csv

import numpy as np
import pytest

from napari_sam2.errors import SAM2Error
from napari_sam2.io.measurements import measure, write_measurements_csv
from napari_sam2.io.tracks import napari_tracks, track_rows, write_tracks_csv


def _labels():
    labels = np.zeros((4, 20, 20), dtype=np.int32)
    labels[0:2, 2:6, 2:8] = 1  # a mother, frames 0-1
    labels[2:4, 2:6, 2:4] = 2  # her daughters
    labels[2:4, 2:6, 6:8] = 3
    labels[0, 10:14, 10:14] = 4  # present, gone on frame 1, back on 2-3
    labels[2:4, 10:14, 12:16] = 4
    return labels


def test_track_rows_and_napari_tracks():
    rows = track_rows(_labels(), {2: 1, 3: 1})
    assert rows[0] == (1, 0, 3.5, 4.5, 0)
    assert {(r[0], r[4]) for r in rows if r[1] == 3} == {(2, 1), (3, 1), (5, 4)}
    data, graph = napari_tracks(_labels(), {2: 1, 3: 1})
    assert data.shape == (len(rows), 4) and graph == {2: [1], 3: [1], 5: [4]}


def test_tracks_csv(tmp_path):
    write_tracks_csv(tmp_path / "t.csv", _labels(), {2: 1, 3: 1})
    with open(tmp_path / "t.csv") as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["track_id", "t", "y", "x", "parent_track_id"] and len(rows) == 1 + 9
    with pytest.raises(SAM2Error, match="exists"):
        write_tracks_csv(tmp_path / "t.csv", _labels())


def test_measurements_in_pixels_and_in_physical_units(tmp_path):
    labels = _labels()
    intensity = np.arange(4 * 20 * 20, dtype=np.float32).reshape(4, 20, 20)
    pixels = measure(labels, intensity)
    first = {name: values[0] for name, values in pixels.items()}
    assert (first["frame"], first["object"], first["area"], first["unit"]) == (0, 1, 24, "pixel")
    assert first["intensity_max"] == intensity[0, 5, 7]
    assert first["bbox_max_x"] == 8 and first["solidity"] == pytest.approx(1.0)
    microns = measure(labels, intensity, {"Y": 0.5, "X": 0.25}, "µm")
    assert microns["area"][0] == pytest.approx(24 * 0.125) and microns["unit"][0] == "µm"
    assert microns["centroid_x"][0] == pytest.approx(4.5 * 0.25)
    assert microns["bbox_max_y"][0] == pytest.approx(6 * 0.5)
    write_measurements_csv(tmp_path / "m.csv", microns)
    with open(tmp_path / "m.csv", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(microns["frame"]) and rows[0]["unit"] == "µm"
