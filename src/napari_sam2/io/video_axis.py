"""A stack seen as the (T, H, W) or (T, H, W, C) video the tracker reads: which axis is the
video (given, else T, else Z, else the only other one) and where every other axis is fixed."""

from collections.abc import Mapping

import numpy as np

from ..engine.stack_view import VideoAxisView
from ..errors import SAM2Error
from .image_stack import COLOUR, PLANE, Stack


def video_frames(
    stack: Stack,
    axis: str | int | None = None,
    fixed: Mapping[str | int, int] | None = None,
) -> VideoAxisView:
    """The stack as a lazy (T, H, W) or (T, H, W, C) video along `axis` (a letter such as "T"
    or "Z", or an axis index).

    Without `axis`: T, else Z, else the one axis besides the image plane. Every other axis
    is fixed at index 0 or at `fixed[axis]` (keys are letters or indices).
    """
    video, positions, _ = _choose(stack, axis, fixed)
    leading = [positions.get(i, 0) for i in range(_leading(stack))]
    return VideoAxisView(stack.data, video, leading, rgb=stack.axes.endswith(COLOUR))


def unchosen_axes(
    stack: Stack, axis: str | int | None = None, fixed: Mapping[str | int, int] | None = None
) -> list[str]:
    """Axes of more than one plane that `video_frames` fixes at 0 because nobody chose,
    e.g. ["Z=0 of 5"], so callers can tell the user that part of the stack is not used."""
    _, _, defaulted = _choose(stack, axis, fixed)
    return [f"{stack.axes[i]}=0 of {stack.shape[i]}" for i in defaulted if stack.shape[i] > 1]


def label_axes(stack: Stack, frames: VideoAxisView) -> str:
    """Axes of the label volume made from `frames`: "ZYX" along Z, else "TYX"."""
    along_z = frames.video_axis is not None and stack.axes[frames.video_axis] == "Z"
    return ("Z" if along_z else "T") + PLANE


def _leading(stack: Stack) -> int:
    return len(stack.axes) - len(PLANE) - stack.axes.endswith(COLOUR)


def _choose(
    stack: Stack, axis: str | int | None, fixed: Mapping[str | int, int] | None
) -> tuple[int | None, dict[int, int], tuple[int, ...]]:
    """(video axis, fixed index per other leading axis, axes fixed by default)."""
    if axis is None:
        video = _default_video_axis(stack, fixed or {})
    else:
        video = _axis_index(stack, axis, "video")
    if video is not None and video >= _leading(stack):
        raise SAM2Error(
            f"axis {stack.axes[video]} of {stack.describe()} is part of the image; choose "
            f"the video axis among {_choices(stack)}"
        )
    positions = {}
    for key, position in (fixed or {}).items():
        index = _axis_index(stack, key, "fixed")
        if index == video or index >= _leading(stack):
            raise SAM2Error(f"axis {key} of {stack.describe()} cannot be fixed: it is read whole")
        size = stack.shape[index]
        if not isinstance(position, int | np.integer) or not 0 <= position < size:
            raise SAM2Error(
                f"index {position} of axis {key} is outside 0..{size - 1} in {stack.describe()}"
            )
        positions[index] = int(position)
    defaulted = tuple(i for i in range(_leading(stack)) if i != video and i not in positions)
    return video, positions, defaulted


def _choices(stack: Stack) -> str:
    options = [
        letter if stack.axes.count(letter) == 1 and letter != "Q" else str(i)
        for i, letter in enumerate(stack.axes)
        if letter not in PLANE + COLOUR
    ]
    return ", ".join(options) if options else "none (it is a single image)"


def _default_video_axis(stack: Stack, fixed: Mapping[str | int, int]) -> int | None:
    for letter in "TZ":
        if letter in stack.axes:
            return stack.axes.index(letter)
    others = [i for i, a in enumerate(stack.axes) if a not in PLANE + COLOUR]
    if [stack.axes[i] for i in others] == ["C"]:
        # channels are not a video: one image, unless the user asks to track through them
        if any(_axis_index(stack, key, "fixed") == others[0] for key in fixed):
            return None
        if stack.shape[others[0]] > 1:
            raise SAM2Error(
                f"{stack.describe()} has channels (C) but no T or Z axis; choose a channel to "
                "segment one image (--fix C=0), or track through the channels (--axis C)"
            )
    if len(others) > 1:
        raise SAM2Error(
            f"cannot tell which axis of {stack.describe()} is the video; choose one of "
            f"{_choices(stack)}"
        )
    return others[0] if others else None


def _axis_index(stack: Stack, axis: str | int, role: str) -> int:
    if isinstance(axis, str) and axis.isascii() and axis.lstrip("-").isdigit():
        axis = int(axis)
    if isinstance(axis, int | np.integer) and not isinstance(axis, bool):
        if not -len(stack.axes) <= axis < len(stack.axes):
            raise SAM2Error(
                f"{stack.describe()} has no axis {axis}; the {role} axis can be {_choices(stack)}"
            )
        return int(axis) % len(stack.axes)
    letter = str(axis).upper()
    count = stack.axes.count(letter)
    if count != 1:
        problem = f"has no {letter} axis" if count == 0 else f"has several {letter} axes"
        raise SAM2Error(f"{stack.describe()} {problem}; the {role} axis can be {_choices(stack)}")
    return stack.axes.index(letter)
