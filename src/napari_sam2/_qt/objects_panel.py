"""The "Objects" panel: the session's objects (add, rename, remove), the active one that
new clicks belong to, the sign of new clicks, candidate masks and painted masks."""

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QGridLayout, QListWidget, QListWidgetItem, QPushButton

from . import prompt_layers
from .panel import Panel
from .shortcuts import SHORTCUTS
from .workers import job


class ObjectsPanel(Panel):
    title = "Objects"

    def __init__(self, host) -> None:
        super().__init__(host)
        self.active = 1
        self.positive = True
        self.last_click: tuple[int, int] | None = None
        self.candidate = 0
        grid = QGridLayout(self)
        self.object_list = QListWidget()
        self.object_list.currentItemChanged.connect(self._selected)
        self.object_list.itemChanged.connect(self._renamed)
        add = QPushButton("Add")
        add.setToolTip(f"New object ({SHORTCUTS['new_object']})")
        add.clicked.connect(self.add_object)
        remove = QPushButton("Remove")
        remove.clicked.connect(self.remove_active_object)
        self.sign_button = QPushButton()
        self.sign_button.setToolTip(
            f"Sign of new clicks: object or background ({SHORTCUTS['toggle_sign']} on the "
            "clicks layer)"
        )
        self.sign_button.clicked.connect(self.toggle_sign)
        self.candidate_button = QPushButton("Next candidate mask")
        self.candidate_button.setToolTip(
            "After a single click: show the next of the three masks the model proposed "
            f"({SHORTCUTS['next_candidate']} on the clicks layer)"
        )
        self.candidate_button.clicked.connect(self.next_candidate)
        self.painted_button = QPushButton("Use painted mask")
        self.painted_button.setToolTip(
            "Send the active object's mask as painted in the labels layer on the current "
            "frame as a prompt"
        )
        self.painted_button.clicked.connect(self.use_painted_mask)
        grid.addWidget(self.object_list, 0, 0, 1, 2)
        grid.addWidget(add, 1, 0)
        grid.addWidget(remove, 1, 1)
        grid.addWidget(self.sign_button, 2, 0, 1, 2)
        grid.addWidget(self.candidate_button, 3, 0)
        grid.addWidget(self.painted_button, 3, 1)
        self._show_sign()
        self.refresh()

    # -- the list ---------------------------------------------------------------------

    def names(self) -> dict[int, str]:
        session = self.session
        if session is None or not session.objects:
            return {1: "object 1"}
        return {i: o.name for i, o in sorted(session.objects.items())}

    def session_started(self, session) -> None:
        if not session.objects:
            session.object(1)
        if self.active not in session.objects:
            self.active = min(session.objects)
        self.last_click, self.candidate = None, 0
        self.refresh()
        self.apply_active_object()

    def refresh(self) -> None:
        self.object_list.blockSignals(True)
        self.object_list.clear()
        for obj, name in self.names().items():
            item = QListWidgetItem(f"{obj}: {name}")
            item.setData(Qt.ItemDataRole.UserRole, obj)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.object_list.addItem(item)
            if obj == self.active:
                self.object_list.setCurrentItem(item)
        self.object_list.blockSignals(False)

    def _selected(self, item, _previous=None) -> None:
        if item is not None:
            self.active = int(item.data(Qt.ItemDataRole.UserRole))
            self.apply_active_object()

    def _renamed(self, item) -> None:
        obj = int(item.data(Qt.ItemDataRole.UserRole))
        text = item.text()
        name = text.split(":", 1)[1].strip() if ":" in text else text
        if self.session is not None:
            self.session.rename(obj, name)

    def apply_active_object(self) -> None:
        """New clicks, boxes and brush strokes go to the active object."""
        host = self.host
        if host.clicks is not None:
            host.clicks.feature_defaults = {"sign": int(self.positive), "object": self.active}
            host.boxes.feature_defaults = {"object": self.active}
            host.labels.selected_label = self.active

    def add_object(self) -> int:
        session = self.session
        if session is None:
            return self.active
        self.active = session.add_object()
        self.refresh()
        self.apply_active_object()
        return self.active

    def remove_active_object(self) -> None:
        """Remove the active object: its clicks, boxes and labels."""
        host, session = self.host, self.session
        if host.busy:
            host.say("Busy: wait for the current step to finish.")
            return
        obj = self.active
        host.remove_layer_prompts(obj)
        if session is not None and (obj in session.objects or obj in session.tracker.objects):
            session.remove_object(obj)
            host.labels.refresh()
        if session is not None:
            if not session.objects:
                session.object(1)
            self.active = min(session.objects)
        self.refresh()
        self.apply_active_object()

    # -- clicks -----------------------------------------------------------------------

    def toggle_sign(self) -> None:
        self.positive = not self.positive
        self._show_sign()
        self.apply_active_object()

    def _show_sign(self) -> None:
        self.sign_button.setText(
            "Clicks add: object (+)" if self.positive else "Clicks add: background (−)"
        )

    def clicked(self, single: tuple[int, int] | None) -> None:
        """The last prompts sent: `single` is (frame, object) of a lone click, else None."""
        self.last_click, self.candidate = single, 0

    def next_candidate(self) -> None:
        """Cycle through the three masks the model proposed for the last single click."""
        host, session = self.host, self.session
        if session is None or self.last_click is None or host.busy:
            return
        t, obj = self.last_click
        count = session.candidate_count(t, obj)
        if not count:
            return
        self.candidate = (self.candidate + 1) % count
        session.choose_candidate(t, obj, self.candidate)
        host.labels.refresh()
        host.say(f"Candidate {self.candidate + 1} of {count} on frame {t}.")

    def use_painted_mask(self) -> None:
        """The active object's painted mask on the current frame becomes its prompt."""
        host, session = self.host, self.session
        if session is None or host.busy:
            return
        t = host.current_frame()
        obj = self.active
        mask = prompt_layers.label_frames(host.labels, host.view)[t] == obj
        if not mask.any():
            host.say(f"Object {obj} has no painted pixels on frame {t}.")
            return

        def sent(_) -> None:
            host.labels.refresh()
            session.painted.discard(t)

        worker = job(session.add_mask, t, obj, mask)
        worker.returned.connect(sent)
        host.run_job(worker)
