"""Which frames a propagation visits and in which order: its passes through the stack."""

from collections.abc import Iterable
from typing import NamedTuple

from ..errors import SAM2Error

DIRECTIONS = ("forward", "backward", "both")


class Pass(NamedTuple):
    """Frames in visiting order; reverse is True for a backward pass."""

    frames: range
    reverse: bool


def plan_passes(
    direction: str,
    start_frame: int | None,
    prompted_frames: list[Iterable[int]],
    num_frames: int,
) -> list[Pass]:
    """The passes of a propagation of objects prompted on `prompted_frames` (one collection
    per object): forward from the earliest prompted frame (or `start_frame`) to the end,
    backward from the latest to frame 0, or both, forward first."""
    if direction not in DIRECTIONS:
        raise SAM2Error(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    firsts = [min(frames) for frames in prompted_frames if frames]
    lasts = [max(frames) for frames in prompted_frames if frames]
    if not firsts:
        raise SAM2Error("nothing to propagate: add a click, box or mask on some frame first")
    passes = []
    if direction in ("forward", "both"):
        start = min(firsts) if start_frame is None else start_frame
        passes.append(Pass(range(start, num_frames), False))
    if direction in ("backward", "both"):
        start = max(lasts) if start_frame is None else start_frame
        passes.append(Pass(range(start, -1, -1), True))
    return passes
