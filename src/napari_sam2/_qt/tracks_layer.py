"""A tracked label volume in napari: a Tracks layer (track_id, t, y, x and the parent graph,
from `io.tracks`) and the measurements of the frame on view as the Labels layer's features
(from `io.measurements`)."""

import numpy as np
import pandas as pd
from napari.layers import Labels, Tracks

from ..engine.stack_view import VideoAxisView
from ..io.tracks import napari_tracks

TRACKS = "SAM2 tracks"


def features_on_frame(measurements: pd.DataFrame, t: int, lineage: dict[int, int]) -> pd.DataFrame:
    """The labels layer's features for frame t: one row per object there (`index` = its
    label value), its measurements on that frame and its parent (0: none)."""
    rows = measurements[measurements["frame"] == t].rename(columns={"object": "index"})
    rows = rows.drop(columns=["frame"]).reset_index(drop=True)
    rows.insert(1, "parent", [lineage.get(int(i), 0) for i in rows["index"]])
    return rows


def show_tracks(viewer, labels_layer: Labels, view: VideoAxisView, lineage: dict[int, int]):
    """Add (or replace) the Tracks layer for the tracked frames of `labels_layer`; returns
    it (None when nothing is tracked)."""
    index = tuple(
        slice(None) if axis == view.video_axis else view.fixed[axis] for axis in range(view.leading)
    )
    frames = np.asarray(labels_layer.data[index])
    frames = frames[None] if view.video_axis is None else frames
    if TRACKS in viewer.layers:
        viewer.layers.remove(TRACKS)
    points, graph = napari_tracks(frames, lineage)
    if not len(points):
        return None
    # the labels layer's coordinates (the fixed axes at their slice, the followed axis = t),
    # so the tracks lie on the labels; napari takes the first axis as the tracks' time
    coords = np.zeros((len(points), labels_layer.ndim))
    for axis in range(view.leading):
        coords[:, axis] = points[:, 1] if axis == view.video_axis else view.fixed[axis]
    coords[:, -2:] = points[:, 2:]
    scale = np.asarray(labels_layer.scale)
    translate = np.asarray(labels_layer.translate)
    if view.video_axis is None:  # one frame: a time axis of length one in front
        coords = np.column_stack([np.zeros(len(points)), coords])
        scale, translate = np.r_[1.0, scale], np.r_[0.0, translate]
    data = np.column_stack([points[:, 0], coords])
    layer = Tracks(
        data,
        graph=graph,
        name=TRACKS,
        scale=scale,
        translate=translate,
        tail_length=10,
    )
    viewer.add_layer(layer)
    return layer
