"""Regenerate docs/images/widget_tiles.png: the widget in a real napari viewer on a synthetic
1024 x 1024 time-lapse of ~15-pixel cells, six cells clicked on frame 0 and propagated forward
with the Propagate panel's Tiles option at 256 (the demo model's input size).

    xvfb-run -a python docs/make_tiles_screenshot.py
"""

import napari
from make_screenshots import HERE, wait_until  # the sibling script, beside this one
from qtpy.QtWidgets import QApplication

from napari_sam2 import synthetic


def main() -> None:
    stack = synthetic.timelapse(
        num_frames=5, height=1024, width=1024, num_cells=80, cell_radius=7.5, num_divisions=0
    )
    viewer = napari.Viewer()
    viewer.window.resize(1400, 900)
    viewer.add_image(stack.frames, name="large frames")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    app = QApplication.instance()
    widget.model_combo.setCurrentText("demo")
    widget.load_button.click()
    wait_until(app, lambda: widget.tracker is not None)
    ids = sorted(set(stack.labels[0].ravel()) - {0})[::12][:6]
    for n, label in enumerate(ids):
        y, x = (stack.labels[0] == label).nonzero()
        if n:
            widget.add_object()
        viewer.dims.current_step = (0, 0, 0)
        widget.clicks.add([[0, y.mean(), x.mean()]])
        wait_until(app, lambda: not widget.busy)
    wait_until(app, lambda: not widget.busy and widget._applied)
    widget.propagate_panel.tiles.combo.setCurrentText("256")
    widget.propagate("forward")
    wait_until(app, lambda: not widget.busy)
    viewer.dims.current_step = (4, 0, 0)
    HERE.mkdir(exist_ok=True)
    viewer.screenshot(HERE / "widget_tiles.png", canvas_only=False)
    print(f"wrote {HERE / 'widget_tiles.png'}")
    viewer.close()


if __name__ == "__main__":
    main()
