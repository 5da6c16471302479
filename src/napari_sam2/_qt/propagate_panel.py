"""The "Propagate" panel: follow the objects through the stack in a worker, all or nothing
(cancel puts the labels back), re-tracking only the objects whose prompts changed unless
asked for all; frames painted by hand are never overwritten unasked."""

import threading

from napari.utils import progress
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QCheckBox, QGridLayout, QMessageBox, QProgressBar, QPushButton

from ..errors import SAM2Error
from .panel import Panel
from .plane_refresh import show_frames
from .shortcuts import SHORTCUTS
from .tiles_option import TilesOption
from .workers import job

LABELS = {"backward": "◀ Backward", "both": "◀ Both ▶", "forward": "Forward ▶"}


class PropagatePanel(Panel):
    title = "Propagate"

    def __init__(self, host) -> None:
        super().__init__(host)
        self._progress = None
        self._tiled = False  # whether the running propagation is in tiles
        self._cancel_requested = threading.Event()
        buttons = QGridLayout(self)
        self.run_buttons = {}
        for column, direction in enumerate(("backward", "both", "forward")):
            button = QPushButton(LABELS[direction])
            button.setToolTip(f"Propagate {direction} ({SHORTCUTS[direction]})")
            button.clicked.connect(lambda _=False, d=direction: self.propagate(d))
            buttons.addWidget(button, 0, column)
            self.run_buttons[direction] = button
        self.all_objects = QCheckBox("Re-track all objects")
        self.all_objects.setToolTip(
            "Off: only objects whose prompts changed since they were last propagated are "
            "tracked again, the others keep their masks. On: every object."
        )
        buttons.addWidget(self.all_objects, 1, 0, 1, 3)
        self.size_cue = self._setting_box(
            "size_cue",
            "Trim to each object's half-maximum edge",
            "The size cue: each tracked mask keeps only the pixels brighter than half way "
            "from the background to the object's brightness on its prompted frame (darker, "
            "for a dark object). On by default through z with the demo model.",
        )
        buttons.addWidget(self.size_cue, 2, 0, 1, 3)
        self.non_overlap = self._setting_box(
            "non_overlap",
            "Keep objects apart",
            "Where tracked objects claim the same pixels, the most certain one keeps them, in "
            "the labels and in what the model remembers for the next frames (touching cells "
            "stay separate). On by default with the demo model; off with SAM 2's checkpoints.",
        )
        buttons.addWidget(self.non_overlap, 3, 0, 1, 3)
        self.snap_outlines = self._setting_box(
            "snap_outlines",
            "Snap outlines to the image",
            "Each tracked mask's outline moves, by up to 2 pixels, onto the brightness level "
            "of the image that agrees best with it (a small model draws its outlines coarsely); "
            "with the demo model, a mask holding part of its cell grows to the whole region at "
            "that level while it stays within 1.3 times the object's clicked size. On by "
            "default with the demo model; off with SAM 2's checkpoints.",
        )
        buttons.addWidget(self.snap_outlines, 4, 0, 1, 3)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(
            f"Stop propagating; the labels stay as they were ({SHORTCUTS['cancel']})"
        )
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.cancel_button, 5, 0, 1, 3)
        self.progress_bar = QProgressBar()  # in the dock, not only in napari's corner
        self.progress_bar.setFormat("")  # empty until a run
        self.progress_bar.setValue(0)
        buttons.addWidget(self.progress_bar, 6, 0, 1, 3)
        self.tiles = TilesOption(host)  # large frames at their own resolution
        buttons.addWidget(self.tiles, 7, 0, 1, 3)

    def session_started(self, session) -> None:
        self.tiles.describe()  # the tile count of the new frames
        self.refresh()

    def refresh(self) -> None:
        # the session's own choice (layer_session: the model's default along the axis; a
        # loaded session file: its own)
        session = self.session
        boxes = (
            (self.size_cue, "size_cue"),
            (self.non_overlap, "non_overlap"),
            (self.snap_outlines, "snap_outlines"),
        )
        for box, value in boxes:
            box.setEnabled(session is not None)
            if session is not None:
                box.blockSignals(True)
                box.setChecked(getattr(session, value))
                box.blockSignals(False)

    def _setting_box(self, setting: str, text: str, tip: str) -> QCheckBox:
        """A box for one of the session's settings of the next propagation (the log records
        each run's), enabled once a session exists."""
        box = QCheckBox(text)
        box.setToolTip(tip)
        box.setEnabled(False)

        def toggled(on: bool) -> None:
            if self.session is not None:
                setattr(self.session, setting, on)

        box.toggled.connect(toggled)
        return box

    def propagate(self, direction: str) -> None:
        """Propagate; frames painted by hand are not overwritten unasked."""
        host, session = self.host, self.session
        if session is None:
            host.say("Load a model and click on the image first.")
            return
        if host.busy:
            host.say("Busy: wait for the current step to finish.")
            return
        if session.painted and not self._resolve_painted():
            return
        objects = "all" if self.all_objects.isChecked() else "changed"
        try:
            tiled = self.tiles.tiled_run(direction)
            self._tiled = tiled is not None
            if tiled is not None:  # every object, in tiles
                run, total = tiled
            else:
                total = session.propagation_length(direction, objects=objects)
                run = session.propagate(direction, objects=objects)
        except SAM2Error as error:
            host.failed(error)
            return
        self._progress = progress(total=total, desc=f"SAM 2: propagating {direction}")
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(f"{direction}: %v of %m frames")
        self._cancel_requested.clear()
        worker = job(self._propagation, run)
        worker.yielded.connect(self._propagated_frame)
        worker.returned.connect(self._ended)
        worker.errored.connect(self._close_progress)
        self.cancel_button.setEnabled(True)
        host.say(f"Propagating {direction}…")
        host.run_job(worker, done=lambda: self.cancel_button.setEnabled(False))

    def _resolve_painted(self) -> bool:
        """Ask what to do with frames painted by hand; False means do not propagate."""
        session = self.session
        answer = self.host.ask_about_painted(sorted(session.painted))
        if answer == "use":
            session.send_painted()
        elif answer == "overwrite":
            session.painted.clear()
        return answer != "cancel"

    def _propagation(self, run):
        """Propagation in the worker thread, stopped between frames on request; stopping
        closes the run, which puts the labels back as they were."""
        for step in run:
            if self._cancel_requested.is_set():
                run.close()
                return "cancelled"
            yield step
        return "finished"

    def _propagated_frame(self, step) -> None:
        if self._progress is None:  # a late signal after the run ended
            return
        self.host.say(f"Propagated frame {step.frame} ({step.done} of {step.total}).")
        self.progress_bar.setValue(step.done)
        show_frames(self.host.labels, self.host.view, [step.frame])
        # last: updating napari's progress bar may process queued signals of later frames
        self._progress.update(step.done - self._progress.n)

    def _ended(self, outcome: str) -> None:
        self._close_progress()
        self.host.labels.refresh()
        if outcome == "finished" and self._tiled and self.session is not None:
            # tiles drive their own trackers outside the session's log: logging the frames
            # lets a saved session replay to these labels
            self.session.record_labels(range(self.session.tracker.num_frames))
        self.host.say(
            "Propagation finished."
            if outcome == "finished"
            else "Propagation cancelled: the labels are as they were."
        )

    def _close_progress(self, _error=None) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def cancel(self) -> None:
        """Stop propagating after the current frame; the labels go back as they were."""
        if self.host.busy and self.cancel_button.isEnabled():
            self._cancel_requested.set()
            show_info("SAM 2: cancelling propagation")


def ask_about_painted(parent, frames: list[int]) -> str:
    """ "use" (as prompts), "overwrite" or "cancel", as the user answers."""
    box = QMessageBox(parent)
    box.setWindowTitle("Frames painted by hand")
    box.setText(
        f"{len(frames)} frame(s) were painted by hand ({', '.join(map(str, frames[:10]))}"
        f"{' …' if len(frames) > 10 else ''}). Propagation would overwrite them."
    )
    use = box.addButton("Use them as prompts", QMessageBox.ButtonRole.AcceptRole)
    overwrite = box.addButton("Overwrite", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return {use: "use", overwrite: "overwrite"}.get(box.clickedButton(), "cancel")
