"""The classical baseline: segments synthetic cells, follows them, and finds divisions."""

import numpy as np
import pytest

from napari_sam2 import synthetic
from napari_sam2.baseline import classical_tracking, segment_frame
from napari_sam2.errors import SAM2Error


def test_segment_frame_finds_each_cell_once():
    stack = synthetic.timelapse(num_frames=1, height=128, width=128, num_cells=4, seed=3)
    found = segment_frame(stack.frames[0])
    truth = stack.labels[0]
    for cell in np.unique(truth)[1:]:
        inside = found[truth == cell]
        best = np.bincount(inside).argmax()
        assert best > 0
        iou = ((found == best) & (truth == cell)).sum() / ((found == best) | (truth == cell)).sum()
        assert iou > 0.5


def test_tracks_keep_ids_and_record_divisions():
    stack = synthetic.timelapse(num_frames=20, height=160, width=160, num_cells=5, seed=1)
    labels, lineage = classical_tracking(stack.frames)
    assert labels.shape == stack.frames.shape and labels.dtype == np.int32
    # a division was found: two daughters with one parent, which ends before they begin
    parents = list(lineage.values())
    assert any(parents.count(p) == 2 for p in parents)
    for daughter, parent in lineage.items():
        begin = np.flatnonzero((labels == daughter).any(axis=(1, 2)))[0]
        end = np.flatnonzero((labels == parent).any(axis=(1, 2)))[-1]
        assert end < begin
    # a cell that neither divides nor leaves keeps one id from the first frame to the last
    divided = set(stack.lineage.values()) | set(stack.lineage)
    steady = [c for c in range(2, 6) if c not in divided]
    cell = steady[0]
    ids = {np.bincount(labels[t][stack.labels[t] == cell]).argmax() for t in range(20)}
    assert len(ids) == 1 and 0 not in ids


def test_rejects_non_stack():
    with pytest.raises(SAM2Error, match="T, H, W"):
        classical_tracking(np.zeros((8, 8)))
