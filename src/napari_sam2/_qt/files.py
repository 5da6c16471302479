"""The widget's files: saving the label volume, saving and resuming a session (objects
and prompts as the prompts JSON that the command line reads too)."""

import numpy as np
import pandas as pd
from qtpy.QtWidgets import QFileDialog

from ..engine import VideoAxisView
from ..errors import SAM2Error
from ..io import check_prompts_fit, prompts_from_tracker, read_prompts, write_labels, write_prompts
from ..io.prompts import Normalization


def video_axis_name(image, view: VideoAxisView) -> str:
    """ "Z" when the propagated axis is labelled z, else "T" (for label file axes)."""
    if view.video_axis is None:
        return "T"
    label = str(image.axis_labels[view.video_axis]).upper()
    return "Z" if label.startswith("Z") else "T"


class FilesMixin:
    """Save / load actions of `SAM2Widget` (uses its tracker, view, layers and state)."""

    def _ask_path(self, save: bool, title: str, filters: str) -> str:
        dialog = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
        path, _ = dialog(self, title, "", filters)
        return path

    def _ask_save_labels(self) -> None:
        path = self._ask_path(True, "Save labels", "TIFF (*.tif *.tiff)")
        if path:
            self.save_labels(path, overwrite=True)

    def _ask_save_session(self) -> None:
        path = self._ask_path(True, "Save session", "JSON (*.json)")
        if path:
            self.save_session(path)

    def _ask_load_session(self) -> None:
        path = self._ask_path(False, "Load session", "JSON (*.json)")
        if path:
            self.load_session(path)

    def save_labels(self, path: str, overwrite: bool = False) -> None:
        """The label volume of the current session as a compressed TIFF (atomic write)."""
        if self.tracker is None:
            self._say("Nothing to save yet.")
            return
        axes = video_axis_name(self.image, self.view) + "YX"
        try:
            written = write_labels(path, self.tracker.labels(), axes=axes, overwrite=overwrite)
        except SAM2Error as error:
            self._failed(error)
            return
        self._say(f"Labels saved to {written}.")

    def save_session(self, path: str) -> None:
        """Objects, prompts, model and normalization as a prompts JSON."""
        if self.tracker is None:
            self._say("Nothing to save yet.")
            return
        image = self.image
        prompts = prompts_from_tracker(
            self.tracker,
            model=self.model.config.name,
            video_axis=self.view.video_axis,
            normalization=Normalization(contrast_limits=tuple(image.contrast_limits))
            if not image.rgb
            else None,
        )
        for obj_id, name in self.state.objects.items():
            prompts.object(obj_id).name = name
        try:
            write_prompts(path, prompts)
        except SAM2Error as error:
            self._failed(error)
            return
        self._say(f"Session saved to {path}.")

    def load_session(self, path: str) -> None:
        """Replace the objects and prompts with those of a session file: clicks and boxes go
        to their layers (and are segmented from there), masks straight to the tracker."""
        if self.tracker is None or self.busy:
            self._say("Load a model (and wait for it) before loading a session.")
            return
        try:
            prompts = read_prompts(path)
            check_prompts_fit(
                prompts, self.tracker.num_frames, self.tracker.height, self.tracker.width, path
            )
        except SAM2Error as error:
            self._failed(error)
            return
        self.state.objects = {obj.id: obj.name or f"object {obj.id}" for obj in prompts.objects}
        if not self.state.objects:
            self.state.objects = {1: "object 1"}
        self.state.active = min(self.state.objects)
        self.tracker.reset()
        self._applied = {}
        masks = []
        rows, signs, owners, rectangles, rect_owners = [], [], [], [], []
        for obj in prompts.objects:
            for t, frame in sorted(obj.frames.items()):
                if frame.mask is not None:
                    masks.append((t, obj.id, frame.mask))
                for x, y, label in frame.points:
                    rows.append(self._layer_coords(t, y, x))
                    signs.append(label)
                    owners.append(obj.id)
                if frame.box is not None:
                    x0, y0, x1, y1 = frame.box
                    rectangles.append(
                        [
                            self._layer_coords(t, y, x)
                            for y, x in ((y0, x0), (y0, x1), (y1, x1), (y1, x0))
                        ]
                    )
                    rect_owners.append(obj.id)
        with self.clicks.events.data.blocker(), self.boxes.events.data.blocker():
            self.clicks.data = np.array(rows).reshape(-1, self.clicks.ndim)
            self.clicks.features = pd.DataFrame({"sign": signs, "object": owners}, dtype=int)
            self.boxes.data = []
            if rectangles:
                self.boxes.add_rectangles(np.array(rectangles, dtype=float))
                self.boxes.features = pd.DataFrame({"object": rect_owners}, dtype=int)
        self.clicks.refresh()
        self.boxes.refresh()
        for t, obj, mask in masks:
            self.tracker.add_mask(t, obj, mask)
        self.labels.refresh()
        self._show_objects()
        self._apply_active_object()
        self.sync_prompts()
        self._say(f"Session loaded from {path}.")

    def _layer_coords(self, t: int, y: float, x: float) -> list[float]:
        """Layer coordinates (leading axes..., y, x) of a point on frame t."""
        leading = [float(i) for i in self.view.fixed]
        if self.view.video_axis is not None:
            leading[self.view.video_axis] = float(t)
        return [*leading, float(y), float(x)]
