"""The "Every cell" panel's GEFF export in a real viewer: after Track all, the graph written has
a node per object and frame of the labels and the panel's lineage as edges."""

import numpy as np
import pytest

from napari_sam2.synthetic import timelapse

geff = pytest.importorskip("geff")  # the optional extra; the testing extra installs it
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _panel(widget, kind_name):
    return next(p for p in widget.panels if type(p).__name__ == kind_name)


def test_track_all_then_export_geff(make_napari_viewer, qtbot, tmp_path):
    stack = timelapse(
        num_frames=6, height=96, width=96, num_cells=3, num_divisions=1, leaving=False, seed=3
    )
    viewer = make_napari_viewer()
    viewer.add_image(stack.frames, name="cells")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    _panel(widget, "EnginePanel").background.setChecked(False)
    widget.model_combo.setCurrentText("demo")
    widget.device_combo.setCurrentText("cpu")
    widget.load_button.click()
    qtbot.waitUntil(lambda: widget.tracker is not None and not widget.busy, timeout=60_000)
    panel = _panel(widget, "CellsPanel")
    viewer.add_labels(stack.labels, name="seeds")
    viewer.dims.set_point(0, 0)
    panel.seeds_button.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)
    panel.track_button.click()
    qtbot.waitUntil(lambda: "Tracked" in widget.status.text(), timeout=120_000)
    qtbot.waitUntil(lambda: not widget.busy, timeout=60_000)

    panel.export_geff(str(tmp_path / "cells.geff"))
    assert "nodes" in widget.status.text(), widget.status.text()
    graph, metadata = geff.read(str(tmp_path / "cells.geff"))
    labels = np.asarray(widget.labels.data)
    per_frame = sum(len(np.unique(plane)) - 1 for plane in labels)
    assert graph.number_of_nodes() == per_frame
    assert [a.name for a in metadata.axes] == ["t", "y", "x"]
    for daughter, mother in panel.lineage.items():  # a division: mother's last -> daughter
        first = min((d["t"], n) for n, d in graph.nodes(data=True) if d["seg_id"] == daughter)[1]
        (source,) = graph.predecessors(first)
        assert graph.nodes[source]["seg_id"] == mother
    # a folder that is not a GEFF is not replaced: the panel says so and writes nothing
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    panel.export_geff(str(tmp_path / "mine"))
    assert "not a GEFF" in widget.status.text()
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
