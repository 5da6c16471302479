"""Background encoding: the frame the user looks at is run through the image encoder in a
worker thread before they click, then, while nothing else runs, its neighbours (as many as
the feature budget holds), so that a first click on a frame costs only the decoder.

Never on the GUI thread; never while a click or a propagation runs (it waits for them);
navigating away drops the frames planned for the old position (an encode already running
finishes, and its features stay cached).
"""

import threading
from collections.abc import Callable

from qtpy.QtCore import QObject, QTimer, Signal

from ..errors import SAM2Error

# how long a frame must stay in view before it is encoded (scrubbing through a stack encodes
# nothing), and how often to look again while the widget is busy
SETTLE_MS = 150
RETRY_MS = 100


class BackgroundEncoder(QObject):
    """Encodes the viewed frame and its neighbours in a worker thread.

    host: the dock widget (its `session`, `view`, `busy`, `current_frame()` and `viewer`);
    neighbours: frames on each side encoded when idle (fewer if the feature budget holds
    fewer); on_encoded(frame, computed): called in the GUI thread after each encode.
    """

    encoded = Signal(int, int, bool)  # generation, frame, computed now

    def __init__(self, host, neighbours: int = 2, on_encoded: Callable | None = None) -> None:
        super().__init__()
        self.host = host
        self.neighbours = neighbours
        self.enabled = True
        self.on_encoded = on_encoded
        self.threads: set[int] = set()  # ids of the threads encodes ran in (for tests)
        self.running: int | None = None  # the frame being encoded now
        self._plan: list[int] = []
        self._generation = 0
        self._planned: tuple[int, int] | None = None  # (generation, tracker) of the plan
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.timeout.connect(self._next)
        self.encoded.connect(self._finished)
        host.viewer.dims.events.current_step.connect(self.viewed)

    def viewed(self, event=None) -> None:
        """The user looks at another frame: plan again from there, after SETTLE_MS."""
        self._generation += 1
        self._plan = []
        if self.enabled:
            self._settle.start(SETTLE_MS)

    def stop(self) -> None:
        """Plan nothing more (an encode already running finishes)."""
        self._generation += 1
        self._plan = []
        self._settle.stop()

    def plan(self, t: int) -> list[int]:
        """Frames to encode from frame t, nearest first: t, then its neighbours, as many
        as the feature budget holds besides t; without those already encoded."""
        tracker = self.host.tracker
        cache = tracker.features
        count = self.neighbours
        if len(cache):
            per_frame = max(1, cache.nbytes // len(cache))
            count = min(count, max(0, cache.budget_bytes // per_frame - 1) // 2)
        frames = [t]
        for step in range(1, count + 1):
            frames += [u for u in (t + step, t - step) if 0 <= u < tracker.num_frames]
        return [u for u in frames if not tracker.is_encoded(u)]

    def _next(self) -> None:
        host = self.host
        if not self.enabled or host.session is None or self.running is not None:
            return
        if host.busy:  # a click or a propagation first
            self._settle.start(RETRY_MS)
            return
        tracker = host.tracker
        if self._planned != (self._generation, id(tracker)):
            self._planned = (self._generation, id(tracker))
            self._plan = self.plan(host.current_frame())
        if not self._plan:
            return
        frame, generation = self._plan.pop(0), self._generation
        self.running = frame

        def encode() -> None:
            self.threads.add(threading.get_ident())
            try:
                computed = tracker.encode(frame)
            except (SAM2Error, RuntimeError):
                computed = False  # the click or propagation will say what is wrong
            self.encoded.emit(generation, frame, computed)

        threading.Thread(target=encode, name="sam2-background-encode", daemon=True).start()

    def _finished(self, generation: int, frame: int, computed: bool) -> None:
        self.running = None
        if self.on_encoded is not None:
            self.on_encoded(frame, computed)
        if not self.enabled:
            return
        if generation == self._generation:
            if self._plan:
                self._settle.start(0)
        else:  # the user moved while it ran
            self._settle.start(SETTLE_MS)
