"""Click to mask in the real dock widget: a further click on an encoded frame, and the first
click on a frame the user has looked at for a few seconds (background encoding).

Run under a display (``xvfb-run -a python benchmarks/bench_widget_click.py``). Times are from
adding the point to the clicks layer (as a mouse click does) to the labels update reaching
the canvas (`labels_update`, or `set_data` for a full refresh) and to the next canvas draw.
With ``--checkpoint tiny`` a random-weight sam2.1_hiera_tiny checkpoint at 1024 is written to
a temporary folder and loaded through the widget's checkpoint option.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import napari
import numpy as np
import torch
from qtpy.QtWidgets import QApplication

from napari_sam2._qt import quick_clicks
from napari_sam2._qt.engine_panel import EnginePanel
from napari_sam2.engine.precision import PRECISIONS
from napari_sam2.synthetic import timelapse


def random_tiny(folder: Path, size: int) -> Path:
    from napari_sam2.model import build_model

    torch.manual_seed(0)  # the same random weights, so the same masks, in every run
    model = build_model("sam2.1_hiera_tiny", image_size=size)
    with torch.no_grad():  # "object present", so clicks give masks
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(8.0)
    path = folder / "sam2.1_hiera_tiny-random.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


class Clock:
    """When the labels layer last reached the canvas and when the canvas last drew."""

    def __init__(self, viewer, labels) -> None:
        self.update = self.draw = None
        labels.events.labels_update.connect(self._update)
        labels.events.set_data.connect(self._update)
        viewer.window._qt_viewer.canvas._scene_canvas.events.draw.connect(self._draw)

    def _update(self, event=None) -> None:
        self.update = time.perf_counter()

    def _draw(self, event=None) -> None:
        self.draw = time.perf_counter()

    def reset(self) -> None:
        self.update = self.draw = None


def pump(seconds: float) -> None:
    app, end = QApplication.instance(), time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)


def click(widget, clock, t: int, y: float, x: float, timeout: float = 120.0):
    """(ms to the labels update, ms to the draw after it) for one click on frame t, or None
    when the click changed nothing on screen (a random-weight model's mask can lie wholly
    under another object's)."""
    app = QApplication.instance()
    clock.reset()
    widget.status.setText("")
    start = time.perf_counter()
    widget.clicks.add([[t, y, x]])
    end, settled = start + timeout, None
    while time.perf_counter() < end:
        app.processEvents()
        if clock.update is not None and clock.draw is not None and clock.draw > clock.update:
            break
        if not widget.busy and widget.status.text().startswith("Segmented"):
            settled = settled or time.perf_counter()
            if time.perf_counter() - settled > 1.0:
                return None
        time.sleep(0.0005)
    while widget.busy:
        app.processEvents()
    if clock.update is None or clock.draw is None:
        raise SystemExit(f"no mask within {timeout:.0f} s: {widget.status.text()}")
    return (clock.update - start) * 1e3, (clock.draw - start) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", choices=("demo", "tiny"), default="demo")
    parser.add_argument("--size", type=int, default=1024, help="input size of --checkpoint tiny")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--shape", type=int, default=512, help="frame height and width")
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--view-seconds", type=float, default=3.0)
    parser.add_argument("--viewed", type=int, default=4, help="frames viewed, then clicked")
    parser.add_argument("--full-refresh", action="store_true", help="as before: refresh all")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--no-background", action="store_true", help="untick background encoding (to compare)"
    )
    parser.add_argument(
        "--precision",
        default=None,
        choices=PRECISIONS,
        help="set the widget's Precision box (default: left as a user finds it, fast)",
    )
    parser.add_argument(
        "--budget-ms", type=float, default=None, help="quick_clicks.BUDGET_MS (default: as set)"
    )
    parser.add_argument("--screenshot", default=None, help="save the window as a PNG at the end")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.budget_ms is not None:
        quick_clicks.BUDGET_MS = args.budget_ms
    if args.full_refresh:
        import napari_sam2._qt.widget as widget_module

        widget_module.show_frames = lambda layer, view, frames: layer.refresh()

    stack = timelapse(num_frames=args.frames, height=args.shape, width=args.shape, seed=1)
    viewer = napari.Viewer(show=True)
    viewer.add_image(stack.frames, name="cells")
    _, widget = viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    with tempfile.TemporaryDirectory() as folder:
        if args.checkpoint == "tiny":
            widget.model_combo.setCurrentText("checkpoint file…")
            widget.checkpoint_edit.setText(str(random_tiny(Path(folder), args.size)))
            widget.size_combo.setCurrentText(str(args.size))
        else:
            widget.model_combo.setCurrentText("demo")
        widget.device_combo.setCurrentText("cpu")
        engine = next(p for p in widget.panels if isinstance(p, EnginePanel))
        if args.precision is not None:
            engine.precision.setCurrentText(args.precision)
        if args.no_background:
            engine.background.setChecked(False)
        viewer.dims.set_point(0, 0)  # the frame the user looks at while the model loads
        widget.load_button.click()
        while widget.tracker is None:
            pump(0.05)
    clock = Clock(viewer, widget.labels)
    inline = []
    run_here = quick_clicks.run_here

    def counted(*a, **k):
        inline.append(run_here(*a, **k))
        return inline[-1]

    quick_clicks.run_here = counted
    centres = [np.argwhere(stack.labels[0] == i).mean(axis=0) for i in np.unique(stack.labels[0])]
    centres = [(float(y), float(x)) for y, x in centres[1:]]  # the cells on frame 0
    y, x = centres[0]
    pump(args.view_seconds)
    first = click(widget, clock, 0, y, x)
    further = []
    for i in range(args.clicks):  # a new object on the next cell: each changes the labels
        widget.add_object()
        further.append(click(widget, clock, 0, *centres[(i + 1) % len(centres)]))
    t = min(args.frames // 2, max(args.frames - args.viewed, 1))
    viewed_frames = list(range(t, min(t + args.viewed, args.frames)))
    viewed = []
    for frame in viewed_frames:
        viewer.dims.set_point(0, frame)
        pump(args.view_seconds)
        encoded = widget.tracker.is_encoded(frame)
        widget.add_object()
        viewed.append((click(widget, clock, frame, y, x), encoded))
    name = widget.model.config.name
    print(
        f"{name} at {widget.model.image_size}, {args.shape}x{args.shape} frames, "
        f"{widget.tracker.precision}, {'full refresh' if args.full_refresh else 'plane refresh'}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if first is not None:
        print(f"first click on frame 0 viewed {args.view_seconds:.0f} s: {first[0]:.0f} ms")
    unseen = further.count(None)
    further = [f for f in further if f is not None]
    if unseen:
        print(f"{unseen} further clicks changed nothing on screen (not timed)")
    for label, index in (("labels update", 0), ("canvas drawn", 1)):
        values = [f[index] for f in further]
        print(
            f"further click ({label}): median {statistics.median(values):.0f} ms, "
            f"min {min(values):.0f}, max {max(values):.0f} (n={len(values)})"
        )
    expected = quick_clicks.expected_ms(widget.model)
    print(
        f"decoder-only clicks: {expected:.1f} ms (median of the last 5); "
        f"{sum(inline)} of {len(inline)} clicks ran in the GUI thread "
        f"(budget {quick_clicks.BUDGET_MS:.0f} ms)"
    )
    for (times, encoded), frame in zip(viewed, viewed_frames, strict=True):
        shown = "changed nothing" if times is None else f"{times[0]:.0f} ms to labels"
        print(
            f"first click on frame {frame} viewed {args.view_seconds:.0f} s "
            f"(encoded before the click: {encoded}): {shown}"
        )
    timed = [times[0] for times, _ in viewed if times is not None]
    if timed:
        print(
            f"first click on a viewed frame: median {statistics.median(timed):.0f} ms, "
            f"max {max(timed):.0f} (n={len(timed)})"
        )
    if args.screenshot:
        viewer.screenshot(args.screenshot, canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    main()
