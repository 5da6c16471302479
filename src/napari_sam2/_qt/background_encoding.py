"""Background encoding: the frame the user looks at is run through the image encoder in a
worker thread before they click, then, while nothing else runs, its neighbours (as many as
the feature budget holds), so that a first click on a frame costs only the decoder.

Never on the GUI thread. An encode of a frame other than the one on view stops (between two
blocks of the image encoder) when a propagation or a slow click has run for YIELD_AFTER_MS,
and nothing starts while they run; navigating away drops the frames planned for the old
position and stops an encode of another frame. A click (in either thread) first lets an encode
of a frame it does not need reach its next check, where that encode waits until the click is
done: the two never compute at once, so the click has the processor to itself (the waiting
encode hands back its OpenMP workers, whose idle team would slow the click: `openmp_teams`).
The checks sit before every part of the image encoder (each linear layer, norm, activation
and chunk of a global attention's queries), so a click waits at most for one of them; encodes
of neighbours stay held for a moment after a click, as clicks come in bursts.
"""

import atexit
import functools
import queue
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterable, Iterator
from contextlib import contextmanager

from qtpy.QtCore import QObject, QTimer, Signal

from ..engine.openmp_teams import release_thread_team
from ..errors import SAM2Error
from .workers import worker_job

# how long a frame must stay in view before it is encoded (scrubbing through a stack encodes
# nothing), and how often to look again while the widget is busy
SETTLE_MS = 50
RETRY_MS = 100
# a job (a click, a propagation) running this long cancels a background encode
YIELD_AFTER_MS = 50
# a click waits at most this long for an encode of another frame to reach its next check (the
# longest part of tiny's encoder at 1024, a global attention, takes about 0.25 s on 2 cores)
PARK_WAIT_S = 0.5
# clicks come in bursts (one per cell): encodes of neighbours stay held this long after a
# click, so that the next click does not wait for one of them to reach a check again
CLICK_QUIET_S = 1.0


class EncodeCancelled(Exception):
    """A background encode stopped between two blocks of the image encoder."""


# Clicks and encodes of every widget in the process share one processor, so they hold each
# other across widgets; a frame is named with its tracker (`frame_key`), as two widgets'
# stacks both have a frame 3.
FrameKey = Hashable

_local = threading.local()  # the cancel event and frame of the encode running in this thread
_hooked: "weakref.WeakSet" = weakref.WeakSet()
# the frames each click running now needs, and the frames of the background encodes computing
# now (by thread; an encode waiting at a check is not computing); guarded by _clicks_changed
_clicks: list[set[FrameKey]] = []
_computing: dict[int, FrameKey] = {}
_clicks_changed = threading.Condition()
_last_click = [float("-inf")]  # time.monotonic() when the last click ended
# the frame each widget's user looks at (set in the GUI thread); guarded by _clicks_changed
_on_view: "weakref.WeakKeyDictionary[object, FrameKey]" = weakref.WeakKeyDictionary()


def frame_key(tracker, t: int) -> FrameKey:
    """Frame t of this tracker's stack, as clicks and encodes name it."""
    return (id(tracker), int(t))


class _EncodeThread:
    """The thread a widget's background encodes run in, kept between encodes rather than
    one started per encode, which gets a new OpenMP team and allocator arenas each time
    (measured 0.2 s of 2.8 s slower in two of three alternating runs at tiny@1024, within
    this VM's noise in the third). Jobs run one at a time, in the order given."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.cancel: threading.Event | None = None  # the running job's

    def submit(self, job: Callable[[], None], cancel: threading.Event) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="sam2-background-encode", daemon=True
                )
                self._thread.start()
        # with the caller's thread count, as an encode in the caller's thread would compute
        started = threading.Event()
        self._jobs.put((worker_job(job), cancel, started))
        # returns once the job runs (as a thread's start does): a click that comes next then
        # finds the frame being encoded and waits for it rather than encoding it again
        started.wait(PARK_WAIT_S)

    def _serve(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, self.cancel, started = item
            started.set()
            try:
                job()
            finally:
                self.cancel = None

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the running job at its next check and end the thread (a thread killed inside
        torch when the interpreter exits aborts the process)."""
        cancel, thread = self.cancel, self._thread
        if cancel is not None:
            cancel.set()
        if thread is not None and thread.is_alive():
            self._jobs.put(None)
            thread.join(timeout_s)


# every widget's encode thread, stopped before the interpreter exits
_encode_threads: "weakref.WeakSet[_EncodeThread]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for worker in list(_encode_threads):
        worker.stop()


def _held(frame: FrameKey) -> bool:
    viewed = set(_on_view.values())
    neighbour = bool(viewed) and frame not in viewed
    if neighbour and time.monotonic() - _last_click[0] < CLICK_QUIET_S:
        return True
    return any(frame not in needed for needed in _clicks)


@contextmanager
def hold_for_click(frames: Iterable[FrameKey], wait_s: float = PARK_WAIT_S) -> Iterator[None]:
    """While the block runs (a click on `frames`, see `frame_key`), background encodes of
    other frames (of any widget) wait
    at their next check; the block starts once they are there (or after `wait_s`). An encode
    of one of `frames` goes on: the click waits for it."""
    needed = set(frames)
    with _clicks_changed:
        _clicks.append(needed)
        deadline = time.monotonic() + wait_s
        while any(f not in needed for f in _computing.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            _clicks_changed.wait(left)
    try:
        yield
    finally:
        with _clicks_changed:
            _clicks.remove(needed)
            _last_click[0] = time.monotonic()
            _clicks_changed.notify_all()


@contextmanager
def background_encode(frame: FrameKey, cancel: threading.Event) -> Iterator[None]:
    """Mark this thread as a background encode of `frame` while the block runs: the image
    encoder's checks (`make_cancellable`) stop it when `cancel` is set and hold it for clicks
    (an encode of a frame not on view also for CLICK_QUIET_S after a click)."""
    me = threading.get_ident()
    _local.cancel, _local.frame = cancel, frame
    with _clicks_changed:
        _computing[me] = frame
    try:
        yield
    finally:
        _local.cancel = _local.frame = None
        with _clicks_changed:
            _computing.pop(me, None)
            _clicks_changed.notify_all()


def _stop_if_cancelled(module, args) -> None:
    cancel = getattr(_local, "cancel", None)
    if cancel is None:  # not a background encode
        return
    frame, me = getattr(_local, "frame", None), threading.get_ident()
    with _clicks_changed:
        parked = not cancel.is_set() and _held(frame)
    if parked:
        # an idle team of workers would slow the click's ops (openmp_teams): handed back
        # before the click may start, and outside the lock that clicks and the other
        # encodes take, as it calls into OpenMP
        release_thread_team()
        with _clicks_changed:
            _computing.pop(me, None)  # waiting here: a click may start
            _clicks_changed.notify_all()
            while not cancel.is_set() and _held(frame):
                _clicks_changed.wait(0.05)
            _computing[me] = frame
    if cancel.is_set():
        raise EncodeCancelled


def make_cancellable(model) -> None:
    """Let background encodes of `model` stop, or wait for a click, within its image
    encoder: a check before every part of it (only background encode threads act on them)."""
    if model in _hooked:
        return
    encoder = model.image_encoder
    for part in encoder.modules():
        if part is not encoder:
            part.register_forward_pre_hook(_stop_if_cancelled)
    _hooked.add(model)


class BackgroundEncoder(QObject):
    """Encodes the viewed frame and its neighbours in a worker thread.

    host: the dock widget (its `session`, `view`, `busy`, `current_frame()` and `viewer`);
    neighbours: frames on each side encoded when idle (fewer if the feature budget holds
    fewer); on_encoded(frame, computed): called in the GUI thread after each encode.
    """

    encoded = Signal(int, int, object)  # generation, frame, computed now (None: stopped)

    def __init__(self, host, neighbours: int = 2, on_encoded: Callable | None = None) -> None:
        super().__init__()
        self.host = host
        self.neighbours = neighbours
        self.enabled = True
        self.on_encoded = on_encoded
        self.threads: set[int] = set()  # ids of the threads encodes ran in (for tests)
        self.running: int | None = None  # the frame being encoded now
        self.cancelled: list[int] = []  # frames whose encode was stopped (for tests)
        self._cancel: threading.Event | None = None
        self._worker = _EncodeThread()
        _encode_threads.add(self._worker)
        self.destroyed.connect(functools.partial(self._worker.stop, 0.0))
        self._busy_since: float | None = None
        self._watch = QTimer(self)
        self._watch.setInterval(YIELD_AFTER_MS // 2)
        self._watch.timeout.connect(self._yield_to_jobs)
        self._plan: list[int] = []
        self._generation = 0
        self._planned: tuple[int, int] | None = None  # (generation, tracker) of the plan
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.timeout.connect(self._next)
        self.encoded.connect(self._finished)
        host.viewer.dims.events.current_step.connect(self.viewed)

    def viewed(self, event=None, at_once: bool = False) -> None:
        """The user looks at another frame: plan again from there, after SETTLE_MS (at once
        for a new session: the user is not scrubbing, and the first draw of its layers would
        hold the GUI thread for half a second); an encode of another frame stops."""
        self._generation += 1
        self._plan = []
        host = self.host
        with _clicks_changed:  # encode threads read it under this lock
            if host.view is not None and host.session is not None:
                _on_view[self] = frame_key(host.tracker, host.current_frame())
            else:
                _on_view.pop(self, None)
        if self.running is not None and host.view is not None:
            if host.current_frame() != self.running:
                self.cancel()
        if self.enabled and at_once:
            host.when_idle(self._next)  # as soon as the job that started the session ends
        elif self.enabled:
            try:
                self._settle.start(SETTLE_MS)
            except RuntimeError:  # the dock widget was closed: stop following the viewer
                host.viewer.dims.events.current_step.disconnect(self.viewed)

    def stop(self) -> None:
        """Plan nothing more, and stop the encode that runs."""
        self._generation += 1
        self._plan = []
        self._settle.stop()
        self.cancel()

    def cancel(self) -> None:
        """Stop the running encode at the image encoder's next block."""
        if self._cancel is not None:
            self._cancel.set()

    def _yield_to_jobs(self) -> None:
        if not self.host.busy:
            self._busy_since = None
        elif self._busy_since is None:
            self._busy_since = time.perf_counter()
        elif time.perf_counter() - self._busy_since >= YIELD_AFTER_MS / 1e3:
            # a propagation or a slow click gets the processor, unless this encode is of the
            # frame on view: a click there waits for it rather than encoding it again
            if self.host.view is None or self.running != self.host.current_frame():
                self.cancel()

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
        make_cancellable(tracker.model)
        cancel = self._cancel = threading.Event()
        self.running = frame
        self._busy_since = None
        self._watch.start()

        def encode() -> None:
            self.threads.add(threading.get_ident())
            try:
                with background_encode(frame_key(tracker, frame), cancel):
                    computed = tracker.encode(frame)
            except EncodeCancelled:
                computed = None
            except (SAM2Error, RuntimeError):
                computed = False  # the click or propagation will say what is wrong
            try:
                self.encoded.emit(generation, frame, computed)
            except RuntimeError:  # the widget is gone (napari closing)
                pass

        self._worker.submit(encode, cancel)

    def _finished(self, generation: int, frame: int, computed) -> None:
        self.running = self._cancel = None
        self._watch.stop()
        if computed is None:
            self.cancelled.append(frame)
            if generation == self._generation:  # stopped for a job: plan again after it
                self._planned = None
        elif self.on_encoded is not None:
            self.on_encoded(frame, computed)
        if not self.enabled:
            return
        if generation == self._generation:
            if self._plan or self._planned is None:
                self._settle.start(0 if self._plan else RETRY_MS)
        else:  # the user moved while it ran
            self._settle.start(SETTLE_MS)
