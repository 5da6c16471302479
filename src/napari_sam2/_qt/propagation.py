"""The widget's propagation: a worker runs the engine's all-or-nothing propagation, the
labels layer follows frame by frame, and frames painted by hand are never overwritten
unasked."""

import numpy as np
from napari.utils import progress
from napari.utils.notifications import show_info
from qtpy.QtWidgets import QMessageBox

from ..engine import propagate_or_restore
from ..errors import SAM2Error
from . import prompt_layers
from .workers import job


class PropagationMixin:
    """Propagate / cancel actions of `SAM2Widget`."""

    def propagate(self, direction: str) -> None:
        """Propagate every object; frames painted by hand are not overwritten unasked."""
        if self.tracker is None:
            self._say("Load a model and click on the image first.")
            return
        if self.busy:
            self._say("Busy: wait for the current step to finish.")
            return
        if self.state.painted and not self._resolve_painted():
            return
        try:
            total = self.tracker.propagation_length(direction)
        except SAM2Error as error:
            self._failed(error)
            return
        self._progress = progress(total=total, desc=f"SAM 2: propagating {direction}")
        self._cancel_requested.clear()
        worker = job(self._propagation, direction)
        worker.yielded.connect(self._propagated_frame)
        self.cancel_button.setEnabled(True)
        self._say(f"Propagating {direction}…")
        worker.returned.connect(self._propagation_ended)
        worker.errored.connect(self._close_progress)
        self._start(worker)

    def _resolve_painted(self) -> bool:
        """Ask what to do with frames painted by hand; False means do not propagate."""
        answer = self.ask_about_painted(sorted(self.state.painted))
        if answer == "use":
            self.send_painted_frames()
        elif answer == "overwrite":
            self.state.painted.clear()
        return answer != "cancel"

    def ask_about_painted(self, frames: list[int]) -> str:
        """ "use" (as prompts), "overwrite" or "cancel", as the user answers."""
        box = QMessageBox(self)
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

    def send_painted_frames(self) -> None:
        """Every painted frame's objects become mask prompts (runs in this thread)."""
        frames = prompt_layers.label_frames(self.labels, self.view)
        for t in sorted(self.state.painted):
            for obj in np.unique(frames[t]):
                if obj:
                    self.tracker.add_mask(t, int(obj), frames[t] == obj)
        self.state.painted.clear()

    def _propagation(self, direction: str):
        """Propagation in the worker thread, stopped between frames on request. Stopping
        closes the run, which puts the labels back as they were."""
        run = propagate_or_restore(self.tracker, direction)
        for step in run:
            if self._cancel_requested.is_set():
                run.close()
                return "cancelled"
            yield step
        return "finished"

    def _propagated_frame(self, step) -> None:
        if self._progress is None:  # a late signal after the run ended
            return
        self._say(f"Propagated frame {step.frame} ({step.done} of {step.total}).")
        self.labels.refresh()
        # last: updating napari's progress bar may process queued signals of later frames
        self._progress.update(step.done - self._progress.n)

    def _propagation_ended(self, outcome: str) -> None:
        self._close_progress()
        self.labels.refresh()
        self._say(
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
        if self._worker is not None and self.cancel_button.isEnabled():
            self._cancel_requested.set()
            show_info("SAM 2: cancelling propagation")
