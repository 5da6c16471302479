"""What the widget tests share: the plugin's widget opened with the demo model, and a model
method made to fail partway through a job, to check that the widget reports the error and loses
nothing."""

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
    qtbot.waitUntil(lambda: widget.tracker is not None, timeout=60_000)
    return widget
