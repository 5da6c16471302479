"""Tracks as a table: one row per track and frame with the track's centroid and its parent,
the napari Tracks layer's data and graph, and the same as CSV."""

import csv
from pathlib import Path

import numpy as np
from scipy import ndimage

from .atomic import atomic_output
from .ctc import ctc_tracks

TRACK_COLUMNS = ("track_id", "t", "y", "x", "parent_track_id")


def track_rows(labels: np.ndarray, lineage: dict[int, int] | None = None) -> list[tuple]:
    """(track_id, t, y, x, parent_track_id) per track and frame, sorted by track then t.

    Tracks are the CTC ones (`ctc_tracks`): an object missing on some frames continues as a
    new track whose parent is the run before the gap; parent 0 means none.
    """
    relabelled, tracks = ctc_tracks(labels, lineage)
    parents = {k.label: k.parent for k in tracks}
    rows = []
    for t, plane in enumerate(relabelled):
        ids = [int(i) for i in np.unique(plane) if i]
        if not ids:
            continue
        centres = ndimage.center_of_mass(np.ones(plane.shape), plane, ids)
        rows += [
            (i, t, float(y), float(x), parents[i]) for i, (y, x) in zip(ids, centres, strict=True)
        ]
    rows.sort(key=lambda row: (row[0], row[1]))
    return rows


def napari_tracks(
    labels: np.ndarray, lineage: dict[int, int] | None = None
) -> tuple[np.ndarray, dict[int, list[int]]]:
    """A napari Tracks layer's data (N, 4) [track_id, t, y, x] and graph {track: [parent]}."""
    rows = track_rows(labels, lineage)
    data = np.array([row[:4] for row in rows], dtype=float).reshape(-1, 4)
    graph = {row[0]: [row[4]] for row in rows if row[4]}
    return data, graph


def write_tracks_csv(
    path: str | Path,
    labels: np.ndarray,
    lineage: dict[int, int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `track_rows` as CSV with the header track_id,t,y,x,parent_track_id."""
    rows = track_rows(labels, lineage)
    with atomic_output(path, overwrite) as temporary, temporary.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(TRACK_COLUMNS)
        writer.writerows((i, t, f"{y:.3f}", f"{x:.3f}", p) for i, t, y, x, p in rows)
    return Path(path)
