"""The widget's controls: the Qt layout of the dock widget and its shortcuts, connected to
the actions `SAM2Widget` defines."""

from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..model import MODEL_NAMES
from ..model.demo import DEMO_NAME
from ..model.weights import is_cached

CHECKPOINT_FILE = "checkpoint file…"
DEVICES = ("auto", "cpu", "cuda", "mps")
INPUT_SIZES = (1024, 768, 512, 256)
SHORTCUTS = {
    "toggle_sign": "N",  # on the clicks layer
    "next_candidate": "C",  # on the clicks layer
    "forward": "Shift-F",
    "backward": "Shift-B",
    "both": "Shift-P",
    "new_object": "Shift-N",
    "cancel": "Shift-C",
}


class ControlsMixin:
    """Builds the controls of `SAM2Widget` (a QWidget with the connected actions)."""

    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)

        data = QGroupBox("Data and model")
        form = QFormLayout(data)
        self.image_combo = QComboBox()
        self.image_combo.currentTextChanged.connect(self._image_changed)
        self.axis_combo = QComboBox()
        self.axis_combo.setToolTip("The axis to propagate along (time or z); others stay fixed")
        self.axis_combo.currentIndexChanged.connect(self._reset_session)
        self.model_combo = QComboBox()
        self.model_combo.addItems([*MODEL_NAMES, DEMO_NAME, CHECKPOINT_FILE])
        self.model_combo.setToolTip(
            'Official models download on first use; "demo" is a small model trained on '
            "synthetic cells that ships with the plugin (for trying it out offline)"
        )
        # offline and nothing downloaded yet: start with the model that works at once
        self.model_combo.setCurrentText(
            "sam2.1_hiera_tiny" if is_cached("sam2.1_hiera_tiny") else DEMO_NAME
        )
        self.model_combo.currentTextChanged.connect(self._model_choice_changed)
        self.checkpoint_edit = QLineEdit()
        self.checkpoint_edit.setPlaceholderText("path to a .pt checkpoint")
        browse = QPushButton("…")
        browse.clicked.connect(self._browse_checkpoint)
        row = QHBoxLayout()
        row.addWidget(self.checkpoint_edit)
        row.addWidget(browse)
        self.checkpoint_row = QWidget()
        self.checkpoint_row.setLayout(row)
        self.checkpoint_row.setVisible(False)
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICES)
        self.size_combo = QComboBox()
        self.size_combo.addItems([str(size) for size in INPUT_SIZES])
        self.size_combo.setToolTip(
            "The model's input size: 1024 as trained; smaller is faster and coarser"
        )
        self.load_button = QPushButton("Load model")
        self.load_button.clicked.connect(self.load_model)
        form.addRow("Image", self.image_combo)
        form.addRow("Propagate along", self.axis_combo)
        form.addRow("Model", self.model_combo)
        form.addRow("Checkpoint", self.checkpoint_row)
        form.addRow("Device", self.device_combo)
        form.addRow("Input size", self.size_combo)
        form.addRow(self.load_button)
        layout.addWidget(data)

        objects = QGroupBox("Objects")
        grid = QGridLayout(objects)
        self.object_list = QListWidget()
        self.object_list.currentItemChanged.connect(self._object_selected)
        self.object_list.itemChanged.connect(self._object_renamed)
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
        layout.addWidget(objects)

        run = QGroupBox("Propagate")
        buttons = QGridLayout(run)
        self.run_buttons = {}
        for column, direction in enumerate(("backward", "both", "forward")):
            button = QPushButton(
                {"backward": "◀ Backward", "both": "◀ Both ▶", "forward": "Forward ▶"}[direction]
            )
            button.setToolTip(f"Propagate {direction} ({SHORTCUTS[direction]})")
            button.clicked.connect(lambda _=False, d=direction: self.propagate(d))
            buttons.addWidget(button, 0, column)
            self.run_buttons[direction] = button
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip(
            f"Stop propagating; the labels stay as they were ({SHORTCUTS['cancel']})"
        )
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.cancel_button, 1, 0, 1, 3)
        layout.addWidget(run)

        files = QGroupBox("Files")
        row = QHBoxLayout(files)
        for text, tip, action in (
            ("Save labels…", "The label volume as a compressed TIFF", self._ask_save_labels),
            (
                "Save session…",
                "Objects and prompts as JSON, to resume later",
                self._ask_save_session,
            ),
            ("Load session…", "Objects and prompts from a session JSON", self._ask_load_session),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(action)
            row.addWidget(button)
        layout.addWidget(files)

        self.status = QLabel("Load a model to start.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch()
        self._show_objects()
        self._show_sign()
        self._model_choice_changed(self.model_combo.currentText())
