"""The "SAM 2 segmentation" dock widget: a thin view of a headless `Session`.

Panels (data and model, objects, propagate, files; see `panel.py` to add one) own their
controls and talk to the session. This module keeps what they share: the session, the
prompt layers and their sync to the session, one worker at a time, and the status line.
"""

from types import SimpleNamespace

import napari
import numpy as np
import pandas as pd
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..engine import Tracker, VideoAxisView
from ..errors import SAM2Error
from ..io.prompts import FramePrompts, Normalization, Prompts
from ..layer_prompts import changed_prompts
from ..model.catalogue import is_known_model
from ..session import Session
from . import prompt_layers, quick_clicks
from .cells_panel import CellsPanel
from .data_panel import CHECKPOINT_FILE, DataPanel, axis_name
from .engine_panel import EnginePanel
from .files_panel import FilesPanel
from .objects_panel import ObjectsPanel
from .panel import Panel
from .plane_refresh import show_frames
from .propagate_panel import PropagatePanel, ask_about_painted
from .shortcuts import SHORTCUTS

__all__ = ["CHECKPOINT_FILE", "SAM2Widget"]


class SAM2Widget(QWidget):
    """Dock widget: image and model choice, objects, clicks and boxes, propagation, files."""

    PANELS = (DataPanel, ObjectsPanel, PropagatePanel, CellsPanel, FilesPanel, EnginePanel)

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model = None
        self.model_source: tuple[str | None, str | None] = (None, None)  # name, checkpoint
        self.session: Session | None = None
        self.view: VideoAxisView | None = None
        self.clicks = self.boxes = self.labels = None
        # the layer prompts last sent to the session, per (frame, object)
        self._applied: dict[tuple[int, int], FramePrompts] = {}
        self._worker = None
        self._sync_again = False
        self._when_idle: list = []  # actions waiting for the current job to finish
        self._layout = QVBoxLayout(self)
        self.panels: list[Panel] = []
        for kind in self.PANELS:
            self.add_panel(kind(self))
        self.status = QLabel("Load a model to start.")
        self.status.setWordWrap(True)
        self._layout.addWidget(self.status)
        self._layout.addStretch()
        self.data_panel.refresh_images()
        self.viewer.layers.events.inserted.connect(self.data_panel.refresh_images)
        self.viewer.layers.events.removed.connect(self.data_panel.refresh_images)
        self._bind_viewer_keys()

    def add_panel(self, panel: Panel) -> Panel:
        """Add a panel below the others (before the status line once it exists)."""
        index = len(self.panels)
        self._layout.insertWidget(index, panel)
        self.panels.append(panel)
        name = {
            DataPanel: "data_panel",
            ObjectsPanel: "objects_panel",
            PropagatePanel: "propagate_panel",
            FilesPanel: "files_panel",
        }.get(type(panel))
        if name is not None:
            setattr(self, name, panel)
        if self.session is not None:
            panel.session_started(self.session)
        return panel

    # the controls tests and scripts drive, where users find them
    @property
    def model_combo(self):
        return self.data_panel.model_combo

    @property
    def checkpoint_edit(self):
        return self.data_panel.checkpoint_edit

    @property
    def size_combo(self):
        return self.data_panel.size_combo

    @property
    def device_combo(self):
        return self.data_panel.device_combo

    @property
    def load_button(self):
        return self.data_panel.load_button

    @property
    def image_combo(self):
        return self.data_panel.image_combo

    @property
    def axis_combo(self):
        return self.data_panel.axis_combo

    @property
    def object_list(self):
        return self.objects_panel.object_list

    @property
    def run_buttons(self):
        return self.propagate_panel.run_buttons

    @property
    def cancel_button(self):
        return self.propagate_panel.cancel_button

    @property
    def tracker(self) -> Tracker | None:
        return None if self.session is None else self.session.tracker

    @property
    def image(self) -> napari.layers.Image | None:
        return self.data_panel.image

    # actions, for shortcuts and scripts
    def load_model(self) -> None:
        self.data_panel.load_model()

    def add_object(self) -> int:
        return self.objects_panel.add_object()

    def remove_active_object(self) -> None:
        self.objects_panel.remove_active_object()

    def toggle_sign(self) -> None:
        self.objects_panel.toggle_sign()

    def next_candidate(self) -> None:
        self.objects_panel.next_candidate()

    def use_painted_mask(self) -> None:
        self.objects_panel.use_painted_mask()

    def propagate(self, direction: str) -> None:
        self.propagate_panel.propagate(direction)

    def cancel(self) -> None:
        self.propagate_panel.cancel()

    def save_labels(self, path: str, overwrite: bool = False) -> None:
        self.files_panel.save_labels(path, overwrite)

    def save_session(self, path: str) -> None:
        self.files_panel.save_session(path)

    def load_session(self, path: str) -> None:
        self.files_panel.load_session(path)

    # scripts written against the widget before sessions: the state it showed, read-only
    @property
    def state(self) -> SimpleNamespace:
        """objects (id: name), active, positive, painted: what the panels show."""
        panel = self.objects_panel
        painted = set() if self.session is None else set(self.session.painted)
        return SimpleNamespace(
            objects=panel.names(), active=panel.active, positive=panel.positive, painted=painted
        )

    def _reset_session(self, *_) -> None:
        self.start_session()

    def ask_about_painted(self, frames: list[int]) -> str:
        """ "use" (as prompts), "overwrite" or "cancel", as the user answers."""
        return ask_about_painted(self, frames)

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

    # -- status and workers -----------------------------------------------------------

    def say(self, text: str) -> None:
        self.status.setText(text)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def run_job(self, worker, done=None) -> None:
        """Run one engine job at a time; errors reach the user as messages."""
        self._worker = worker

        def finish():
            self._worker = None
            if done is not None:
                done()
            self.session_changed()
            if self._sync_again:
                self._sync_again = False
                self.sync_prompts()
            while self._when_idle and not self.busy:
                self._when_idle.pop(0)()

        worker.errored.connect(self.failed)
        worker.finished.connect(finish)
        worker.start()

    def when_idle(self, action) -> None:
        """Run `action()` now, or once the current job (and those it starts) finished."""
        if self.busy:
            self._when_idle.append(action)
        else:
            action()

    def failed(self, error: Exception) -> None:
        message = str(error) if isinstance(error, SAM2Error) else f"{type(error).__name__}: {error}"
        self.say(f"Error: {message}")
        show_error(message)
        if self.labels is not None:
            self.labels.refresh()

    def session_changed(self) -> None:
        for panel in self.panels:
            panel.refresh()

    # -- the session ------------------------------------------------------------------

    def axis_name(self) -> str:
        """ "Z" when the session follows an axis labelled z, else "T"."""
        image = self.image
        return "T" if image is None or self.view is None else axis_name(image, self.view.video_axis)

    def voxel_size(self) -> tuple[dict[str, float] | None, str | None]:
        """The image's pixel/voxel size per label-file axis and its unit, where known (from
        the file `napari-sam2 view` opened, else the layer's scale when it has units)."""
        image = self.image
        if image is None or self.view is None:
            return None, None
        name = self.axis_name()
        metadata = image.metadata or {}
        scale = [float(s) for s in image.scale]
        if "spacing" in metadata:
            spacing = {a: v for a, v in metadata["spacing"].items() if a in (name, "Y", "X")}
            return spacing or None, metadata.get("unit")
        units = [str(u) for u in getattr(image, "units", ())]
        if not units or units[-1] in ("pixel", "") or all(s == 1.0 for s in scale):
            return None, None
        spacing = {"Y": scale[-2], "X": scale[-1]}
        if self.view.video_axis is not None:
            spacing[name] = scale[self.view.video_axis]
        unit = "µm" if units[-1] == "micrometer" else units[-1]
        return spacing, unit

    def start_session(self, clear_prompts: bool = False) -> Session | None:
        """A new session for the chosen image, axis and slice (labels cleared); prompts in
        the layers are sent to it unless clear_prompts."""
        self.session = None
        image = self.image
        if self.model is None or image is None:
            return None
        leading = len(prompt_layers.spatial_shape(image)) - 2
        axis = self.data_panel.video_axis if leading else None
        fixed = [int(i) for i in self.viewer.dims.current_step[:leading]]
        try:
            self.view = VideoAxisView(image.data, axis, fixed, rgb=image.rgb)
        except SAM2Error as error:
            self.failed(error)
            return None
        self._adopt_layers(image)
        self.session = self.new_session(prompt_layers.label_frames(self.labels, self.view))
        self.labels.data[...] = 0
        self.labels.refresh()
        self._applied = {}
        if clear_prompts:
            self._set_layer_prompts([], [])
        for panel in self.panels:
            panel.session_started(self.session)
        if not clear_prompts:
            self.sync_prompts()
        return self.session

    def new_session(
        self, labels_out: np.ndarray | None = None, normalization: Normalization | None = None
    ) -> Session:
        """A session on the current image view and model, writing into `labels_out` (the
        labels layer's frames) or, with None, into a label array of its own; intensities
        mapped by `normalization` (a saved session's), else the layer's contrast limits."""
        image = self.image
        limits = None if image.rgb else tuple(float(v) for v in image.contrast_limits)
        percentiles = None
        if normalization is not None:
            limits, percentiles = normalization.contrast_limits, normalization.percentiles
        along_z = axis_name(image, self.view.video_axis) == "Z"
        tracker = Tracker(
            self.model,
            self.view,
            contrast_limits=limits,
            **({} if percentiles is None else {"percentiles": percentiles}),
            labels_out=labels_out,
            # through z a nucleus spans one run of slices: once lost it is not found again
            reappear=not along_z,
        )
        name, checkpoint = self.model_source
        return Session(
            tracker,
            model_name=name if is_known_model(name) else None,
            checkpoint=checkpoint,
            video_axis=self.view.video_axis,
            fixed=tuple(self.view.fixed),
            normalization=normalization
            or (None if limits is None else Normalization(contrast_limits=limits)),
        )

    def adopt_session(self, session: Session) -> None:
        """Make a session that ran on its own label array (a replay) the widget's: its labels
        go into the labels layer, its clicks and boxes into their layers."""
        frames = prompt_layers.label_frames(self.labels, self.view)
        replayed = session.tracker.volume.array
        if int(replayed.max(initial=0)) > np.iinfo(frames.dtype).max:
            raise SAM2Error(
                f"the session has object ids beyond what the labels layer holds ({frames.dtype})"
            )
        self.labels.data[...] = 0
        frames[...] = replayed
        # the same volume (what it knows of the labels it wrote) now writes into the layer
        session.tracker.volume.array = frames
        self.session = session
        self.show_session_prompts()
        for panel in self.panels:
            panel.session_started(session)

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

    def label_colour(self, obj_id: int) -> str | None:
        """The colour the labels layer shows an object in, as "#rrggbb" (None if unknown)."""
        try:
            rgba = np.asarray(self.labels.get_color(obj_id), dtype=float)
        except (AttributeError, TypeError, ValueError):
            return None
        if rgba.shape[-1] < 3 or not np.isfinite(rgba[:3]).all():
            return None
        return "#" + "".join(f"{round(float(v) * 255):02x}" for v in np.clip(rgba[:3], 0, 1))

    def current_frame(self) -> int:
        axis = self.view.video_axis
        return 0 if axis is None else int(self.viewer.dims.current_step[axis])

    # -- layers <-> session -----------------------------------------------------------

    def _prompts_edited(self, event) -> None:
        action = str(getattr(event, "action", "")).lower()
        if action.endswith("ing"):  # adding / removing / changing: wait for the result
            return
        QTimer.singleShot(0, self.sync_prompts)

    def sync_prompts(self) -> None:
        """Send the prompts that changed in the layers to the session (in a worker)."""
        session = self.session
        if session is None or self.clicks is None:
            return
        if self.busy:
            self._sync_again = True
            return
        current = prompt_layers.read_prompts(self.view, self.clicks, self.boxes)
        changes = changed_prompts(self._applied, current)
        if not changes:
            return
        try:
            for _, obj in changes:
                session.object(obj)
        except SAM2Error as error:
            self.failed(error)
            return
        self.session_changed()

        def apply():
            for (t, obj), prompts in changes.items():
                session.set_prompts(t, obj, prompts)
            return changes

        def applied(done):
            for key, prompts in done.items():
                if prompts.is_empty():
                    self._applied.pop(key, None)
                else:
                    self._applied[key] = prompts
            single = [k for k, v in done.items() if len(v.points) == 1 and v.box is None]
            self.objects_panel.clicked(single[-1] if single else None)
            frames = sorted({t for t, _ in done})
            show_frames(self.labels, self.view, frames)  # the displayed plane only
            self.say(f"Segmented frame {', '.join(map(str, frames))}.")

        self.say("Segmenting…")
        from .workers import job

        if quick_clicks.run_here(self, changes, apply, applied):  # under a frame: no worker
            return
        frames = {t for t, _ in changes}
        worker = job(quick_clicks.timed(self.model, self.tracker, frames, apply))
        worker.returned.connect(applied)
        self.run_job(worker)

    def _painted(self, event) -> None:
        if self.session is not None:
            self.session.record_paint(prompt_layers.painted_frames(event, self.view))

    def _layer_coords(self, t: int, y: float, x: float) -> list[float]:
        """Layer coordinates (leading axes..., y, x) of a point on frame t."""
        leading = [float(i) for i in self.view.fixed]
        if self.view.video_axis is not None:
            leading[self.view.video_axis] = float(t)
        return [*leading, float(y), float(x)]

    def _set_layer_prompts(self, items, masks) -> None:
        """Put (frame, object, FramePrompts) clicks and boxes in the layers without sending
        them; what they hold then counts as sent."""
        rows, signs, owners, rectangles, rect_owners = [], [], [], [], []
        for t, obj, frame in items:
            for x, y, label in frame.points:
                rows.append(self._layer_coords(t, y, x))
                signs.append(label)
                owners.append(obj)
            if frame.box is not None:
                x0, y0, x1, y1 = frame.box
                corners = ((y0, x0), (y0, x1), (y1, x1), (y1, x0))
                rectangles.append([self._layer_coords(t, y, x) for y, x in corners])
                rect_owners.append(obj)
        with self.clicks.events.data.blocker(), self.boxes.events.data.blocker():
            self.clicks.data = np.array(rows, dtype=float).reshape(-1, self.clicks.ndim)
            self.clicks.features = pd.DataFrame({"sign": signs, "object": owners}, dtype=int)
            self.boxes.data = []
            if rectangles:
                self.boxes.add_rectangles(np.array(rectangles, dtype=float))
                self.boxes.features = pd.DataFrame({"object": rect_owners}, dtype=int)
        self.clicks.refresh()
        self.boxes.refresh()

    def show_session_prompts(self) -> None:
        """Show the session's clicks and boxes in the layers (after a replay)."""
        items = [
            (t, obj, frame)
            for (t, obj), frame in sorted(self.session.prompts.items())
            if frame.mask is None
        ]
        self._set_layer_prompts(items, [])
        self._applied = prompt_layers.read_prompts(self.view, self.clicks, self.boxes)
        self.labels.refresh()
        self.objects_panel.session_started(self.session)

    def show_prompts(self, prompts: Prompts) -> None:
        """A prompts file without a log: clicks and boxes go to the layers (and are segmented
        from there), masks straight to the session."""
        session = self.session
        items = []
        for obj in prompts.objects:
            session.object(obj.id).name = obj.name or f"object {obj.id}"
            for t, frame in sorted(obj.frames.items()):
                if frame.mask is not None:
                    session.add_mask(t, obj.id, frame.mask)
                else:
                    items.append((t, obj.id, frame))
        self._set_layer_prompts(items, [])
        self.labels.refresh()
        self.objects_panel.session_started(session)
        self.sync_prompts()

    def remove_layer_prompts(self, obj: int) -> None:
        """Delete one object's clicks and boxes from the layers, without sending anything."""
        if self.clicks is None:
            return
        for layer in (self.clicks, self.boxes):
            keep = layer.features["object"].to_numpy() != obj
            with layer.events.data.blocker():
                layer.selected_data = set(np.flatnonzero(~keep).tolist())
                layer.remove_selected()
        self._applied = {k: v for k, v in self._applied.items() if k[1] != obj}
