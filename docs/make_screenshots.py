"""Regenerate the screenshots in docs/images: the widget in a real napari viewer on the
synthetic time-lapse, after two clicks and a propagation.

    xvfb-run -a python docs/make_screenshots.py [--checkpoint FILE]

Without a checkpoint it uses the small "demo" model that ships with the plugin.
"""

import argparse
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_sam2 import synthetic

HERE = Path(__file__).parent / "images"


def wait_until(app, condition, timeout: float = 600) -> None:
    start = time.time()
    while not condition():
        app.processEvents()
        time.sleep(0.02)
        if time.time() - start > timeout:
            raise TimeoutError("the widget did not finish in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--image-size", default="256")
    args = parser.parse_args()
    viewer = napari.Viewer()
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-sam2", "timelapse")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    app = QApplication.instance()
    if args.checkpoint is None:
        widget.model_combo.setCurrentText("demo")
    else:
        widget.model_combo.setCurrentText("checkpoint file…")
        widget.checkpoint_edit.setText(args.checkpoint)
        widget.size_combo.setCurrentText(args.image_size)
    widget.load_button.click()
    wait_until(app, lambda: widget.tracker is not None)

    truth = synthetic.timelapse().labels
    t = 0
    for label in sorted(set(truth[t].ravel()) - {0})[:4]:
        y, x = (truth[t] == label).nonzero()
        if label != 1:
            widget.add_object()
        widget.clicks.add([[t, y.mean(), x.mean()]])
        wait_until(app, lambda: not widget.busy)
    wait_until(app, lambda: not widget.busy and widget._applied)
    widget.propagate("forward")
    wait_until(app, lambda: not widget.busy)
    viewer.dims.current_step = (5, 0, 0)
    HERE.mkdir(exist_ok=True)
    viewer.screenshot(HERE / "widget.png", canvas_only=False)
    print(f"wrote {HERE / 'widget.png'}")
    viewer.close()


if __name__ == "__main__":
    main()
