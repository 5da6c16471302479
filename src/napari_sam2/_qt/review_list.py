"""The review list: the frames the tracking is least sure of, (object, frame, reason,
score), most suspicious first. Choosing an entry shows that frame and makes that object the
active one; entries of a frame go once it was corrected (a click or a mask there) and then
propagated again."""

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..engine.review import ReviewItem
from ..session.log import MaskPrompt, PromptEdit, Propagation

NEXT_KEY, PREVIOUS_KEY = "Shift-J", "Shift-K"  # viewer keys, as in a list of mails


def fixed_frames(log: list, since: int) -> set[int]:
    """Frames corrected (prompts or masks) in log[since:] and propagated after."""
    fixed, corrected = set(), set()
    for op in log[since:]:
        if isinstance(op, PromptEdit | MaskPrompt):
            corrected.add(op.frame)
        elif isinstance(op, Propagation) and op.frames is None:
            fixed |= corrected
    return fixed


class ReviewList(QWidget):
    """The list of `ReviewItem`s; `host` gives the viewer, the view, the session and the
    objects panel."""

    def __init__(self, host) -> None:
        super().__init__()
        self.host = host
        self.items: list[ReviewItem] = []
        self._since = 0  # session log length when the queue was made
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("Review: track all to list the frames to look at.")
        self.summary.setWordWrap(True)
        self.list = QListWidget()
        self.list.setToolTip(
            f"Frames to look at, most suspicious first; {NEXT_KEY} / {PREVIOUS_KEY} in the "
            "viewer for the next / previous one"
        )
        self.list.currentRowChanged.connect(self._chosen)
        row = QHBoxLayout()
        for text, step, key in (("◀ Previous", -1, PREVIOUS_KEY), ("Next ▶", 1, NEXT_KEY)):
            button = QPushButton(text)
            button.setToolTip(f"{text.strip('◀▶ ')} entry ({key})")
            button.clicked.connect(lambda _=False, s=step: self.step(s))
            row.addWidget(button)
        layout.addWidget(self.summary)
        layout.addWidget(self.list)
        layout.addLayout(row)
        host.viewer.bind_key(NEXT_KEY, lambda viewer: self.step(1), overwrite=True)
        host.viewer.bind_key(PREVIOUS_KEY, lambda viewer: self.step(-1), overwrite=True)

    def show_items(self, items: list[ReviewItem]) -> None:
        """A new queue (after tracking); corrections from now on clear their frames."""
        session = self.host.session
        self._since = 0 if session is None else len(session.log)
        self.items = list(items)
        self._fill()

    def refresh(self) -> None:
        """Drop the entries of frames corrected and propagated since the queue was made."""
        session = self.host.session
        if session is None or not self.items:
            return
        fixed = fixed_frames(session.log, self._since)
        if fixed and any(item.frame in fixed for item in self.items):
            self.items = [item for item in self.items if item.frame not in fixed]
            self._fill()

    def _fill(self) -> None:
        current = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        for item in self.items:
            text = f"frame {item.frame} · object {item.obj_id} · {item.reason} ({item.score:.2f})"
            entry = QListWidgetItem(text)
            entry.setToolTip(item.detail or item.reason)
            entry.setData(Qt.ItemDataRole.UserRole, (item.frame, item.obj_id))
            self.list.addItem(entry)
        if self.items and current >= 0:
            self.list.setCurrentRow(min(current, len(self.items) - 1))
        self.list.blockSignals(False)
        self.summary.setText(
            f"Review: {len(self.items)} entries on {len({i.frame for i in self.items})} frames."
            if self.items
            else "Review: nothing to look at."
        )

    def step(self, step: int) -> None:
        """Choose the next (1) or previous (-1) entry."""
        if not self.items:
            return
        row = self.list.currentRow()
        row = 0 if row < 0 else min(max(row + step, 0), len(self.items) - 1)
        self.list.setCurrentRow(row)

    def _chosen(self, row: int) -> None:
        if not 0 <= row < len(self.items):
            return
        self.go_to(self.items[row])

    def go_to(self, item: ReviewItem) -> None:
        """Show the entry's frame and make its object the active one."""
        host = self.host
        if host.view is not None and host.view.video_axis is not None:
            host.viewer.dims.set_point(host.view.video_axis, item.frame)
        objects = getattr(host, "objects_panel", None)
        if objects is not None and host.session is not None:
            host.session.object(item.obj_id)
            objects.active = item.obj_id
            objects.refresh()
            objects.apply_active_object()
        elif host.labels is not None:
            host.labels.selected_label = item.obj_id
