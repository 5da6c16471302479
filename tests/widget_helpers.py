"""What the widget tests share: a model method made to fail partway through a job, to check
that the widget reports the error and loses nothing."""

import pytest


def fail_after(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, calls: int = 3) -> None:
    """Replace `owner.name` by a function that works `calls` times, as the original, then
    raises RuntimeError("simulated failure") on every call after."""
    original = getattr(owner, name)
    count = {"n": 0}

    def failing(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise RuntimeError("simulated failure")
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
