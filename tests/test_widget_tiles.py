"""The Propagate panel's Tiles option in a real napari viewer with the demo model: a frame
wider than the model input is propagated in tiles into the Labels layer, as the headless
tiled tracker does, and a failure or a cancel leaves the labels as they were."""

import numpy as np
import pytest

from napari_sam2._qt.tiles_option import propagate_in_tiles
from napari_sam2.engine.tiled_tracking import TiledTracker
from napari_sam2.synthetic import moving_cells
from widget_helpers import fail_after, idle, open_with_demo, replay_saved_session

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    frames, _ = moving_cells(
        num_frames=4, height=128, width=600, centers=((60, 100), (60, 450)), radius=12
    )
    viewer = make_napari_viewer(show=True)
    viewer.add_image(frames, name="wide")
    widget = open_with_demo(viewer, qtbot)
    widget.viewer.dims.set_point(0, 0)
    widget.clicks.add([[0, 60, 106]])
    idle(qtbot, widget)
    return widget


def test_tiles_option_propagates_in_tiles_into_the_labels(widget, qtbot):
    tiles = widget.propagate_panel.tiles
    tiles.combo.setCurrentText("256")
    assert tiles.size() == 256 and tiles.grid.text() == "3 tiles"
    tiles.grid.setText("")
    widget.start_session()  # a new session (prompts kept) shows its tile count
    idle(qtbot, widget)
    assert tiles.grid.text() == "3 tiles"
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    tracker = widget.tracker
    expected = np.zeros_like(widget.labels.data)
    run, total = propagate_in_tiles(tracker, 256, "forward", expected)
    assert total == 4 and len(list(run)) == 4
    assert (expected[1:] == 1).any(axis=(1, 2)).all()
    np.testing.assert_array_equal(widget.labels.data, expected)
    tiles.combo.setCurrentText("Off")
    assert tiles.size() is None and tiles.grid.text() == ""


def test_a_session_saved_after_a_tiled_propagation_replays_to_its_labels(widget, qtbot, tmp_path):
    widget.propagate_panel.tiles.combo.setCurrentText("256")
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    saved = np.array(widget.labels.data)
    assert (saved[1:] == 1).any(axis=(1, 2)).all()
    frames = np.asarray(widget.viewer.layers["wide"].data)
    replayed, same = replay_saved_session(widget, tmp_path / "tiled.json", "wide", frames)
    assert same
    np.testing.assert_array_equal(replayed, saved)


def test_a_failed_tiled_propagation_leaves_the_labels(widget, qtbot, monkeypatch):
    before = widget.labels.data.copy()
    assert before[0].any()
    widget.propagate_panel.tiles.combo.setCurrentText("Auto")  # 600 >= 1.5 x 256
    fail_after(monkeypatch, TiledTracker, "_stitch", calls=2)  # fails on the third frame
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels.data, before)
    assert "failed" in widget.status.text()


def test_cancelling_a_tiled_propagation_puts_its_frames_back(widget):
    out = widget.labels.data.copy()
    before = out.copy()
    run, total = propagate_in_tiles(widget.tracker, 256, "forward", out)
    assert total == 4
    next(run), next(run)
    assert (out[1] == 1).any() and not (before[1] == 1).any()  # frame 1 was written
    run.close()  # what the widget's Cancel does to the run
    np.testing.assert_array_equal(out, before)


def test_a_tiled_propagation_keeps_the_sessions_reappear_choice(monkeypatch):
    import napari_sam2._qt.tiles_option as tiles_option
    from napari_sam2.engine import Tracker
    from napari_sam2.model import build_model

    frames, _ = moving_cells(num_frames=3, height=128, width=400, centers=((60, 100),))
    tracker = Tracker(build_model("demo"), frames, reappear=False)  # as along Z
    tracker.add_points(0, 1, [[100, 60]], [1])
    made = []

    class Recorded(TiledTracker):
        def window_tracker(self, index):
            made.append(super().window_tracker(index))
            return made[-1]

    monkeypatch.setattr(tiles_option, "TiledTracker", Recorded)
    run, _ = propagate_in_tiles(tracker, 256, "forward", np.zeros(frames.shape, np.uint16))
    list(run)
    assert made and all(window.reappear is False for window in made)
