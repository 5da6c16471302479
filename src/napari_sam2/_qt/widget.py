"""The "SAM 2 segmentation" dock widget: pick an image and a model, click, propagate, correct.

The widget is thin. It reads the prompt layers, runs the engine in napari's worker threads
(one at a time), and writes the Labels layer; the engine holds all the logic.
"""

import threading
from dataclasses import dataclass, field
from pathlib import Path

import napari
import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QFileDialog,
    QListWidgetItem,
    QWidget,
)

from ..engine import Tracker, VideoAxisView
from ..errors import SAM2Error
from ..io import FramePrompts, apply_frame
from ..layer_prompts import changed_prompts
from ..model import build_model, build_model_from_checkpoint
from ..model.demo import DEMO_NAME
from ..model.devices import resolve_device
from . import prompt_layers
from .controls import CHECKPOINT_FILE, SHORTCUTS, ControlsMixin
from .files import FilesMixin, video_axis_name
from .propagation import PropagationMixin
from .workers import job


@dataclass
class WidgetState:
    """What the widget shows: objects, the active one, the click sign, painted frames."""

    objects: dict[int, str] = field(default_factory=lambda: {1: "object 1"})
    active: int = 1
    positive: bool = True
    painted: set[int] = field(default_factory=set)
    last_click: tuple[int, int] | None = None
    candidate: int = 0

    def add_object(self) -> int:
        new = max(self.objects, default=0) + 1
        self.objects[new] = f"object {new}"
        self.active = new
        return new


class SAM2Widget(ControlsMixin, FilesMixin, PropagationMixin, QWidget):
    """Dock widget: image and model choice, objects, clicks and boxes, propagation."""

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = WidgetState()
        self.model = None
        self.tracker: Tracker | None = None
        self.view: VideoAxisView | None = None
        self.clicks = self.boxes = self.labels = None
        self._applied: dict[tuple[int, int], FramePrompts] = {}
        self._worker = None
        self._sync_again = False
        self._progress = None
        self._cancel_requested = threading.Event()
        self._build_ui()
        self._refresh_images()
        self.viewer.layers.events.inserted.connect(self._refresh_images)
        self.viewer.layers.events.removed.connect(self._refresh_images)
        self._bind_viewer_keys()

    # -- user interface -----------------------------------------------------------

    def _bind_viewer_keys(self) -> None:
        actions = {
            "forward": lambda viewer: self.propagate("forward"),
            "backward": lambda viewer: self.propagate("backward"),
            "both": lambda viewer: self.propagate("both"),
            "new_object": lambda viewer: self.add_object(),
            "cancel": lambda viewer: self.cancel(),
        }
        for name, action in actions.items():
            self.viewer.bind_key(SHORTCUTS[name], action, overwrite=True)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    def _refresh_images(self, event=None) -> None:
        current = self.image_combo.currentText()
        names = [
            layer.name for layer in self.viewer.layers if isinstance(layer, napari.layers.Image)
        ]
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems(names)
        if current in names:
            self.image_combo.setCurrentText(current)
        self.image_combo.blockSignals(False)
        if self.image_combo.currentText() != current:
            self._image_changed(self.image_combo.currentText())

    @property
    def image(self) -> napari.layers.Image | None:
        name = self.image_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _image_changed(self, name: str) -> None:
        image = self.image
        self.axis_combo.blockSignals(True)
        self.axis_combo.clear()
        if image is not None:
            leading = len(prompt_layers.spatial_shape(image)) - 2
            labels = list(image.axis_labels)[:leading]
            self.axis_combo.addItems(
                [
                    f"axis {i}{'' if label.lstrip('-').isdigit() else f' ({label})'}: "
                    f"{image.data.shape[i]} frames"
                    for i, label in enumerate(labels)
                ]
            )
        self.axis_combo.blockSignals(False)
        self._reset_session()

    def _model_choice_changed(self, text: str) -> None:
        self.checkpoint_row.setVisible(text == CHECKPOINT_FILE)
        self.size_combo.setEnabled(text != DEMO_NAME)  # the demo runs at its trained size

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SAM 2 checkpoint", "", "Checkpoints (*.pt)")
        if path:
            self.checkpoint_edit.setText(path)

    # -- workers ------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def _start(self, worker, done=None) -> None:
        """Run one engine job at a time; errors reach the user as messages."""
        self._worker = worker

        def finish():
            self._worker = None
            self.cancel_button.setEnabled(False)
            if done is not None:
                done()
            if self._sync_again:
                self._sync_again = False
                self.sync_prompts()

        worker.errored.connect(self._failed)
        worker.finished.connect(finish)
        worker.start()

    def _failed(self, error: Exception) -> None:
        message = str(error) if isinstance(error, SAM2Error) else f"{type(error).__name__}: {error}"
        self._say(f"Error: {message}")
        show_error(message)
        if self.labels is not None:
            self.labels.refresh()

    # -- model and session ----------------------------------------------------------

    def load_model(self) -> None:
        """Build the chosen model (downloading official weights if needed) in a worker."""
        if self.busy:
            self._say("Busy: wait for the current step to finish.")
            return
        name = self.model_combo.currentText()
        checkpoint = "auto"
        if name == CHECKPOINT_FILE:
            checkpoint = self.checkpoint_edit.text().strip()
            if not checkpoint:
                self._say("Choose a checkpoint file first.")
                return
        try:
            device = resolve_device(self.device_combo.currentText())
        except SAM2Error as error:
            self._failed(error)
            return
        size = int(self.size_combo.currentText())
        self._say(
            f"Loading {Path(checkpoint).name if name == CHECKPOINT_FILE else name} on {device}…"
        )
        worker = job(_load, name, checkpoint, device, size)
        worker.returned.connect(self._model_loaded)
        self._start(worker)

    def _model_loaded(self, model) -> None:
        self.model = model
        self._say(f"{model.config.name} loaded. Click on the image to segment.")
        self._reset_session()

    def _reset_session(self, *_) -> None:
        """(Re)start tracking for the chosen image, axis and slice; prompts in the layers
        are applied again."""
        self.tracker = None
        image = self.image
        if self.model is None or image is None:
            return
        leading = len(prompt_layers.spatial_shape(image)) - 2
        axis = self.axis_combo.currentIndex() if leading else None
        fixed = [int(i) for i in self.viewer.dims.current_step[:leading]]
        try:
            self.view = VideoAxisView(image.data, axis, fixed, rgb=image.rgb)
        except SAM2Error as error:
            self._failed(error)
            return
        self._adopt_layers(image)
        self.tracker = Tracker(
            self.model,
            self.view,
            contrast_limits=None if image.rgb else tuple(image.contrast_limits),
            labels_out=prompt_layers.label_frames(self.labels, self.view),
            # through z a nucleus spans one run of slices: once lost it is not found again
            reappear=video_axis_name(image, self.view) != "Z",
        )
        self.labels.data[...] = 0
        self.labels.refresh()
        self._applied = {}
        self.state.painted.clear()
        self.sync_prompts()

    def _adopt_layers(self, image) -> None:
        layers = self.viewer.layers
        wanted = (
            ("clicks", prompt_layers.CLICKS, napari.layers.Points, prompt_layers.make_clicks),
            ("boxes", prompt_layers.BOXES, napari.layers.Shapes, prompt_layers.make_boxes),
            ("labels", prompt_layers.LABELS, napari.layers.Labels, prompt_layers.make_labels),
        )
        for attribute, name, kind, make in wanted:
            layer = layers[name] if name in layers else None
            if layer is None or not prompt_layers.fits(layer, image, kind):
                if layer is not None:
                    layers.remove(layer)
                layer = make(image)
                layers.append(layer)
                self._connect(attribute, layer)
            elif getattr(self, attribute) is not layer:
                self._connect(attribute, layer)
            setattr(self, attribute, layer)
        self._apply_active_object()
        self.viewer.layers.selection.active = self.clicks
        self.clicks.mode = "add"

    def _connect(self, attribute: str, layer) -> None:
        if attribute in ("clicks", "boxes"):
            layer.events.data.connect(self._prompts_edited)
        if attribute == "clicks":
            layer.bind_key(SHORTCUTS["toggle_sign"], lambda _: self.toggle_sign(), overwrite=True)
            layer.bind_key(
                SHORTCUTS["next_candidate"], lambda _: self.next_candidate(), overwrite=True
            )
        if attribute == "labels":
            layer.events.paint.connect(self._painted)

    # -- prompts --------------------------------------------------------------------

    def _prompts_edited(self, event) -> None:
        action = str(getattr(event, "action", "")).lower()
        if action.endswith("ing"):  # adding / removing / changing: wait for the result
            return
        QTimer.singleShot(0, self.sync_prompts)

    def sync_prompts(self) -> None:
        """Send the prompts that changed in the layers to the tracker (in a worker)."""
        if self.tracker is None or self.clicks is None:
            return
        if self.busy:
            self._sync_again = True
            return
        current = prompt_layers.read_prompts(self.view, self.clicks, self.boxes)
        changes = changed_prompts(self._applied, current)
        if not changes:
            return
        for _, obj in changes:
            self.state.objects.setdefault(obj, f"object {obj}")
        self._show_objects()
        tracker = self.tracker

        def apply():
            for (t, obj), prompts in changes.items():
                apply_frame(tracker, t, obj, prompts)
            return changes

        def applied(done):
            self._applied.update({k: v for k, v in done.items() if not v.is_empty()})
            for key, prompts in done.items():
                if prompts.is_empty():
                    self._applied.pop(key, None)
            single = [k for k, v in done.items() if len(v.points) == 1 and v.box is None]
            self.state.last_click = single[-1] if single else None
            self.state.candidate = 0
            self.labels.refresh()
            frames = sorted({t for t, _ in done})
            self._say(f"Segmented frame {', '.join(map(str, frames))}.")

        self._say("Segmenting…")
        worker = job(apply)
        worker.returned.connect(applied)
        self._start(worker)

    def next_candidate(self) -> None:
        """Cycle through the three masks the model proposed for the last single click."""
        if self.tracker is None or self.state.last_click is None or self.busy:
            return
        t, obj = self.state.last_click
        count = len(self.tracker.candidate_logits(t, obj))
        if not count:
            return
        self.state.candidate = (self.state.candidate + 1) % count
        self.tracker.choose_candidate(t, obj, self.state.candidate)
        self.labels.refresh()
        self._say(f"Candidate {self.state.candidate + 1} of {count} on frame {t}.")

    def use_painted_mask(self) -> None:
        """The active object's painted mask on the current frame becomes its prompt."""
        if self.tracker is None or self.busy:
            return
        t = self._current_frame()
        obj = self.state.active
        mask = prompt_layers.label_frames(self.labels, self.view)[t] == obj
        if not mask.any():
            self._say(f"Object {obj} has no painted pixels on frame {t}.")
            return
        worker = job(self.tracker.add_mask, t, obj, mask)
        worker.returned.connect(lambda _: (self.labels.refresh(), self.state.painted.discard(t)))
        self._start(worker)

    def _current_frame(self) -> int:
        axis = self.view.video_axis
        return 0 if axis is None else int(self.viewer.dims.current_step[axis])

    def _painted(self, event) -> None:
        if self.view is not None:
            self.state.painted |= prompt_layers.painted_frames(event, self.view)

    # -- objects ----------------------------------------------------------------------

    def _show_objects(self) -> None:
        self.object_list.blockSignals(True)
        self.object_list.clear()
        for obj, name in sorted(self.state.objects.items()):
            item = QListWidgetItem(f"{obj}: {name}")
            item.setData(Qt.ItemDataRole.UserRole, obj)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.object_list.addItem(item)
            if obj == self.state.active:
                self.object_list.setCurrentItem(item)
        self.object_list.blockSignals(False)

    def _object_selected(self, item, _previous=None) -> None:
        if item is not None:
            self.state.active = int(item.data(Qt.ItemDataRole.UserRole))
            self._apply_active_object()

    def _object_renamed(self, item) -> None:
        obj = int(item.data(Qt.ItemDataRole.UserRole))
        text = item.text()
        self.state.objects[obj] = text.split(":", 1)[1].strip() if ":" in text else text

    def _apply_active_object(self) -> None:
        obj = self.state.active
        if self.clicks is not None:
            self.clicks.feature_defaults = {"sign": int(self.state.positive), "object": obj}
            self.boxes.feature_defaults = {"object": obj}
            self.labels.selected_label = obj

    def add_object(self) -> int:
        new = self.state.add_object()
        self._show_objects()
        self._apply_active_object()
        return new

    def remove_active_object(self) -> None:
        """Remove the active object: its clicks, boxes and labels."""
        if self.busy:
            self._say("Busy: wait for the current step to finish.")
            return
        obj = self.state.active
        self.state.objects.pop(obj, None)
        if self.clicks is not None:
            for layer in (self.clicks, self.boxes):
                keep = layer.features["object"].to_numpy() != obj
                with layer.events.data.blocker():
                    layer.selected_data = set(np.flatnonzero(~keep).tolist())
                    layer.remove_selected()
            self._applied = {k: v for k, v in self._applied.items() if k[1] != obj}
        if self.tracker is not None and obj in self.tracker.objects:
            self.tracker.remove_object(obj)
            self.labels.refresh()
        if not self.state.objects:
            self.state.add_object()
        self.state.active = min(self.state.objects)
        self._show_objects()
        self._apply_active_object()

    def toggle_sign(self) -> None:
        self.state.positive = not self.state.positive
        self._show_sign()
        self._apply_active_object()

    def _show_sign(self) -> None:
        self.sign_button.setText(
            "Clicks add: object (+)" if self.state.positive else "Clicks add: background (−)"
        )


def _load(choice: str, checkpoint: str, device: str, image_size: int):
    """Build the chosen model; a checkpoint file brings its own model (stored configuration,
    official file name, or the official model its shapes fit)."""
    if choice == CHECKPOINT_FILE:
        return build_model_from_checkpoint(
            checkpoint, device=device, image_size=image_size, keep_trained_size=True
        )
    if choice == DEMO_NAME:  # trained at its own input size
        image_size = None
    return build_model(choice, checkpoint=checkpoint, device=device, image_size=image_size)
