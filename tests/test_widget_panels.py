"""The dock widget's panels in a real napari viewer, driven as a user would with the shipped
demo model: a click shows only the displayed plane, background encoding, propagation
progress in the dock, every cell (segment all, seeds from a Labels layer, track all), the
review list and the Tracks layer."""

import threading

import numpy as np
import pytest

from napari_sam2.synthetic import moving_cells, timelapse
from widget_helpers import fail_after, idle, replay_saved_session

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def stack():
    frames, _ = moving_cells(num_frames=6, height=64, width=80, centers=((20, 25), (40, 55)))
    return frames


def add_widget(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    return widget


@pytest.fixture
def widget(make_napari_viewer, qtbot, stack):
    viewer = make_napari_viewer(show=True)  # a canvas that has drawn the labels
    viewer.add_image(stack, name="cells")
    widget = add_widget(viewer)
    widget.model_combo.setCurrentText("demo")
    widget.device_combo.setCurrentText("cpu")
    widget.load_button.click()
    qtbot.waitUntil(lambda: widget.tracker is not None and not widget.busy, timeout=60_000)
    return widget


class Refreshes:
    """Counts how the labels layer was redrawn: full re-slices and partial updates."""

    def __init__(self, layer):
        self.full = 0
        self.partial: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        layer.events.set_data.connect(self._full)
        layer.events.labels_update.connect(self._partial)

    def _full(self, event):
        self.full += 1

    def _partial(self, event):
        self.partial.append((tuple(event.data.shape), tuple(event.offset)))


def test_a_click_redraws_only_the_changed_box_of_the_displayed_plane(widget, qtbot):
    viewer, labels = widget.viewer, widget.labels
    viewer.dims.set_point(0, 2)
    seen = Refreshes(labels)
    widget.clicks.add([[2, 24, 31]])
    idle(qtbot, widget)
    assert (labels.data[2] == 1).any() and not labels.data[[0, 1, 3, 4, 5]].any()
    assert seen.full == 0
    assert len(seen.partial) == 1
    (height, width), (y0, x0) = seen.partial[0]
    rows, cols = np.nonzero(labels.data[2])
    assert (y0, x0) == (rows.min(), cols.min())
    assert (height, width) == (rows.max() - y0 + 1, cols.max() - x0 + 1)
    # what is on screen is what a full refresh would show
    shown = labels._slice.image.view.copy()
    labels.refresh()
    np.testing.assert_array_equal(shown, labels._slice.image.view)

    # a click on a frame that is not displayed draws nothing
    seen.partial.clear()
    seen.full = 0
    widget.clicks.add([[4, 40, 50]])
    idle(qtbot, widget)
    assert (labels.data[4] == 1).any()
    assert seen.full == 0 and seen.partial == []
    viewer.dims.set_point(0, 4)  # navigating there shows it
    np.testing.assert_array_equal(
        labels._slice.image.view, labels._raw_to_displayed(labels.data[4])
    )


def panel_of(widget, kind):
    return next(p for p in widget.panels if isinstance(p, kind))


def engine_panel(widget):
    from napari_sam2._qt.engine_panel import EnginePanel

    return next(p for p in widget.panels if isinstance(p, EnginePanel))


def test_the_viewed_frame_is_encoded_in_a_worker_then_its_neighbours(widget, qtbot):
    panel = engine_panel(widget)
    tracker = widget.tracker
    assert panel.runs_at.text() == f"{widget.model.image_size} px input, cpu, float32"
    widget.viewer.dims.set_point(0, 3)
    qtbot.waitUntil(lambda: all(tracker.is_encoded(t) for t in (1, 2, 3, 4, 5)), timeout=30_000)
    assert not tracker.is_encoded(0)  # two neighbours on each side, no more
    assert panel.encoder.threads and threading.get_ident() not in panel.encoder.threads
    assert "in the feature cache" in panel.encoding.text()
    # a first click on the viewed frame finds its features: no encode on the click
    misses = tracker.features.misses
    widget.clicks.add([[3, 24, 31]])
    idle(qtbot, widget)
    assert (widget.labels.data[3] == 1).any() and tracker.features.misses == misses


def test_a_click_does_not_wait_behind_a_background_encode(widget, qtbot, monkeypatch):
    panel = engine_panel(widget)
    panel.encoder.neighbours = 0
    tracker = widget.tracker
    widget.viewer.dims.set_point(0, 1)
    qtbot.waitUntil(lambda: tracker.is_encoded(1), timeout=30_000)
    started, release = threading.Event(), threading.Event()
    compute = tracker._compute_features

    def slow(t):
        if t == 4:
            started.set()
            release.wait(timeout=60)
        return compute(t)

    monkeypatch.setattr(tracker, "_compute_features", slow)
    widget.viewer.dims.set_point(0, 4)
    qtbot.waitUntil(started.is_set, timeout=30_000)
    try:
        # frame 4 is being encoded; a click on frame 1 is served at once all the same
        widget.clicks.add([[1, 24, 31]])
        qtbot.waitUntil(lambda: (widget.labels.data[1] == 1).any(), timeout=10_000)
        assert not release.is_set() and panel.encoder.running == 4
    finally:
        release.set()
    qtbot.waitUntil(lambda: tracker.is_encoded(4), timeout=30_000)
    idle(qtbot, widget)


def slow_background_encodes(model, seconds=0.3):
    """Background encodes (only) take `seconds` per image-encoder block; returns the hooks."""
    import time

    def slow(module, args):
        if threading.current_thread().name == "sam2-background-encode":
            time.sleep(seconds)

    return [b.register_forward_pre_hook(slow) for b in model.image_encoder.trunk.blocks]


def test_navigating_away_or_propagating_stops_a_background_encode(widget, qtbot):
    from napari_sam2._qt import background_encoding
    from napari_sam2._qt.background_encoding import SETTLE_MS

    encoder = engine_panel(widget).encoder
    tracker = widget.tracker
    widget.clicks.add([[2, 24, 31]])
    idle(qtbot, widget)
    background_encoding.make_cancellable(widget.model)  # our check before the slow hook
    qtbot.wait(SETTLE_MS * 2)
    qtbot.waitUntil(lambda: encoder.running is None, timeout=30_000)
    tracker.features.clear()
    encoder.neighbours = 0
    hooks = slow_background_encodes(widget.model)
    try:
        widget.viewer.dims.set_point(0, 4)
        qtbot.waitUntil(lambda: encoder.running == 4, timeout=10_000)
        widget.viewer.dims.set_point(0, 2)  # away: frame 4 stops, frame 2 is encoded
        qtbot.waitUntil(lambda: tracker.is_encoded(2), timeout=30_000)
        assert encoder.cancelled == [4] and not tracker.is_encoded(4)

        encoder.neighbours = 1  # frame 0, then its neighbour 1
        widget.viewer.dims.set_point(0, 0)
        qtbot.waitUntil(lambda: encoder.running == 1, timeout=30_000)
        widget.run_buttons["forward"].click()  # the propagation gets the processor
        qtbot.waitUntil(lambda: encoder.cancelled == [4, 1], timeout=10_000)
        idle(qtbot, widget)
        assert "finished" in widget.status.text()

        # a click on the frame on view waits for its encode, which goes on
        encoder.neighbours = 0
        tracker.features.clear()
        widget.viewer.dims.set_point(0, 3)
        qtbot.waitUntil(lambda: encoder.running == 3, timeout=10_000)
        misses, stopped = tracker.features.misses, list(encoder.cancelled)
        widget.clicks.add([[3, 40, 50]])
        idle(qtbot, widget)
        assert encoder.cancelled == stopped and tracker.features.misses == misses
        assert (widget.labels.data[3] == 1).any()
    finally:
        for hook in hooks:
            hook.remove()
    qtbot.waitUntil(lambda: encoder.running is None, timeout=30_000)


def test_budgets_are_shown_and_set_on_the_tracker(widget, qtbot):
    panel = engine_panel(widget)
    tracker = widget.tracker
    assert panel.feature_budget.value() == tracker.features.budget_bytes >> 20
    panel.feature_budget.setValue(3)
    panel.result_budget.setValue(5)
    assert tracker.features.budget_bytes == 3 << 20 and tracker.result_budget_bytes == 5 << 20
    widget.start_session()  # a new session keeps the user's budgets
    assert widget.tracker is not tracker
    assert widget.tracker.features.budget_bytes == 3 << 20
    panel.background.setChecked(False)
    widget.viewer.dims.set_point(0, 5)
    qtbot.wait(400)
    assert not widget.tracker.is_encoded(5)


# -- every cell ---------------------------------------------------------------------------


@pytest.fixture
def dividing():
    return timelapse(
        num_frames=8, height=96, width=96, num_cells=3, num_divisions=1, leaving=False, seed=3
    )


@pytest.fixture
def cells_widget(make_napari_viewer, qtbot, dividing):
    viewer = make_napari_viewer()
    viewer.add_image(dividing.frames, name="cells")
    widget = add_widget(viewer)
    engine_panel(widget).background.setChecked(False)
    widget.model_combo.setCurrentText("demo")
    widget.device_combo.setCurrentText("cpu")
    widget.load_button.click()
    qtbot.waitUntil(lambda: widget.tracker is not None and not widget.busy, timeout=60_000)
    return widget


def cells_panel(widget):
    from napari_sam2._qt.cells_panel import CellsPanel

    return panel_of(widget, CellsPanel)


def best_iou(mask, labels):
    ids = np.unique(labels[mask])
    ids = ids[ids != 0]
    return max(
        ((mask & (labels == i)).sum() / (mask | (labels == i)).sum() for i in ids), default=0
    )


def test_segment_all_makes_an_object_of_every_mask_on_the_viewed_frame(
    cells_widget, qtbot, dividing
):
    from napari_sam2.engine import Tracker
    from napari_sam2.engine.automatic_masks import settings_for_model
    from napari_sam2.engine.cell_tracking import CellTracker

    widget, panel = cells_widget, cells_panel(cells_widget)
    widget.viewer.dims.set_point(0, 2)
    panel.segment_all_button.click()
    idle(qtbot, widget)
    assert "Segment all" in widget.status.text(), widget.status.text()
    found = widget.labels.data[2]
    assert not widget.labels.data[[0, 1, 3]].any()
    ids = [int(i) for i in np.unique(found) if i]
    assert len(ids) >= 2 and all((2, i) in widget.session.prompts for i in ids)
    # the engine's automatic seeds on the same frame, each object prompted with its mask
    image = widget.viewer.layers["cells"]
    engine = Tracker(widget.model, dividing.frames, contrast_limits=tuple(image.contrast_limits))
    settings = settings_for_model(widget.model.config.name)
    seeds = CellTracker(engine, mask_settings=settings).automatic_seed_labels(2)
    assert len(np.unique(seeds)) - 1 == len(ids)
    for value in np.unique(seeds)[1:]:
        engine.add_mask(2, int(value), seeds == value)
    np.testing.assert_array_equal(found, engine.labels()[2])


def test_seeds_from_a_labels_layer_then_track_all_with_tracks_and_review(
    cells_widget, qtbot, dividing
):
    widget, panel = cells_widget, cells_panel(cells_widget)
    viewer = widget.viewer
    assert panel.divisions()  # auto: on along time
    viewer.add_labels(dividing.labels, name="from another plugin")
    assert panel.seeds_combo.currentText() == "from another plugin"
    viewer.dims.set_point(0, 0)
    panel.seeds_button.click()
    idle(qtbot, widget)
    truth = dividing.labels[0]
    seeds = [int(i) for i in np.unique(truth) if i]
    assert sorted(int(i) for i in np.unique(widget.labels.data[0]) if i) == seeds
    for i in seeds:  # id = label value, prompted with its mask
        assert np.mean(widget.labels.data[0][truth == i] == i) > 0.9

    steps = []
    panel.progress.valueChanged.connect(steps.append)
    panel.track_button.click()
    idle(qtbot, widget, timeout=120_000)
    assert "Tracked" in widget.status.text(), widget.status.text()
    assert steps[-1] == panel.progress.maximum() == 8 and len(steps) == 8
    labels = widget.labels.data
    assert all(labels[t].any() for t in range(8))
    tracks = viewer.layers["SAM2 tracks"]
    assert set(tracks.data[:, 0].astype(int)) == {int(i) for i in np.unique(labels) if i}
    assert set(panel.measurements["object"]) == set(tracks.data[:, 0].astype(int))
    for t in (0, 5):  # the labels' features: each object's measurements on the frame shown
        viewer.dims.set_point(0, t)
        features = widget.labels.features
        ids, counts = np.unique(labels[t], return_counts=True)
        assert list(features["index"]) == list(ids[1:])
        np.testing.assert_allclose(features["area"], counts[1:])
        assert {"intensity_mean", "eccentricity", "solidity", "parent"} <= set(features)
    for daughter, parents in tracks.graph.items():
        assert widget.session.objects[daughter].parent == parents[0]
    assert panel.review.list.count() == len(panel.review.items)


def test_a_session_saved_after_track_all_replays_to_its_labels(
    cells_widget, qtbot, dividing, tmp_path
):
    widget, panel = cells_widget, cells_panel(cells_widget)
    widget.viewer.add_labels(dividing.labels, name="from another plugin")
    widget.viewer.dims.set_point(0, 0)
    panel.seeds_button.click()
    idle(qtbot, widget)
    panel.track_button.click()
    idle(qtbot, widget, timeout=120_000)
    saved = np.array(widget.labels.data)
    assert len(np.unique(saved)) > 2
    replayed, same = replay_saved_session(widget, tmp_path / "cells.json", "cells", dividing.frames)
    assert same
    np.testing.assert_array_equal(replayed, saved)


def test_cancelling_track_all_puts_the_labels_back(cells_widget, qtbot, dividing, monkeypatch):
    import napari_sam2._qt.cells_panel as cells_module

    made = []
    original = cells_module.CellTracker
    monkeypatch.setattr(
        cells_module, "CellTracker", lambda *a, **k: made.append(k) or original(*a, **k)
    )
    widget, panel = cells_widget, cells_panel(cells_widget)
    panel.reseed_box.setValue(3)
    panel.divisions_combo.setCurrentText("off")
    widget.viewer.add_labels(dividing.labels, name="seeds")
    widget.viewer.dims.set_point(0, 3)
    panel.seeds_button.click()
    idle(qtbot, widget)
    before = widget.labels.data.copy()
    panel.progress.valueChanged.connect(lambda value: value == 2 and panel.cancel_button.click())
    panel.track_button.click()
    idle(qtbot, widget, timeout=120_000)
    assert "cancelled" in widget.status.text()
    np.testing.assert_array_equal(widget.labels.data, before)
    assert "SAM2 tracks" not in widget.viewer.layers
    assert made[-1]["reseed_every"] == 3 and made[-1]["divisions"] is False


def test_review_entries_jump_and_clear_after_a_fix_and_a_propagation(cells_widget, qtbot):
    from napari_sam2.engine.review import ReviewItem

    widget, review = cells_widget, cells_panel(cells_widget).review
    review.show_items(
        [
            ReviewItem(2, 5, "lost", 1.0, "empty mask"),
            ReviewItem(1, 3, "area jump", 0.7),
            ReviewItem(1, 5, "low score", 0.3),
        ]
    )
    assert review.list.count() == 3
    review.list.setCurrentRow(1)
    assert widget.viewer.dims.current_step[0] == 3
    assert widget.objects_panel.active == 1 and widget.labels.selected_label == 1
    review.step(-1)
    assert widget.viewer.dims.current_step[0] == 5 and widget.objects_panel.active == 2
    from app_model.types import KeyBinding

    keymap = widget.viewer.keymap  # the viewer's keys walk the list
    keymap[KeyBinding.from_str("Shift-J")](widget.viewer)
    keymap[KeyBinding.from_str("Shift-J")](widget.viewer)
    assert review.list.currentRow() == 2 and widget.viewer.dims.current_step[0] == 5
    keymap[KeyBinding.from_str("Shift-K")](widget.viewer)
    assert review.list.currentRow() == 1 and widget.viewer.dims.current_step[0] == 3
    review.list.setCurrentRow(2)

    # a click on frame 5 alone does not clear it; propagating after it does
    widget.clicks.add([[5, 40, 40]])
    idle(qtbot, widget)
    assert review.list.count() == 3
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    assert [(i.frame, i.obj_id) for i in review.items] == [(3, 1)]
    assert review.list.count() == 1


def test_propagation_progress_is_in_the_dock_and_the_size_is_the_models(widget, qtbot):
    assert widget.size_combo.currentText() == str(widget.model.image_size)
    panel = widget.propagate_panel
    widget.viewer.dims.set_point(0, 1)
    widget.clicks.add([[1, 24, 31]])
    idle(qtbot, widget)
    values = []
    panel.progress_bar.valueChanged.connect(values.append)
    seen = Refreshes(widget.labels)
    widget.run_buttons["forward"].click()
    idle(qtbot, widget)
    assert panel.progress_bar.maximum() == 5 and values == [1, 2, 3, 4, 5]
    assert (widget.labels.data[1:] == 1).any(axis=(1, 2)).all()
    # frame by frame only the displayed plane was sent; one full refresh at the end
    assert seen.full == 1 and len(seen.partial) <= 1


def test_a_quick_click_on_an_encoded_frame_runs_without_a_worker(widget, qtbot, monkeypatch):
    from napari_sam2._qt import quick_clicks

    viewer = widget.viewer
    viewer.dims.set_point(0, 2)
    qtbot.waitUntil(lambda: widget.tracker.is_encoded(2), timeout=30_000)
    widget.clicks.add([[2, 24, 31]])  # the first click is measured in a worker
    idle(qtbot, widget)
    assert quick_clicks.expected_ms(widget.model) is not None
    monkeypatch.setattr(quick_clicks, "BUDGET_MS", 1e6)  # however busy this machine is
    started = []
    monkeypatch.setattr(widget, "run_job", lambda worker, done=None: started.append(worker))
    seen = Refreshes(widget.labels)
    widget.clicks.add([[2, 40, 50]])
    qtbot.waitUntil(lambda: (2, 1) in widget._applied and len(widget._applied[2, 1].points) == 2)
    assert started == [] and not widget.busy
    assert len(seen.partial) == 1 and seen.full == 0
    # too slow a model (or a frame not encoded) goes to a worker
    monkeypatch.setattr(quick_clicks, "BUDGET_MS", 0.0)
    widget.clicks.add([[2, 30, 60]])
    qtbot.waitUntil(lambda: len(started) == 1)


def test_every_cell_on_a_single_2d_image(make_napari_viewer, qtbot, dividing):
    viewer = make_napari_viewer()
    viewer.add_image(dividing.frames[0], name="one frame")
    viewer.add_labels(dividing.labels[0], name="seeds")
    widget = add_widget(viewer)
    engine_panel(widget).background.setChecked(False)
    widget.model_combo.setCurrentText("demo")
    widget.load_button.click()
    qtbot.waitUntil(lambda: widget.tracker is not None and not widget.busy, timeout=60_000)
    panel = cells_panel(widget)
    panel.seeds_from_layer("seeds")
    idle(qtbot, widget)
    panel.track_button.click()
    idle(qtbot, widget)
    assert "Tracked" in widget.status.text(), widget.status.text()
    seeds = [int(i) for i in np.unique(dividing.labels[0]) if i]
    assert sorted(int(i) for i in np.unique(widget.labels.data) if i) == seeds
    tracks = viewer.layers["SAM2 tracks"]
    assert sorted(set(tracks.data[:, 0].astype(int))) == seeds and not tracks.data[:, 1].any()
    assert list(widget.labels.features["index"]) == seeds


def test_a_failed_track_all_is_an_error_and_puts_the_labels_back(
    cells_widget, qtbot, dividing, monkeypatch
):
    widget, panel = cells_widget, cells_panel(cells_widget)
    widget.viewer.add_labels(dividing.labels, name="seeds")
    widget.viewer.dims.set_point(0, 0)
    panel.seeds_button.click()
    idle(qtbot, widget)
    before = widget.labels.data.copy()
    fail_after(monkeypatch, widget.model, "track_frame", calls=3)
    panel.track_button.click()
    idle(qtbot, widget)
    assert widget.status.text().startswith("Error: Tracking every cell failed")
    assert "simulated failure" in widget.status.text()
    np.testing.assert_array_equal(widget.labels.data, before)
    assert "SAM2 tracks" not in widget.viewer.layers and not panel.cancel_button.isEnabled()
