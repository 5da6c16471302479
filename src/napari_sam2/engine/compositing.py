"""Writing one object's or one frame's results into the label volume: which other objects
compete for the pixels, and at the frame's own resolution."""

from typing import TYPE_CHECKING

import numpy as np
import torch

from .masks import boxes_meet, positive_box, reach, to_frame_resolution
from .state import FrameResult, ObjectState

if TYPE_CHECKING:
    from .tracker import Tracker


def frame_logits(result: FrameResult, height: int, width: int) -> np.ndarray:
    """One result's logits at the frame's resolution, float32 (H, W), trimmed where the
    size cue trimmed them."""
    logits = to_frame_resolution(result.low_res_logits.float(), height, width)
    logits = logits[0].cpu().numpy()
    return logits if result.kept is None else result.kept.apply(logits)


@torch.inference_mode()
def show_result(tracker: "Tracker", obj: ObjectState, t: int, result: FrameResult) -> np.ndarray:
    """Write one object's new result on frame t into the labels; its logits (H, W)."""
    height, width = tracker.height, tracker.width
    logits = frame_logits(result, height, width)
    # only objects that can be positive where this one is or was compete for pixels;
    # resizing every other object's logits would cost a click ~1 ms per object
    boxes = [positive_box(logits > 0), positive_box(tracker.volume.array[t] == obj.obj_id)]
    boxes = [b for b in boxes if b is not None]
    others = {}
    for other in tracker.objects.values():
        other_result = other.latest_result(t) if other is not obj else None
        if other_result is None or not boxes:
            continue
        box = reach(other_result.low_res_logits, height, width)
        if box is not None and any(boxes_meet(box, b) for b in boxes):
            others[other.obj_id] = frame_logits(other_result, height, width)
    tracker.volume.write_object(t, obj.obj_id, logits, others)
    return logits


def show_latest(tracker: "Tracker", obj: ObjectState, t: int) -> None:
    """Write the object's newest remaining result on frame t, or erase it there."""
    remaining = obj.latest_result(t)
    if remaining is None:
        logits = np.full((tracker.height, tracker.width), -1.0)
    else:
        logits = frame_logits(remaining, tracker.height, tracker.width)
    tracker.volume.write_object(t, obj.obj_id, logits)


def write_tracked_frame(
    tracker: "Tracker", t: int, objs: list[ObjectState], logits: np.ndarray, partial: bool
) -> None:
    """Composite frame t after tracking `objs`. When only some objects were tracked, the
    others keep their pixels, and take back those the tracked ones give up where their
    stored logits on t claim them."""
    ids = [o.obj_id for o in objs]
    if not partial:
        tracker.volume.write_frame(t, ids, logits)
        return
    tracked = set(ids)
    others = {}
    for other in tracker.objects.values():
        result = None if other.obj_id in tracked else other.latest_result(t)
        if result is not None:
            others[other.obj_id] = frame_logits(result, tracker.height, tracker.width)
    tracker.volume.write_some(t, ids, logits, others)
