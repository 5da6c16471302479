"""Regenerate the screenshots in docs/images: the widget in a real napari viewer on the
synthetic time-lapse after four clicks and a propagation (widget.png), and on the synthetic
nuclei z-stack after a click on each of four nuclei at its largest slice and propagation both
ways (widget_zstack.png).

    xvfb-run -a python docs/make_screenshots.py [--checkpoint FILE] [--sample zstack]

Without a checkpoint it uses the small "demo" model that ships with the plugin.
"""

import argparse
import time
from pathlib import Path

import napari
import numpy as np
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


def every_cell(viewer, widget, app) -> None:
    """widget_cells.png: seeds from a Labels layer (the sample's true cells on frame 0, as
    another plugin would give them), Track all with divisions, the Tracks layer and the
    review list with its first entry chosen."""
    from napari_sam2._qt.cells_panel import CellsPanel

    panel = next(p for p in widget.panels if isinstance(p, CellsPanel))
    truth = synthetic.timelapse().labels
    seeds = viewer.add_labels(truth, name="labels from another plugin", visible=False)
    viewer.dims.current_step = (0, 0, 0)
    panel.seeds_from_layer(seeds.name)
    wait_until(app, lambda: not widget.busy)
    panel.track_all()
    wait_until(app, lambda: not widget.busy)
    viewer.layers.selection.active = widget.labels
    panel.review.step(1)
    HERE.mkdir(exist_ok=True)
    viewer.screenshot(HERE / "widget_cells.png", canvas_only=False)
    print(f"wrote {HERE / 'widget_cells.png'}")
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--image-size", default="256")
    parser.add_argument("--sample", choices=("timelapse", "zstack", "cells"), default="timelapse")
    args = parser.parse_args()
    viewer = napari.Viewer()
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-sam2", "timelapse" if args.sample == "cells" else args.sample)
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
    if args.sample == "cells":
        return every_cell(viewer, widget, app)

    if args.sample == "timelapse":
        truth = synthetic.timelapse().labels
        clicks = [(0, label) for label in sorted(set(truth[0].ravel()) - {0})[:4]]
        direction, shown = "forward", 5
    else:
        truth = synthetic.zstack().labels
        ids = sorted(set(truth.ravel()) - {0})[:4]
        clicks = [(int(np.argmax((truth == i).sum(axis=(1, 2)))), i) for i in ids]
        direction, shown = "both", clicks[0][0]
    for n, (t, label) in enumerate(clicks):
        y, x = (truth[t] == label).nonzero()
        if n:
            widget.add_object()
        viewer.dims.current_step = (t, 0, 0)
        widget.clicks.add([[t, y.mean(), x.mean()]])
        wait_until(app, lambda: not widget.busy)
    wait_until(app, lambda: not widget.busy and widget._applied)
    widget.propagate(direction)
    wait_until(app, lambda: not widget.busy)
    viewer.dims.current_step = (shown, 0, 0)
    HERE.mkdir(exist_ok=True)
    name = "widget.png" if args.sample == "timelapse" else "widget_zstack.png"
    viewer.screenshot(HERE / name, canvas_only=False)
    print(f"wrote {HERE / name}")
    viewer.close()


if __name__ == "__main__":
    main()
