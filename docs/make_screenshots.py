"""Regenerate the screenshots in docs/images: the widget in a real napari viewer on the
synthetic time-lapse, after two clicks and a propagation.

    xvfb-run -a python docs/make_screenshots.py [--checkpoint FILE]

Without a checkpoint the model has random weights (the masks are then meaningless; the
screenshot shows the interface).
"""

import argparse
import tempfile
import time
from pathlib import Path

import napari
import torch
from qtpy.QtWidgets import QApplication

from napari_sam2 import synthetic
from napari_sam2.model import build_model

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
    checkpoint = args.checkpoint
    if checkpoint is None:
        model = build_model("sam2.1_hiera_tiny", image_size=int(args.image_size))
        with torch.no_grad():  # random weights, biased so that masks show up
            model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(8.0)
        checkpoint = Path(tempfile.mkdtemp()) / "sam2.1_hiera_tiny-random.pt"
        torch.save({"model": model.state_dict()}, checkpoint)

    viewer = napari.Viewer()
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-sam2", "timelapse")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    app = QApplication.instance()
    widget.model_combo.setCurrentText("checkpoint file…")
    widget.checkpoint_edit.setText(str(checkpoint))
    widget.size_combo.setCurrentText(args.image_size)
    widget.load_button.click()
    wait_until(app, lambda: widget.tracker is not None)

    truth = synthetic.timelapse().labels
    t = 0
    for label in sorted(set(truth[t].ravel()) - {0})[:2]:
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
