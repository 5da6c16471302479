"""The "Files" panel: save the labels (with the voxel size), save the session (its log, so
it replays exactly), and load a session: replayed into a new session, or for a file
without a log (version 1) its prompts put back in the layers."""

from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QPushButton

from ..errors import SAM2Error
from ..io import check_prompts_fit, write_labels
from ..session import read_session, replay_prompts, write_session
from ..session.files import check_replay_fits
from ..session.headless import session_precision
from .panel import Panel
from .workers import job


class FilesPanel(Panel):
    title = "Files"
    # a frame of a replay's propagation done (emitted from the worker thread; Qt queues it)
    frame_replayed = Signal(object)

    def __init__(self, host) -> None:
        super().__init__(host)
        row = QHBoxLayout(self)
        for text, tip, action in (
            ("Save labels…", "The label volume as a compressed TIFF", self._ask_save_labels),
            (
                "Save session…",
                "Objects, prompts and every step as JSON, to replay exactly later or with "
                "napari-sam2 segment",
                self._ask_save_session,
            ),
            ("Load session…", "Replay a saved session on this image", self._ask_load_session),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(action)
            row.addWidget(button)

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
        """The label volume as a compressed TIFF (atomic), axes ZYX along z, else TYX, with
        the image's voxel size where it has one."""
        host = self.host
        if self.session is None:
            host.say("Nothing to save yet.")
            return
        name = host.axis_name()
        spacing, unit = host.voxel_size()
        try:
            written = write_labels(
                path,
                self.session.tracker.labels(),
                axes=name + "YX",
                overwrite=overwrite,
                spacing=spacing,
                unit=unit,
            )
        except SAM2Error as error:
            host.failed(error)
            return
        host.say(f"Labels saved to {written}.")

    def save_session(self, path: str) -> None:
        """The session with its log, so loading it (or `napari-sam2 segment --prompts`)
        replays it to the same labels."""
        if self.session is None:
            self.host.say("Nothing to save yet.")
            return
        for obj in self.session.objects.values():
            obj.colour = self.host.label_colour(obj.id) or obj.colour
        try:
            write_session(path, self.session)
        except SAM2Error as error:
            self.host.failed(error)
            return
        self.host.say(f"Session saved to {path}.")

    def load_session(self, path: str) -> None:
        """Replace the session with a saved one. With no model loaded yet, the model the
        session names is loaded first."""
        host = self.host
        if host.busy:  # e.g. the model is still being loaded: load once it is done
            host.say(f"Will load {Path(path).name} when the current step is done.")
            host.when_idle(lambda: self.load_session(path))
            return
        try:
            prompts, ops = read_session(path)
        except SAM2Error as error:
            host.failed(error)
            return
        if host.model is None:
            if prompts.model is None and prompts.checkpoint is None:
                host.say("Load a model before loading this session (it names none).")
                return
            host.data_panel.choose(prompts.model, prompts.checkpoint, prompts.image_size)
            host.data_panel.load_model(then=lambda: self._load(path, prompts, ops))
            return
        self._load(path, prompts, ops)

    def _load(self, path: str, prompts, ops) -> None:
        host = self.host
        if host.session is None:
            host.say("Choose an image before loading a session.")
            return
        source = Path(path).name
        tracker = host.session.tracker
        try:  # checked first: a session that does not fit replaces nothing
            check_same_view(prompts, host.view, source)
            check_replay_fits(
                prompts, ops or [], tracker.num_frames, tracker.height, tracker.width, source
            )
        except SAM2Error as error:
            host.failed(error)
            return
        if ops is None:  # no log (version 1): the prompts go to the layers and are segmented
            try:
                check_prompts_fit(
                    prompts, tracker.num_frames, tracker.height, tracker.width, source
                )
            except SAM2Error as error:
                host.failed(error)
                return
            host.start_session(clear_prompts=True).take_choices(prompts)
            host.session_changed()  # the panels show the file's choices
            host.show_prompts(prompts)
            host.say(f"Prompts loaded from {source}.")
            return
        # replayed on a label array of its own: the current session stays as it is until
        # the replay succeeds
        session = host.new_session(
            labels_out=None,
            normalization=prompts.normalization,
            precision=session_precision(prompts, None, host.model.device),
        )
        session.take_choices(prompts)

        def replayed(same: bool) -> None:
            try:
                host.adopt_session(session)
            except SAM2Error as error:
                host.failed(error)
                return
            note = "" if same else " Note: the labels differ from those saved with it."
            host.say(f"Session replayed from {source}.{note}")

        def progressed(step) -> None:
            if host.busy:
                host.say(f"Replaying {source}: frame {step.frame} ({step.done} of {step.total}).")

        host.say(f"Replaying {source}…")
        self.frame_replayed.connect(progressed)
        worker = job(replay_prompts, session, prompts, ops, source, self.frame_replayed.emit)
        worker.finished.connect(lambda: self.frame_replayed.disconnect(progressed))
        worker.returned.connect(replayed)
        host.run_job(worker)


def check_same_view(prompts, view, source: str) -> None:
    """A SAM2Error when a session followed another axis of N-D data, or was made on other
    planes of the fixed axes, than the widget shows now."""
    axis = prompts.video_axis
    if isinstance(axis, int) and view.video_axis is not None and axis != view.video_axis:
        raise SAM2Error(
            f"{source}: the session follows axis {axis}, this one axis {view.video_axis}; "
            "choose it under Propagate along first"
        )
    if prompts.fixed is None or len(prompts.fixed) != len(view.fixed):
        return
    other = [
        (i, saved, now)
        for i, (saved, now) in enumerate(zip(prompts.fixed, view.fixed, strict=True))
        if i != view.video_axis and saved != now
    ]
    if other:
        i, saved, now = other[0]
        raise SAM2Error(
            f"{source}: the session was made on plane {saved} of axis {i}, the viewer shows "
            f"plane {now}; move there first"
        )
