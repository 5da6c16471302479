"""A click holds background encodes of other frames at their next check while it runs, and
never those of a frame it needs (it waits for that encode)."""

import threading
import time
from types import SimpleNamespace

import pytest

from napari_sam2._qt import background_encoding, quick_clicks
from napari_sam2._qt.background_encoding import EncodeCancelled, frame_key, hold_for_click


def encode_check(frame: int, cancel: threading.Event, passed: list) -> threading.Thread:
    """A thread standing for a background encode of `frame` reaching one of its checks."""

    def run():
        background_encoding._local.cancel = cancel
        background_encoding._local.frame = frame
        try:
            background_encoding._stop_if_cancelled(None, ())
            passed.append("went on")
        except EncodeCancelled:
            passed.append("cancelled")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_an_encode_of_another_frame_waits_while_a_click_runs():
    passed = []
    with hold_for_click({2}):
        thread = encode_check(5, threading.Event(), passed)
        thread.join(0.3)
        assert thread.is_alive() and passed == []
    thread.join(5)
    assert passed == ["went on"]


def test_an_encode_of_a_frame_the_click_needs_goes_on():
    passed = []
    with hold_for_click({5}):
        thread = encode_check(5, threading.Event(), passed)
        thread.join(5)
        assert passed == ["went on"]


def test_frames_are_told_apart_by_their_stack():
    """Frame 5 of one widget's stack is not frame 5 of another's: a click on one holds an
    encode of the other, and an encode on view in one widget is on view only there."""
    mine, theirs = object(), object()
    passed = []
    with hold_for_click({frame_key(mine, 5)}):
        thread = encode_check(frame_key(theirs, 5), threading.Event(), passed)
        thread.join(0.3)
        assert thread.is_alive() and passed == []
    thread.join(5)
    assert passed == ["went on"]

    widget = FakeModel()  # stands for a BackgroundEncoder (a weak key)
    background_encoding._on_view[widget] = frame_key(mine, 5)
    background_encoding._last_click[0] = time.monotonic()  # within CLICK_QUIET_S
    try:
        assert not background_encoding._held(frame_key(mine, 5))
        assert background_encoding._held(frame_key(theirs, 5))  # a neighbour, after a click
    finally:
        background_encoding._on_view.pop(widget, None)
        background_encoding._last_click[0] = float("-inf")


def test_a_held_encode_can_still_be_cancelled():
    passed, cancel = [], threading.Event()
    with hold_for_click({2}):
        thread = encode_check(5, cancel, passed)
        thread.join(0.2)
        cancel.set()
        thread.join(5)
        assert passed == ["cancelled"]


class FakeModel:
    pass


def test_a_timed_click_holds_encodes_while_it_applies_and_releases_after_an_error():
    tracker = SimpleNamespace(is_encoded=lambda t: True)
    model = FakeModel()  # the recorded times are kept per model, weakly
    seen = []
    run = quick_clicks.timed(
        model, tracker, {3}, lambda: seen.append(list(background_encoding._clicks))
    )
    run()
    assert seen == [[{frame_key(tracker, 3)}]] and background_encoding._clicks == []

    def fails():
        raise RuntimeError("decoder failed")

    with pytest.raises(RuntimeError):
        quick_clicks.timed(model, tracker, {3}, fails)()
    assert background_encoding._clicks == []


def test_a_click_starts_once_a_computing_encode_of_another_frame_reaches_its_check():
    began, reached, cancel = threading.Event(), threading.Event(), threading.Event()
    passed = []

    def encode():
        with background_encoding.background_encode(5, cancel):
            began.set()
            time.sleep(0.3)  # one part of the image encoder, between two checks
            reached.set()
            background_encoding._stop_if_cancelled(None, ())
            passed.append("went on")

    thread = threading.Thread(target=encode, daemon=True)
    thread.start()
    assert began.wait(5)
    with hold_for_click({2}):
        started_after_check = reached.is_set()
        assert passed == []  # and the encode waits while the click runs
    thread.join(5)
    assert started_after_check and passed == ["went on"]
    assert background_encoding._computing == {}


def seconds_a_click_waits(encoding: int, clicked: int, wait_s: float) -> float:
    """How long a click on frame `clicked` waits while an encode of frame `encoding` is
    stuck between two checks."""
    began, release = threading.Event(), threading.Event()

    def encode():
        with background_encoding.background_encode(encoding, threading.Event()):
            began.set()
            release.wait(5)

    thread = threading.Thread(target=encode, daemon=True)
    thread.start()
    assert began.wait(5)
    start = time.monotonic()
    with hold_for_click({clicked}, wait_s=wait_s):
        waited = time.monotonic() - start
    release.set()
    thread.join(5)
    return waited


def test_a_click_waits_for_a_computing_encode_at_most_wait_s():
    assert 0.15 < seconds_a_click_waits(5, clicked=2, wait_s=0.2) < 2.0


def test_a_click_does_not_wait_for_an_encode_of_a_frame_it_needs():
    assert seconds_a_click_waits(2, clicked=2, wait_s=2.0) < 0.5


def test_a_click_is_timed_by_its_threads_processor_time_not_the_wall_clock():
    # a worker's click that waits (for the window being drawn, say) is no slower to run
    tracker = SimpleNamespace(is_encoded=lambda t: True)
    model = FakeModel()
    quick_clicks.timed(model, tracker, {0}, lambda: time.sleep(0.2))()
    assert quick_clicks.expected_ms(model) < 50

    def busy():
        end = time.thread_time() + 0.1
        while time.thread_time() < end:
            pass

    for _ in range(3):
        quick_clicks.timed(model, tracker, {0}, busy)()
    assert quick_clicks.expected_ms(model) >= 90


def test_after_a_click_encodes_of_frames_not_on_view_stay_held_a_moment(monkeypatch):
    monkeypatch.setattr(background_encoding, "_on_view", {FakeModel: 2})  # a widget on frame 2
    with hold_for_click({2}):
        pass
    timings = {}

    def check(frame):
        with background_encoding.background_encode(frame, threading.Event()):
            start = time.monotonic()
            background_encoding._stop_if_cancelled(None, ())
            timings[frame] = time.monotonic() - start

    threads = [threading.Thread(target=check, args=(frame,)) for frame in (3, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    quiet = background_encoding.CLICK_QUIET_S
    assert timings[2] < quiet / 2 and quiet / 2 < timings[3] < quiet * 3
