"""The propagation settings' boxes in the widget (objects kept apart, outlines snapped to the
image): ticked with the demo model, each box drives the next propagation and the session log
records it; a loaded file's choice sets the box."""

import numpy as np
import pytest

from napari_sam2.synthetic import timelapse
from widget_helpers import idle, open_with_demo

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SETTINGS = ["non_overlap", "snap_outlines"]


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    s = timelapse(5, 96, 96, 2, seed=5, cell_radius=14.0, num_divisions=0, leaving=False)
    viewer = make_napari_viewer()
    viewer.add_image(s.frames, name="movie")
    widget = open_with_demo(viewer, qtbot)
    widget.session.exclusive_clicks = False  # two objects on one cell, on purpose
    ys, xs = np.nonzero(s.labels[0] == int(np.unique(s.labels[0])[1]))
    y, x = float(np.median(ys)), float(np.median(xs))
    widget.clicks.add([[0, y, x]])  # object 1
    idle(qtbot, widget)
    widget.add_object()
    widget.clicks.add([[0, y, x + 3.0]])  # object 2, on the same cell
    idle(qtbot, widget)
    return widget


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_box_drives_propagation_and_the_log(widget, qtbot, setting):
    box = getattr(widget.propagate_panel, setting)
    assert box.isEnabled() and box.isChecked() and getattr(widget.session, setting) is True
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    before = widget.session.tracker.labels().copy()
    box.setChecked(False)
    assert getattr(widget.session, setting) is False
    widget.propagate_panel.all_objects.setChecked(True)
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    log = widget.session.log
    assert [getattr(op, setting) for op in log if hasattr(op, setting)] == [True, False]
    # without the constraint the later object takes the shared cell on tracked frames;
    # without the snap the outlines are the model's own
    assert (widget.session.tracker.labels()[1:] != before[1:]).any()


@pytest.mark.parametrize("setting", SETTINGS)
def test_a_loaded_file_sets_the_box(widget, qtbot, tmp_path, setting):
    from napari_sam2.io import read_prompts, write_prompts

    box = getattr(widget.propagate_panel, setting)
    box.setChecked(False)
    widget.save_session(str(tmp_path / "session.json"))
    prompts = read_prompts(tmp_path / "session.json")
    assert getattr(prompts, setting) is False
    prompts.log = None  # the prompts alone
    write_prompts(tmp_path / "prompts.json", prompts)
    box.setChecked(True)
    widget.load_session(str(tmp_path / "prompts.json"))
    idle(qtbot, widget)
    assert getattr(widget.session, setting) is False
    assert not getattr(widget.propagate_panel, setting).isChecked()
