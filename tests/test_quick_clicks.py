"""A click holds background encodes of other frames at their next check while it runs, and
never those of a frame it needs (it waits for that encode)."""

import threading
from types import SimpleNamespace

import pytest

from napari_sam2._qt import background_encoding, quick_clicks
from napari_sam2._qt.background_encoding import EncodeCancelled, hold_for_click


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
    assert seen == [[{3}]] and background_encoding._clicks == []

    def fails():
        raise RuntimeError("decoder failed")

    with pytest.raises(RuntimeError):
        quick_clicks.timed(model, tracker, {3}, fails)()
    assert background_encoding._clicks == []
