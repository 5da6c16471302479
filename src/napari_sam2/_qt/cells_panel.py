"""The "Every cell" panel: seeds for every cell on the viewed frame (SAM 2's automatic masks,
or any Labels layer, e.g. from another plugin), then tracking them all through the stack with
divisions (the engine's `CellTracker`), with progress and cancel in the dock; the result gets
a Tracks layer, per-object features on the labels and a review list."""

import threading

import numpy as np
import pandas as pd
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
)

from ..engine.automatic_masks import settings_for_model
from ..engine.cell_tracking import CellTracker
from ..errors import SAM2Error
from ..io.geff import write_geff
from ..io.measurements import measure
from . import prompt_layers
from .panel import Panel
from .plane_refresh import show_frames
from .review_list import ReviewList
from .tracks_layer import features_on_frame, show_tracks
from .workers import job

DIVISIONS = ("auto", "on", "off")


def _engine_error(error: Exception, what: str) -> SAM2Error:
    if isinstance(error, SAM2Error):
        return error
    return SAM2Error(f"{what} failed: {type(error).__name__}: {error}")


class CellsPanel(Panel):
    title = "Every cell"

    def __init__(self, host) -> None:
        super().__init__(host)
        self._cancel = threading.Event()
        grid = QGridLayout(self)
        self.segment_all_button = QPushButton("Segment all (this frame)")
        self.segment_all_button.setToolTip(
            "SAM 2's automatic mask generator on the frame you look at: every cell it finds "
            "becomes an object"
        )
        self.segment_all_button.clicked.connect(self.segment_all)
        self.seeds_combo = QComboBox()
        self.seeds_combo.setToolTip(
            "A Labels layer (e.g. from Cellpose or StarDist): 2-D, or shaped like the image"
        )
        self.seeds_button = QPushButton("Seeds from Labels layer")
        self.seeds_button.setToolTip(
            "Every nonzero label of the chosen layer on the frame you look at becomes an "
            "object (id = label value) prompted with its mask"
        )
        self.seeds_button.clicked.connect(lambda: self.seeds_from_layer())
        self.divisions_combo = QComboBox()
        self.divisions_combo.addItems(DIVISIONS)
        self.divisions_combo.setToolTip(
            "Detect divisions while tracking forward: auto = on along time, off along z"
        )
        self.reseed_box = QSpinBox()
        self.reseed_box.setRange(0, 10_000)
        self.reseed_box.setSpecialValueText("off")
        self.reseed_box.setPrefix("every ")
        self.reseed_box.setSuffix(" frames")
        self.reseed_box.setToolTip(
            "Cells that enter later: while tracking forward, look for masks on area no "
            "object covers every this many frames (automatic mask generator); off: never"
        )
        self.track_button = QPushButton("Track all")
        self.track_button.setToolTip(
            "Track every object on the frame you look at, both ways, with divisions"
        )
        self.track_button.clicked.connect(self.track_all)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop tracking; the labels go back as they were")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setFormat("")  # empty until a run
        self.progress.setValue(0)
        self.review = ReviewList(host)
        self.geff_button = QPushButton("Export GEFF…")
        self.geff_button.setToolTip(
            "Write the labels' tracks and lineage as a GEFF graph (a zarr folder) for trackers "
            "and viewers that read it"
        )
        self.geff_button.clicked.connect(lambda: self.export_geff())
        grid.addWidget(self.segment_all_button, 0, 0, 1, 3)
        grid.addWidget(self.seeds_combo, 1, 0, 1, 2)
        grid.addWidget(self.seeds_button, 1, 2)
        grid.addWidget(QLabel("Divisions"), 2, 0)
        grid.addWidget(self.divisions_combo, 2, 1)
        grid.addWidget(self.track_button, 2, 2)
        grid.addWidget(QLabel("New cells"), 3, 0)
        grid.addWidget(self.reseed_box, 3, 1)
        grid.addWidget(self.cancel_button, 3, 2)
        grid.addWidget(self.progress, 4, 0, 1, 3)
        grid.addWidget(self.review, 5, 0, 1, 3)
        grid.addWidget(self.geff_button, 6, 0, 1, 3)
        self.measurements: pd.DataFrame | None = None  # per object and frame, after Track all
        self.lineage: dict[int, int] = {}
        host.viewer.dims.events.current_step.connect(self._show_features)
        host.viewer.layers.events.inserted.connect(self._refresh_seed_layers)
        host.viewer.layers.events.removed.connect(self._refresh_seed_layers)
        self._refresh_seed_layers()

    # -- panel --------------------------------------------------------------------------

    def refresh(self) -> None:
        self._refresh_seed_layers()
        self.review.refresh()

    def _refresh_seed_layers(self, event=None) -> None:
        import napari

        current = self.seeds_combo.currentText()
        names = [
            layer.name
            for layer in self.host.viewer.layers
            if isinstance(layer, napari.layers.Labels) and layer.name != prompt_layers.LABELS
        ]
        self.seeds_combo.blockSignals(True)
        self.seeds_combo.clear()
        self.seeds_combo.addItems(names)
        if current in names:
            self.seeds_combo.setCurrentText(current)
        self.seeds_combo.blockSignals(False)

    def _ready(self) -> bool:
        if self.session is None:
            self.host.say("Load a model first.")
            return False
        if self.host.busy:
            self.host.say("Busy: wait for the current step to finish.")
            return False
        return True

    def session_started(self, session) -> None:
        self.measurements, self.lineage = None, {}
        self.review.show_items([])

    def _show_features(self, event=None) -> None:
        """The measurements of the frame on view become the labels layer's features."""
        host = self.host
        if self.measurements is None or host.labels is None or host.view is None:
            return
        features = features_on_frame(self.measurements, host.current_frame(), self.lineage)
        host.labels.features = features

    # -- seeds --------------------------------------------------------------------------

    def segment_all(self) -> None:
        """Objects for every mask SAM 2's automatic mask generator keeps on the viewed
        frame (new ids after the objects there are)."""
        if not self._ready():
            return
        session, host = self.session, self.host
        t = host.current_frame()
        settings = settings_for_model(host.model.config.name)

        def find():
            try:
                labels = CellTracker(session.tracker, mask_settings=settings).automatic_seed_labels(
                    t
                )
            except Exception as error:
                raise _engine_error(error, "Segment all") from error
            if not labels.any():
                raise SAM2Error(f"The automatic mask generator found no object on frame {t}.")
            return self._add_seeds(t, labels, offset=max(session.tracker.object_ids, default=0))

        host.say(f"Segmenting every cell on frame {t}…")
        worker = job(find)
        worker.returned.connect(lambda ids: self._seeded(t, ids, "Segment all"))
        host.run_job(worker)

    def seeds_from_layer(self, name: str | None = None) -> None:
        """Every nonzero label of a Labels layer on the viewed frame becomes an object
        (id = label value) prompted with its mask."""
        if not self._ready():
            return
        host = self.host
        name = name or self.seeds_combo.currentText()
        if name not in host.viewer.layers:
            host.say("Choose a Labels layer to take the seeds from.")
            return
        t = host.current_frame()
        try:
            seeds = self.seed_plane(host.viewer.layers[name].data, t)
        except SAM2Error as error:
            host.failed(error)
            return

        def add():
            try:
                return self._add_seeds(t, seeds, offset=0)
            except Exception as error:
                raise _engine_error(error, "Seeds from a Labels layer") from error

        host.say(f"Seeds from {name} on frame {t}…")
        worker = job(add)
        worker.returned.connect(lambda ids: self._seeded(t, ids, f"Seeds from {name}"))
        host.run_job(worker)

    def seed_plane(self, data, t: int) -> np.ndarray:
        """The (H, W) seeds for frame t from a label image: 2-D, shaped like the image, or
        (frames, H, W)."""
        view = self.host.view
        data = np.asarray(data)
        frame_shape = tuple(view.shape[1:3])
        labels_shape = tuple(self.host.labels.data.shape)
        if data.shape == labels_shape:
            plane = data[view.index(t)]
        elif data.ndim == 2:
            plane = data
        elif data.ndim == 3 and view.video_axis is not None and len(data) == view.shape[0]:
            plane = data[t]
        else:
            raise SAM2Error(
                f"The seeds layer has shape {data.shape}; it must be one frame or shaped like "
                f"the image {labels_shape}."
            )
        if plane.shape != frame_shape:
            raise SAM2Error(f"The seeds have shape {plane.shape}; a frame is {frame_shape}.")
        if plane.dtype.kind not in "iub":
            raise SAM2Error(f"The seeds must be integer labels, got {plane.dtype}.")
        if not plane.any():
            raise SAM2Error(f"The seeds layer has no label on frame {t}.")
        return np.array(plane)

    def _add_seeds(self, t: int, labels: np.ndarray, offset: int) -> list[int]:
        """In the worker: each label value becomes an object prompted with its mask."""
        session = self.session
        ids = []
        for value in np.unique(labels):
            if value > 0:
                obj = int(value) + offset
                session.add_mask(t, obj, labels == value)
                ids.append(obj)
        return ids

    def _seeded(self, t: int, ids: list[int], what: str) -> None:
        show_frames(self.host.labels, self.host.view, [t])
        self.host.say(f"{what}: {len(ids)} objects on frame {t}. Track all to follow them.")

    # -- tracking -----------------------------------------------------------------------

    def divisions(self) -> bool:
        choice = self.divisions_combo.currentText()
        return self.host.axis_name() == "T" if choice == "auto" else choice == "on"

    def track_all(self) -> None:
        """Track every object on the viewed frame both ways, with divisions."""
        if not self._ready():
            return
        host, session = self.host, self.session
        t = host.current_frame()
        frames = prompt_layers.label_frames(host.labels, host.view)
        seeds = np.array(frames[t])
        if not seeds.any():
            host.say(
                f"Track all follows the objects on frame {t}: segment all, take seeds from a "
                "Labels layer or click on them first."
            )
            return
        cells = CellTracker(
            session.tracker,
            divisions=self.divisions(),
            reseed_every=self.reseed_box.value() or None,
            mask_settings=settings_for_model(host.model.config.name),
        )
        self._cancel.clear()
        self.progress.setRange(0, session.tracker.num_frames)
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        spacing, unit = host.voxel_size()
        worker = job(self._tracking, cells, t, seeds, frames, frames.copy(), spacing, unit)
        worker.yielded.connect(self._tracked_frame)
        worker.returned.connect(self._tracking_ended)
        host.say(f"Tracking every cell from frame {t}…")
        host.run_job(worker, done=lambda: self.cancel_button.setEnabled(False))

    def _tracking(self, cells: CellTracker, t: int, seeds, frames, before, spacing, unit):
        """In the worker: seed, track frame by frame (stopping on cancel), and put the labels
        back as they were if it does not finish; then measure every object on every frame."""
        try:
            cells.seed_from_labels(t, seeds)
            run = cells.run()
            for done, frame in enumerate(run, start=1):
                if self._cancel.is_set():
                    run.close()
                    frames[...] = before
                    return None
                yield frame, done, len(cells.tracker.object_ids)
            result = cells.result()
            frames[...] = result.labels
            table = measure(result.labels, self.host.view, spacing, unit)
            return result, cells.review.queue(), pd.DataFrame(table)
        except Exception as error:
            frames[...] = before
            raise _engine_error(error, "Tracking every cell") from error

    def _tracked_frame(self, step) -> None:
        frame, done, objects = step
        self.progress.setValue(done)
        self.progress.setFormat(f"%v of %m frames · {objects} objects")
        show_frames(self.host.labels, self.host.view, [frame])
        self.host.say(f"Tracked frame {frame} ({done} of {self.progress.maximum()}).")

    def _tracking_ended(self, outcome) -> None:
        host = self.host
        host.labels.refresh()
        if outcome is None:
            self.progress.setValue(0)
            host.say("Tracking cancelled: the labels are as they were.")
            return
        result, queue, self.measurements = outcome
        self.lineage = dict(result.lineage)
        self._show_features()
        session = self.session
        for obj in result.spans:
            session.object(obj)
        for daughter, parent in result.lineage.items():
            session.object(daughter).parent = parent
        # the cell tracker drives the tracker outside the session's log: logging its frames
        # lets a saved session replay to these labels
        session.record_labels(range(session.tracker.num_frames))
        show_tracks(host.viewer, host.labels, host.view, result.lineage)
        self.review.show_items(queue)
        host.say(
            f"Tracked {len(result.spans)} objects ({len(result.divisions)} divisions); "
            f"{len(queue)} entries to review."
        )

    def export_geff(self, path: str | None = None) -> None:
        """Write the labels (one node per object and frame) and the lineage of the last Track
        all as a GEFF folder; asks where when no path is given."""
        if self.session is None:
            self.host.say("Load a model first.")
            return
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "GEFF graph", "tracks.geff", "GEFF (*.geff)"
            )
            if not path:
                return
        host = self.host
        labels = np.asarray(prompt_layers.label_frames(host.labels, host.view))
        spacing, unit = host.voxel_size()
        try:
            # the dialog has asked before replacing an existing file
            nodes = write_geff(
                path, labels, self.lineage, host.axis_name() + "YX", spacing, unit, overwrite=True
            )
        except SAM2Error as error:
            host.say(f"GEFF export failed: {error}")
            return
        host.say(f"Wrote {path} ({nodes} nodes).")

    def cancel(self) -> None:
        """Stop tracking after the current frame; the labels go back as they were."""
        if self.host.busy and self.cancel_button.isEnabled():
            self._cancel.set()
