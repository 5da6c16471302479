"""The dock widget in a real napari viewer, driven as a user would: open data, add the
widget through the manifest, load a model from a checkpoint file, click, propagate, cancel,
correct, paint. The Labels layer is compared with what the engine gives for the same input."""

import numpy as np
import pytest
import torch

from napari_sam2.engine import Tracker
from napari_sam2.model import build_model
from napari_sam2.synthetic import moving_cells

SIZE = 256


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A random-weight checkpoint whose object-score head says "present", so clicks give
    non-empty masks."""
    model = build_model("sam2.1_hiera_tiny", image_size=SIZE)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(8.0)
    path = tmp_path_factory.mktemp("weights") / "sam2.1_hiera_tiny-random.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture
def stack():
    frames, _ = moving_cells(num_frames=6, height=64, width=80, centers=((20, 25), (40, 55)))
    return frames


@pytest.fixture
def widget(make_napari_viewer, qtbot, checkpoint, stack):
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="cells")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    widget.model_combo.setCurrentText("checkpoint file…")
    widget.checkpoint_edit.setText(str(checkpoint))
    widget.size_combo.setCurrentText(str(SIZE))
    widget.device_combo.setCurrentText("cpu")
    widget.load_button.click()
    qtbot.waitUntil(lambda: widget.tracker is not None, timeout=60_000)
    return widget


def idle(qtbot, widget, timeout=60_000):
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)
    qtbot.wait(50)  # let queued signals (labels refresh, sync) run
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)


def engine_for(widget, stack) -> Tracker:
    """An engine on the same model, frames and normalization as the widget's."""
    image = widget.viewer.layers["cells"]
    return Tracker(widget.model, stack, contrast_limits=tuple(image.contrast_limits))


def test_widget_is_added_through_the_manifest_and_creates_its_layers(widget):
    names = [layer.name for layer in widget.viewer.layers]
    assert {"SAM2 clicks", "SAM2 boxes", "SAM2 labels"} <= set(names)
    assert widget.viewer.layers["SAM2 labels"].data.shape == (6, 64, 80)
    assert "loaded" in widget.status.text()


def test_click_segments_that_frame_like_the_engine(widget, qtbot, stack):
    widget.clicks.add([[2, 24, 31]])
    idle(qtbot, widget)
    labels = widget.labels.data
    engine = engine_for(widget, stack)
    engine.add_points(2, 1, [[31, 24]], [1])
    assert (labels[2] == 1).any()
    np.testing.assert_array_equal(labels, engine.labels())


def test_propagate_both_matches_the_engine_and_cancel_restores(widget, qtbot, stack):
    widget.clicks.add([[2, 24, 31]])
    idle(qtbot, widget)
    widget.add_object()
    widget.toggle_sign()
    widget.toggle_sign()  # back to positive
    widget.clicks.add([[2, 46, 49]])
    idle(qtbot, widget)
    widget.run_buttons["both"].click()
    idle(qtbot, widget)
    assert "finished" in widget.status.text()

    engine = engine_for(widget, stack)
    engine.add_points(2, 1, [[31, 24]], [1])
    engine.add_points(2, 2, [[49, 46]], [1])
    for _ in engine.propagate("both"):
        pass
    np.testing.assert_array_equal(widget.labels.data, engine.labels())
    assert set(np.unique(widget.labels.data)) >= {1, 2}

    # a correction: a background click on a later frame, then propagate again
    before = widget.labels.data.copy()
    widget.toggle_sign()
    widget.clicks.add([[4, 30, 40]])
    idle(qtbot, widget)
    assert not np.array_equal(widget.labels.data[4], before[4])
    engine.add_points(4, 2, [[40, 30]], [0])
    np.testing.assert_array_equal(widget.labels.data[4], engine.labels()[4])

    # cancelling a propagation leaves the labels as they were
    before = widget.labels.data.copy()
    widget.run_buttons["forward"].click()
    widget.cancel_button.click()
    idle(qtbot, widget)
    np.testing.assert_array_equal(widget.labels.data, before)
    assert "cancelled" in widget.status.text()


def test_a_failed_propagation_is_an_error_and_loses_nothing(widget, qtbot, monkeypatch):
    widget.clicks.add([[0, 24, 31]])
    idle(qtbot, widget)
    before = widget.labels.data.copy()
    calls = {"n": 0}
    track = widget.model.track_frame

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("simulated failure")
        return track(*args, **kwargs)

    monkeypatch.setattr(widget.model, "track_frame", failing)
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    assert "simulated failure" in widget.status.text()
    assert widget.status.text().startswith("Error")
    np.testing.assert_array_equal(widget.labels.data, before)


def test_propagate_without_prompts_says_what_to_do(widget, qtbot):
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    assert "add a click" in widget.status.text()


def test_painted_frames_are_not_overwritten_unasked(widget, qtbot, monkeypatch):
    widget.clicks.add([[0, 24, 31]])
    idle(qtbot, widget)
    # the user paints object 3 by hand on frame 4
    widget.labels.selected_label = 3
    widget.labels.brush_size = 5
    widget.labels.paint((4, 10, 10), 3)
    assert widget.state.painted == {4}
    asked = []
    monkeypatch.setattr(
        widget, "ask_about_painted", lambda frames: asked.append(frames) or "cancel"
    )
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    assert asked == [[4]]
    assert (widget.labels.data[4] == 3).any()  # nothing ran

    monkeypatch.setattr(widget, "ask_about_painted", lambda frames: "use")
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    # the painted mask became object 3's prompt on frame 4: it is kept exactly there
    painted = widget.labels.data[4] == 3
    assert painted.any() and 4 in widget.tracker.objects[3].conditioning


def test_removing_an_object_erases_it(widget, qtbot):
    widget.clicks.add([[1, 24, 31]])
    idle(qtbot, widget)
    assert (widget.labels.data == 1).any()
    widget.remove_active_object()
    idle(qtbot, widget)
    assert not (widget.labels.data == 1).any()
    assert len(widget.clicks.data) == 0


def test_save_labels_and_resume_a_session(widget, qtbot, tmp_path, make_napari_viewer, stack):
    from napari_sam2.io import read_labels, read_prompts

    widget.clicks.add([[1, 24, 31]])
    idle(qtbot, widget)
    widget.add_object()
    widget.boxes.add_rectangles(np.array([[3, 38, 42], [3, 38, 60], [3, 54, 60], [3, 54, 42]]))
    idle(qtbot, widget)
    item = widget.object_list.item(1)
    item.setText("2: mother cell")
    widget.run_buttons["both"].click()
    idle(qtbot, widget)

    widget.save_labels(str(tmp_path / "labels.tif"))
    saved, axes = read_labels(tmp_path / "labels.tif")
    assert axes == "TYX"
    np.testing.assert_array_equal(saved, widget.labels.data)
    widget.save_labels(str(tmp_path / "labels.tif"))  # exists: refused, file unchanged
    assert "exists" in widget.status.text()

    widget.save_session(str(tmp_path / "session.json"))
    session = read_prompts(tmp_path / "session.json")
    assert {obj.id: obj.name for obj in session.objects} == {1: "object 1", 2: "mother cell"}
    assert session.objects[1].frames[3].box == (42.0, 38.0, 60.0, 54.0)

    # a new viewer, the same data: loading the session and propagating gives the same labels
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="cells")
    _, other = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    other.model = widget.model
    other._reset_session()
    other.load_session(str(tmp_path / "session.json"))
    idle(qtbot, other)
    assert other.state.objects == {1: "object 1", 2: "mother cell"}
    assert len(other.clicks.data) == 1 and len(other.boxes.data) == 1
    other.run_buttons["both"].click()
    idle(qtbot, other)
    np.testing.assert_array_equal(other.labels.data, widget.labels.data)


def test_a_2d_image_is_a_single_frame(make_napari_viewer, qtbot, widget, stack):
    viewer = make_napari_viewer()
    viewer.add_image(stack[2], name="one frame")
    _, single = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    single.model = widget.model
    single._reset_session()
    assert single.labels.data.shape == (64, 80)
    single.clicks.add([[24, 31]])
    idle(qtbot, single)
    engine = Tracker(
        widget.model, stack[2][None], contrast_limits=tuple(viewer.layers[0].contrast_limits)
    )
    engine.add_points(0, 1, [[31, 24]], [1])
    np.testing.assert_array_equal(single.labels.data, engine.labels()[0])
    assert (single.labels.data == 1).any()


def test_4d_data_propagates_along_the_chosen_axis_at_the_viewed_slice(
    make_napari_viewer, qtbot, widget, stack
):
    volume = np.stack([stack, stack[:, ::-1]], axis=1)  # (T, Z, Y, X), two different z slices
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="tzyx")
    viewer.dims.current_step = (0, 1, 0, 0)
    _, nd = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    nd.model = widget.model
    nd.axis_combo.setCurrentIndex(0)
    nd._reset_session()
    assert nd.view.video_axis == 0 and nd.view.fixed == [0, 1]
    nd.clicks.add([[1, 1, 64 - 24, 31]])
    idle(qtbot, nd)
    nd.run_buttons["forward"].click()
    idle(qtbot, nd)
    image = viewer.layers["tzyx"]
    engine = Tracker(widget.model, volume[:, 1], contrast_limits=tuple(image.contrast_limits))
    engine.add_points(1, 1, [[31, 64 - 24]], [1])
    for _ in engine.propagate("forward"):
        pass
    np.testing.assert_array_equal(nd.labels.data[:, 1], engine.labels())
    assert not nd.labels.data[:, 0].any()  # the other z slice is untouched


def test_a_trained_checkpoint_loads_with_its_configuration(
    make_napari_viewer, qtbot, stack, tmp_path
):
    """A file written by training (here the demo model saved as a fine-tune would be) is
    built from the configuration stored in it, at the size it was trained at, whatever the
    size menu shows."""
    from napari_sam2.model.demo import DEMO_CONFIG
    from napari_sam2.training import save_model

    path = save_model(build_model("demo"), tmp_path / "my-cells.pt")
    viewer = make_napari_viewer()
    viewer.add_image(stack, name="cells")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    widget.model_combo.setCurrentText("checkpoint file…")
    widget.checkpoint_edit.setText(str(path))
    widget.size_combo.setCurrentText("1024")
    widget.device_combo.setCurrentText("cpu")
    widget.load_button.click()
    qtbot.waitUntil(lambda: widget.tracker is not None, timeout=60_000)
    assert widget.model.config == DEMO_CONFIG
    widget.clicks.add([[0, 20, 25]])  # the first cell's centre on frame 0 (t, y, x)
    idle(qtbot, widget)
    engine = engine_for(widget, stack)
    engine.add_points(0, 1, [[25, 20]], [1])
    np.testing.assert_array_equal(widget.labels.data, engine.labels())
    assert (widget.labels.data[0] == 1).sum() > 100
