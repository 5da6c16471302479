"""What the widget tests share: the plugin's widget opened with the demo model, a model
method made to fail partway through a job (to check that the widget reports the error and loses
nothing), and a saved session replayed headless."""

import pytest


def fail_after(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, calls: int = 3) -> None:
    """Replace `owner.name` by a function that works `calls` times, as the original, then
    raises RuntimeError("simulated failure") on every call after."""
    original = getattr(owner, name)
    count = {"n": 0}

    def failing(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise RuntimeError("simulated failure")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)


def open_with_demo(viewer, qtbot) -> object:
    """The plugin's widget docked in `viewer`, with the shipped demo model loaded on the CPU."""
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    widget.model_combo.setCurrentText("demo")
    widget.device_combo.setCurrentText("cpu")
    widget.load_button.click()
    qtbot.waitUntil(lambda: widget.tracker is not None and not widget.busy, timeout=60_000)
    return widget


def replay_saved_session(widget, path, image_name: str, frames) -> tuple[object, bool]:
    """Save the widget's session to `path` and replay its log in a fresh headless tracker on
    `frames` (with the image layer's contrast limits): (the replayed labels, whether their
    digest equals the one saved)."""
    from napari_sam2.engine import Tracker
    from napari_sam2.session.files import read_session, write_session
    from napari_sam2.session.headless import replay_log, session_log

    write_session(path, widget.session)
    prompts, _ = read_session(path)
    ops = session_log(prompts, path.name, prompts_only=False)
    limits = tuple(widget.viewer.layers[image_name].contrast_limits)
    fresh = Tracker(widget.model, frames, contrast_limits=limits)
    session, same = replay_log(fresh, prompts, ops, path.name)
    return session.tracker.labels(), same


def idle(qtbot, widget, timeout=60_000):
    """Wait until the widget is idle, then once more after its queued signals (labels
    refresh, sync) ran."""
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)
    qtbot.wait(50)
    qtbot.waitUntil(lambda: not widget.busy, timeout=timeout)
