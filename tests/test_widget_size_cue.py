"""The size cue in the widget: ticked along z with the demo model, unticked along time, and
the box drives what the next propagation does (and what the session log records)."""

import numpy as np
import pytest

from napari_sam2.synthetic import zstack
from widget_helpers import idle, open_with_demo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def viewer_with_nuclei(make_napari_viewer):
    s = zstack(10, 96, 96, 2, seed=31_339, nucleus_radius=14.0, z_radius=3.5)
    viewer = make_napari_viewer()
    return viewer, s


def test_the_box_follows_the_axis_and_drives_propagation(viewer_with_nuclei, qtbot):
    viewer, s = viewer_with_nuclei
    viewer.add_image(s.frames, name="nuclei", axis_labels=("z", "y", "x"))
    widget = open_with_demo(viewer, qtbot)
    box = widget.propagate_panel.size_cue
    assert widget.axis_name() == "Z"
    assert box.isEnabled() and box.isChecked() and widget.session.size_cue is True

    z = int(np.argmax((s.labels == 1).sum(axis=(1, 2))))
    ys, xs = np.nonzero(s.labels[z] == 1)
    widget.viewer.dims.set_point(0, z)
    widget.clicks.add([[z, float(np.median(ys)), float(np.median(xs))]])
    idle(qtbot, widget)
    widget.run_buttons["both"].click()
    idle(qtbot, widget)
    box.setChecked(False)
    assert widget.session.size_cue is False
    widget.propagate_panel.all_objects.setChecked(True)
    widget.run_buttons["both"].click()
    idle(qtbot, widget)
    assert [op.size_cue for op in widget.session.log if hasattr(op, "size_cue")] == [True, False]


def test_the_box_is_unticked_along_time(viewer_with_nuclei, qtbot):
    viewer, s = viewer_with_nuclei
    viewer.add_image(s.frames, name="movie")  # no axis labels: time
    widget = open_with_demo(viewer, qtbot)
    assert widget.axis_name() == "T"
    assert not widget.propagate_panel.size_cue.isChecked()
    assert widget.session.size_cue is False


def test_a_prompts_file_sets_the_box_to_its_own_choice(viewer_with_nuclei, qtbot, tmp_path):
    """Loaded without a log (prompts only), the file's size-cue choice is the session's and
    the box shows it."""
    from napari_sam2.io import read_prompts, write_prompts

    viewer, s = viewer_with_nuclei
    viewer.add_image(s.frames, name="nuclei", axis_labels=("z", "y", "x"))
    widget = open_with_demo(viewer, qtbot)
    box = widget.propagate_panel.size_cue
    z = int(np.argmax((s.labels == 1).sum(axis=(1, 2))))
    ys, xs = np.nonzero(s.labels[z] == 1)
    widget.viewer.dims.set_point(0, z)
    widget.clicks.add([[z, float(np.median(ys)), float(np.median(xs))]])
    idle(qtbot, widget)
    box.setChecked(False)
    widget.save_session(str(tmp_path / "session.json"))
    prompts = read_prompts(tmp_path / "session.json")
    prompts.log = None  # the prompts alone: a prompts file, not a session
    write_prompts(tmp_path / "prompts.json", prompts)
    box.setChecked(True)
    widget.load_session(str(tmp_path / "prompts.json"))
    idle(qtbot, widget)
    assert widget.session.size_cue is False
    assert box.isEnabled() and not box.isChecked()
