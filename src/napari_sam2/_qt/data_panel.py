"""The "Data and model" panel: which image, which axis to follow, which model on which
device at which input size; loading the model starts a session."""

from pathlib import Path

import napari
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QWidget,
)

from ..errors import SAM2Error
from ..model.catalogue import DEMO_NAME, model_entry, model_names
from . import prompt_layers
from .panel import Panel
from .workers import job

CHECKPOINT_FILE = "checkpoint file…"
DEVICES = ("auto", "cpu", "cuda", "mps")
INPUT_SIZES = (1024, 768, 512, 256)


def axis_name(image: napari.layers.Image, axis: int | None) -> str:
    """ "Z" when the axis is labelled z, else "T" (a 2-D image is one time point)."""
    if axis is None:
        return "T"
    return "Z" if str(image.axis_labels[axis]).upper().startswith("Z") else "T"


class DataPanel(Panel):
    title = "Data and model"

    def __init__(self, host) -> None:
        super().__init__(host)
        form = QFormLayout(self)
        self.image_combo = QComboBox()
        self.image_combo.currentTextChanged.connect(self._image_changed)
        self.axis_combo = QComboBox()
        self.axis_combo.setToolTip("The axis to propagate along (time or z); others stay fixed")
        self.axis_combo.currentIndexChanged.connect(lambda _: host.start_session())
        self.model_combo = QComboBox()
        self.model_combo.addItems([*model_names(), CHECKPOINT_FILE])
        self.model_combo.setToolTip(
            'Official models download on first use; "demo" is a small model trained on '
            "synthetic cells that ships with the plugin (for trying it out offline)"
        )
        from ..model.weights import is_cached

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
        self.load_button.clicked.connect(lambda: self.load_model())
        form.addRow("Image", self.image_combo)
        form.addRow("Propagate along", self.axis_combo)
        form.addRow("Model", self.model_combo)
        form.addRow("Checkpoint", self.checkpoint_row)
        form.addRow("Device", self.device_combo)
        form.addRow("Input size", self.size_combo)
        form.addRow(self.load_button)
        self._model_choice_changed(self.model_combo.currentText())

    # -- image and axis ---------------------------------------------------------------

    @property
    def image(self) -> napari.layers.Image | None:
        layers = self.host.viewer.layers
        name = self.image_combo.currentText()
        return layers[name] if name in layers else None

    def refresh_images(self, event=None) -> None:
        current = self.image_combo.currentText()
        names = [
            layer.name
            for layer in self.host.viewer.layers
            if isinstance(layer, napari.layers.Image)
        ]
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems(names)
        if current in names:
            self.image_combo.setCurrentText(current)
        self.image_combo.blockSignals(False)
        if self.image_combo.currentText() != current:
            self._image_changed(self.image_combo.currentText())

    def _image_changed(self, name: str) -> None:
        image = self.image
        self.axis_combo.blockSignals(True)
        self.axis_combo.clear()
        if image is not None:
            leading = len(prompt_layers.spatial_shape(image)) - 2
            for i in range(leading):
                label = str(image.axis_labels[i])
                title = f"axis {i}" if label.lstrip("-").isdigit() else f"axis {i} ({label})"
                unit = "slices" if axis_name(image, i) == "Z" else "frames"
                self.axis_combo.addItem(f"{title}: {image.data.shape[i]} {unit}")
            # a z-stack is followed along Z; a time-lapse along T
            names = [axis_name(image, i) for i in range(leading)]
            labels = [str(image.axis_labels[i]).upper() for i in range(leading)]
            if "T" in labels:
                self.axis_combo.setCurrentIndex(labels.index("T"))
            elif "Z" in names:
                self.axis_combo.setCurrentIndex(names.index("Z"))
        self.axis_combo.blockSignals(False)
        self.host.start_session()

    @property
    def video_axis(self) -> int | None:
        image = self.image
        if image is None or len(prompt_layers.spatial_shape(image)) == 2:
            return None
        return max(self.axis_combo.currentIndex(), 0)

    # -- model ------------------------------------------------------------------------

    def _model_choice_changed(self, text: str) -> None:
        self.checkpoint_row.setVisible(text == CHECKPOINT_FILE)
        self.size_combo.setEnabled(text != DEMO_NAME)  # the demo runs at its trained size

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SAM 2 checkpoint", "", "Checkpoints (*.pt)")
        if path:
            self.checkpoint_edit.setText(path)

    def choose(self, model: str | None, checkpoint: str | None, image_size: int | None) -> None:
        """Set the model controls (e.g. to what a session file names)."""
        if checkpoint is not None:
            self.model_combo.setCurrentText(CHECKPOINT_FILE)
            self.checkpoint_edit.setText(checkpoint)
        elif model is not None:
            self.model_combo.setCurrentText(model)
        if image_size is not None:
            if self.size_combo.findText(str(image_size)) < 0:
                self.size_combo.addItem(str(image_size))
            self.size_combo.setCurrentText(str(image_size))

    def load_model(self, then=None) -> None:
        """Build the chosen model (downloading official weights if needed) in a worker; a
        new session starts when it is loaded, then `then()` runs."""
        host = self.host
        if host.busy:
            host.say("Busy: wait for the current step to finish.")
            return
        name = self.model_combo.currentText()
        checkpoint = "auto"
        if name == CHECKPOINT_FILE:
            checkpoint = self.checkpoint_edit.text().strip()
            if not checkpoint:
                host.say("Choose a checkpoint file first.")
                return
        from ..model.devices import resolve_device

        try:
            device = resolve_device(self.device_combo.currentText())
        except SAM2Error as error:
            host.failed(error)
            return
        size = int(self.size_combo.currentText())
        shown = Path(checkpoint).name if name == CHECKPOINT_FILE else name
        host.say(f"Loading {shown} on {device}…")
        if host.image is not None:
            # the layers' first draw (shaders, glyphs: half a second of the GUI thread) runs
            # while the model loads, not beside the first encode
            host.prompt_sync.adopt_layers(host.image)
        source = (
            (None, str(Path(checkpoint).resolve())) if name == CHECKPOINT_FILE else (name, None)
        )

        def loaded(model) -> None:
            host.model, host.model_source = model, source
            self.choose(None, None, model.image_size)  # the size it really runs at
            host.say(f"{model.config.name} loaded. Click on the image to segment.")
            host.start_session()
            if then is not None:
                # once this worker is done: `then` may start the next one
                finished.append(then)

        finished = []
        worker = job(_load, name, checkpoint, device, size)
        worker.returned.connect(loaded)
        host.run_job(worker, done=lambda: [step() for step in finished])


def _load(choice: str, checkpoint: str, device: str, image_size: int):
    """Build the chosen model; a checkpoint file brings its own model (stored configuration,
    official file name, or the official model its shapes fit)."""
    from ..model import build_model, build_model_from_checkpoint

    if choice == CHECKPOINT_FILE:
        return build_model_from_checkpoint(
            checkpoint, device=device, image_size=image_size, keep_trained_size=True
        )
    if model_entry(choice).shipped:  # trained at its own input size
        image_size = None
    return build_model(choice, checkpoint=checkpoint, device=device, image_size=image_size)
