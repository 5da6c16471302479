"""Clicks that need only the decoder run in the GUI thread when that is quicker than a worker.

A click on a frame whose image features are cached costs the mask decoder only: a few
milliseconds with a small model, tens with tiny at 1024 on a CPU. Sent to a worker thread,
its mask waits for the thread to start and for the GUI thread to draw the window with the
click's point first (40-100 ms under a software renderer on a loaded 2-core machine); run at
once, the click and its mask are drawn together. Whether a click is that quick is measured,
per model, on the clicks before it (in either thread), as the processor time of the thread
that ran it: in a worker, the wall time also counts the window being drawn meanwhile (a
software renderer takes both cores), which is the very cost running here avoids. Anything
slower, or on a frame not yet encoded, stays in a worker.
"""

import time
import weakref
from collections import deque
from collections.abc import Callable

from ..engine.openmp_teams import release_thread_team
from .background_encoding import frame_key, hold_for_click

# a click may hold the GUI thread this long: about what a worker adds (above; at 16 ms, a
# demo-model click slowed to 21 ms by other jobs went to a worker and took 190 ms to its mask
# instead of ~40), and enough for the SAM 2 mask decoder at 1024 on two CPU cores (37-50 ms,
# where a worker took 125-240 ms to the mask)
BUDGET_MS = 100.0
_recent: "weakref.WeakKeyDictionary[object, deque]" = weakref.WeakKeyDictionary()


def expected_ms(model) -> float | None:
    """The median time of this model's last decoder-only clicks; None before the first."""
    times = _recent.get(model)
    return None if not times else sorted(times)[len(times) // 2]


def timed(model, tracker, frames, apply: Callable) -> Callable:
    """`apply` that records its time for `model` when it was a decoder-only click, and holds
    background encodes of other frames while it runs."""

    def run():
        encoded = all(tracker.is_encoded(t) for t in frames)
        # background encodes of other frames wait
        with hold_for_click({frame_key(tracker, t) for t in frames}):
            start = time.thread_time()
            result = apply()
            spent = time.thread_time() - start
        if encoded:
            _recent.setdefault(model, deque(maxlen=5)).append(spent * 1e3)
        return result

    return run


def run_here(host, changes: dict, apply: Callable, applied: Callable) -> bool:
    """Apply prompt `changes` in this (the GUI) thread when they are decoder-only clicks
    known to take at most BUDGET_MS with this model; True if done (errors shown by the host)."""
    tracker, model = host.tracker, host.model
    frames = {t for t, _ in changes}
    if len(changes) > 1 or not all(tracker.is_encoded(t) for t in frames):
        return False
    expected = expected_ms(model)
    if expected is None or expected > BUDGET_MS:
        return False
    try:
        done = timed(model, tracker, frames, apply)()
    except Exception as error:  # as a worker would report it
        host.failed(error)
        host.session_changed()
        return True
    finally:
        # the GUI thread computes next only at the next quick click; a propagation or an
        # encode in a worker would meanwhile share the cores with its idle workers
        release_thread_team()
    applied(done)
    host.session_changed()
    return True
