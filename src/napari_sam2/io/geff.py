"""Tracks as a GEFF graph (the graph exchange format for tracking, a zarr folder, written with
the `geff` package): one node per object and frame at its centroid, edges between an object's
consecutive frames and from a mother to her daughters."""

import os
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import SAM2Error
from .atomic import atomic_folder
from .ctc import ctc_tracks

AXIS_TYPES = {"T": "time", "Z": "space", "Y": "space", "X": "space"}


def tracking_graph(labels: np.ndarray, lineage: dict[int, int] | None = None, axes: str = "TYX"):
    """A networkx DiGraph of (N, H, W) labels along `axes` ("TYX", or "ZYX" for a z-stack).

    Nodes (ids 0..) carry the position per axis (lower-case names, pixels), `seg_id` (the
    object's label value in `labels`) and `track_id` (its track in the CTC export: an object
    missing on some frames continues as a new track). Edges join a track's consecutive frames,
    the frame before a gap to the frame after it, and a mother's last node to each daughter's
    first.
    """
    import networkx as nx

    if len(axes) != 3 or axes[1:] != "YX" or axes[0] not in "TZ":
        raise SAM2Error(f"a tracking graph needs labels along TYX or ZYX, got {axes!r}")
    labels = np.asarray(labels)
    relabelled, tracks = ctc_tracks(labels, lineage)
    names = [a.lower() for a in axes]
    graph = nx.DiGraph()
    nodes: dict[tuple[int, int], int] = {}  # (track, frame) -> node
    for t, plane in enumerate(relabelled):
        ids = [int(i) for i in np.unique(plane) if i]
        if not ids:
            continue
        centres = ndimage.center_of_mass(np.ones(plane.shape), plane, ids)
        for track, (y, x) in zip(ids, centres, strict=True):
            seg_id = int(labels[t][plane == track][0])
            node = len(nodes)
            nodes[track, t] = node
            position = dict(zip(names, (float(t), float(y), float(x)), strict=True))
            graph.add_node(node, **position, seg_id=seg_id, track_id=track)
    for track in tracks:
        for t in range(track.begin, track.end):
            graph.add_edge(nodes[track.label, t], nodes[track.label, t + 1])
    ends = {track.label: track.end for track in tracks}
    for track in tracks:
        if track.parent:
            graph.add_edge(nodes[track.parent, ends[track.parent]], nodes[track.label, track.begin])
    return graph


def check_geff_path(path: str | Path, overwrite: bool = False) -> Path:
    """Raise a SAM2Error unless a GEFF folder can be written at `path`; checked up front. An
    existing one is replaced only with overwrite and only if it is a zarr folder."""
    path = Path(path)
    if not path.parent.is_dir():
        raise SAM2Error(f"the folder {path.parent} does not exist; create it first")
    if path.exists():
        if not overwrite:
            raise SAM2Error(f"{path} exists; choose another name or allow overwriting")
        zarr_folder = path.is_dir() and any(
            (path / name).exists() for name in (".zgroup", ".zattrs", "zarr.json")
        )
        if not zarr_folder:
            raise SAM2Error(f"{path} exists and is not a GEFF (zarr) folder; it is not replaced")
    if not os.access(path.parent, os.W_OK):
        raise SAM2Error(f"cannot write to the folder {path.parent}")
    return path


def write_geff(
    path: str | Path,
    labels: np.ndarray,
    lineage: dict[int, int] | None = None,
    axes: str = "TYX",
    spacing: dict[str, float] | None = None,
    unit: str | None = None,
    overwrite: bool = False,
) -> int:
    """Write `tracking_graph` as a GEFF zarr folder (complete or not at all); returns the
    number of nodes. spacing: pixel size per axis letter, recorded as the axes' scales with
    `unit`; positions stay in pixels."""
    try:
        import geff
    except ImportError as exc:
        raise SAM2Error(
            "GEFF export needs the geff package: pip install 'napari-sam2[geff]'"
        ) from exc
    path = check_geff_path(path, overwrite)
    graph = tracking_graph(labels, lineage, axes)
    spacing = spacing or {}
    scales = [spacing.get(a) if a != "T" else None for a in axes]
    physical = unit is not None and all(s is not None for s in scales[1:])
    with atomic_folder(path, "GEFF folder", lambda p: check_geff_path(p, overwrite)) as temporary:
        geff.write(
            graph,
            str(temporary),
            axis_names=[a.lower() for a in axes],
            axis_types=[AXIS_TYPES[a] for a in axes],
            axis_units=[None if a == "T" else (unit if physical else "pixel") for a in axes],
            axis_scales=[float(s) if physical and s else None for s in scales],
            scaled_units=[None if a == "T" or not physical else unit for a in axes],
        )
    return graph.number_of_nodes()
