"""The "SAM 2 segmentation" dock widget: a thin view of a headless `Session`.

Panels (data and model, objects, propagate, files; see `panel.py` to add one) own their
controls and talk to the session. This module keeps what they share: the session, the
prompt layers (kept in step with the session by `prompt_sync.py`), one worker at a time, and
the status line.
"""

from types import SimpleNamespace

import napari
import numpy as np
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..engine import Tracker, VideoAxisView
from ..errors import SAM2Error
from ..io.prompts import FramePrompts, Normalization, Prompts
from ..session import Session
from . import prompt_layers
from .cells_panel import CellsPanel
from .data_panel import CHECKPOINT_FILE, DataPanel, axis_name
from .engine_panel import EnginePanel
from .files_panel import FilesPanel
from .layer_session import layer_session, layer_voxel_size
from .objects_panel import ObjectsPanel
from .panel import Panel
from .prompt_sync import PromptSync
from .propagate_panel import PropagatePanel, ask_about_painted
from .shortcuts import SHORTCUTS

__all__ = ["CHECKPOINT_FILE", "SAM2Widget"]


def _panel_control(panel: str, name: str) -> property:
    """A read-only attribute of the widget that is a panel's control."""
    return property(lambda widget: getattr(getattr(widget, panel), name))


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
        self.prompt_sync = PromptSync(self)
        self._worker = None
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
            EnginePanel: "engine_panel",
        }.get(type(panel))
        if name is not None:
            setattr(self, name, panel)
        if self.session is not None:
            panel.session_started(self.session)
        return panel

    # the controls tests and scripts drive, where users find them
    model_combo = _panel_control("data_panel", "model_combo")
    checkpoint_edit = _panel_control("data_panel", "checkpoint_edit")
    size_combo = _panel_control("data_panel", "size_combo")
    device_combo = _panel_control("data_panel", "device_combo")
    load_button = _panel_control("data_panel", "load_button")
    image_combo = _panel_control("data_panel", "image_combo")
    axis_combo = _panel_control("data_panel", "axis_combo")
    object_list = _panel_control("objects_panel", "object_list")
    run_buttons = _panel_control("propagate_panel", "run_buttons")
    cancel_button = _panel_control("propagate_panel", "cancel_button")

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
            self.prompt_sync.after_job()
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
        if self.image is None or self.view is None:
            return None, None
        return layer_voxel_size(self.image, self.view, self.axis_name())

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
        self.prompt_sync.adopt_layers(image)
        self.session = self.new_session(prompt_layers.label_frames(self.labels, self.view))
        self.labels.data[...] = 0
        self.labels.refresh()
        self.prompt_sync.applied = {}
        if clear_prompts:
            self.prompt_sync.set_layer_prompts([])
        for panel in self.panels:
            panel.session_started(self.session)
        if not clear_prompts:
            self.sync_prompts()
        return self.session

    def new_session(
        self,
        labels_out: np.ndarray | None = None,
        normalization: Normalization | None = None,
        precision: str | None = None,
    ) -> Session:
        """A session on the current image view and model, writing into `labels_out` (the
        labels layer's frames) or, with None, into a label array of its own; intensities
        mapped by `normalization` (a saved session's), else the layer's contrast limits; in
        `precision` (a saved session's), else the one chosen in the widget."""
        return layer_session(
            self.image,
            self.view,
            self.model,
            self.model_source,
            labels_out,
            normalization,
            precision or self.engine_panel.precision.currentText(),
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

    # -- layers <-> session (prompt_sync.py) ----------------------------------------------

    @property
    def _applied(self) -> dict[tuple[int, int], FramePrompts]:
        """The layer prompts last sent to the session, per (frame, object)."""
        return self.prompt_sync.applied

    def sync_prompts(self) -> None:
        """Send the prompts that changed in the layers to the session (in a worker)."""
        self.prompt_sync.sync()

    def show_session_prompts(self) -> None:
        """Show the session's clicks and boxes in the layers (after a replay)."""
        self.prompt_sync.show_session()

    def show_prompts(self, prompts: Prompts) -> None:
        """A prompts file without a log: clicks and boxes go to the layers (and are segmented
        from there), masks straight to the session."""
        self.prompt_sync.show_file(prompts)

    def remove_layer_prompts(self, obj: int) -> None:
        """Delete one object's clicks and boxes from the layers, without sending anything."""
        self.prompt_sync.remove_object(obj)
