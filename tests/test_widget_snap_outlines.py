"""Snapped outlines in the widget: ticked with the demo model, the box drives the next
propagation and the session log records it; a loaded file's choice sets the box."""

import numpy as np
import pytest

from napari_sam2.synthetic import timelapse
from widget_helpers import idle, open_with_demo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    s = timelapse(5, 96, 96, 2, seed=5, cell_radius=14.0, num_divisions=0, leaving=False)
    viewer = make_napari_viewer()
    viewer.add_image(s.frames, name="movie")
    widget = open_with_demo(viewer, qtbot)
    ys, xs = np.nonzero(s.labels[0] == int(np.unique(s.labels[0])[1]))
    widget.clicks.add([[0, float(np.median(ys)), float(np.median(xs))]])
    idle(qtbot, widget)
    return widget


def test_the_box_drives_propagation_and_the_log(widget, qtbot):
    box = widget.propagate_panel.snap_outlines
    assert box.isEnabled() and box.isChecked() and widget.session.snap_outlines is True
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    snapped = widget.session.tracker.labels().copy()
    box.setChecked(False)
    assert widget.session.snap_outlines is False
    widget.propagate_panel.all_objects.setChecked(True)
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    log = widget.session.log
    assert [op.snap_outlines for op in log if hasattr(op, "snap_outlines")] == [True, False]
    assert (widget.session.tracker.labels()[1:] != snapped[1:]).any()


def test_a_loaded_file_sets_the_box(widget, qtbot, tmp_path):
    from napari_sam2.io import read_prompts, write_prompts

    box = widget.propagate_panel.snap_outlines
    box.setChecked(False)
    widget.save_session(str(tmp_path / "session.json"))
    prompts = read_prompts(tmp_path / "session.json")
    assert prompts.snap_outlines is False
    prompts.log = None  # the prompts alone
    write_prompts(tmp_path / "prompts.json", prompts)
    box.setChecked(True)
    widget.load_session(str(tmp_path / "prompts.json"))
    idle(qtbot, widget)
    assert widget.session.snap_outlines is False
    assert not widget.propagate_panel.snap_outlines.isChecked()
