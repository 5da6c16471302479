"""The "Speed and memory" panel: the input size, device and precision the loaded model really
runs at, the precision for the next model, the cache budgets (shown and settable), and
background encoding of the viewed frame."""

from qtpy.QtWidgets import QCheckBox, QComboBox, QFormLayout, QLabel, QSpinBox

from ..engine import CacheBudgets
from ..engine.precision import PRECISIONS
from . import plane_refresh
from .background_encoding import BackgroundEncoder
from .panel import Panel

MIB = 1 << 20


def _budget_box(tooltip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(0, 1 << 20)  # MiB
    box.setSuffix(" MiB")
    box.setSingleStep(64)
    box.setToolTip(tooltip)
    return box


class EnginePanel(Panel):
    title = "Speed and memory"

    def __init__(self, host) -> None:
        super().__init__(host)
        form = QFormLayout(self)
        self.runs_at = QLabel("no model loaded")
        self.runs_at.setToolTip("The input size, device and precision of the loaded model")
        self.precision = QComboBox()
        self.precision.addItems(PRECISIONS)
        self.precision.setCurrentText("fast")
        self.precision.setToolTip(
            "The number format of the session: at once while nothing has been done in it, "
            "else from the next one (Load model, another image or axis; a saved session "
            "replays in its own). fast: bfloat16 on CUDA; on a CPU "
            "with bfloat16 instructions and an input of 512 px or more, the image encoder, "
            "memory attention and memory encoder in bfloat16 (propagation 2-3x faster, "
            "masks within IoU 0.99 of float32's) and the SAM heads, a click's part, in float32 "
            "(bfloat16-heavy); float32 elsewhere. bfloat16-encoder: the image encoder "
            "alone in bfloat16. "
            "auto: the same but float32 on every CPU (the reference's numbers)"
        )
        self.feature_budget = _budget_box(
            "Image features kept in memory for clicks and re-propagation (the image encoder "
            "is the slow step); older frames are dropped beyond this"
        )
        self.result_budget = _budget_box(
            "Per-frame results kept beyond what tracking needs, so corrections on recently "
            "tracked frames see the same memory"
        )
        self.feature_budget.valueChanged.connect(self._set_budgets)
        self.result_budget.valueChanged.connect(self._set_budgets)
        self.background = QCheckBox("Encode the viewed frame in the background")
        self.background.setChecked(True)
        self.background.setToolTip(
            "While you look at a frame, run the image encoder on it (then, when idle, on its "
            "neighbours) so that the first click there shows its mask at once"
        )
        self.background.toggled.connect(self._background_toggled)
        self.encoding = QLabel("")
        form.addRow("Runs at", self.runs_at)
        form.addRow("Precision", self.precision)
        self.precision.currentTextChanged.connect(self._precision_changed)
        form.addRow("Feature cache", self.feature_budget)
        form.addRow("Result cache", self.result_budget)
        form.addRow(self.background)
        form.addRow(self.encoding)
        self._chosen: CacheBudgets | None = None  # budgets the user set
        self.encoder = BackgroundEncoder(host, on_encoded=self._encoded)

    def session_started(self, session) -> None:
        tracker = session.tracker
        model = tracker.model
        self.runs_at.setText(
            f"{model.image_size} px input, {tracker.device.type}, {tracker.precision}"
        )
        if self._chosen is not None:  # the user's budgets outlive a session
            tracker.budgets = self._chosen
        budgets = tracker.budgets  # by default a share of the memory the machine has free
        for box, value in (
            (self.feature_budget, budgets.features),
            (self.result_budget, budgets.results),
        ):
            box.blockSignals(True)
            box.setValue(int(value // MIB))
            box.blockSignals(False)
        self.encoding.setText("")
        plane_refresh.watch(self.host.labels)
        self.encoder.viewed(at_once=True)

    def _precision_changed(self, _=None) -> None:
        host = self.host
        session = host.session
        if session is None or session.log or host.busy:
            return  # from the next session: nothing done is thrown away
        host.start_session()  # nothing done yet: the same session in the chosen precision

    def _set_budgets(self, _=None) -> None:
        self._chosen = CacheBudgets(
            self.feature_budget.value() * MIB, self.result_budget.value() * MIB
        )
        tracker = self.host.tracker
        if tracker is not None:
            tracker.budgets = self._chosen

    def _background_toggled(self, on: bool) -> None:
        self.encoder.enabled = on
        if on:
            self.encoder.viewed()
        else:
            self.encoder.stop()

    def _encoded(self, frame: int, computed: bool) -> None:
        tracker = self.host.tracker
        if tracker is None:
            return
        held = tracker.features
        self.encoding.setText(
            f"Frame {frame} {'encoded' if computed else 'was encoded'}; "
            f"{len(held)} frames in the feature cache ({held.nbytes / MIB:.0f} MiB)."
        )
