"""Which per-frame results of an object the tracker lets go once their byte budget is spent:
the oldest first, and never what a later frame can still attend to."""

from ..model import FrameMemory
from ..model.memory_bank import retention
from .state import ObjectState


def evict_results(
    obj: ObjectState,
    current: int,
    reverse: bool,
    budget: int,
    num_maskmem: int,
    max_obj_ptrs: int,
) -> None:
    """Beyond `budget` bytes of tracked results, oldest first: drop results no later frame
    can attend to, and keep only the object pointer of those later frames reach through
    their pointer alone. `current` is the frame just tracked."""
    held = sum(r.nbytes for r in obj.tracked.values())
    for frame in list(obj.tracked):
        if held <= budget:
            break
        keep = retention(frame, current, reverse, obj.conditioning, num_maskmem, max_obj_ptrs)
        result = obj.tracked[frame]
        if keep == "none":
            held -= obj.tracked.pop(frame).nbytes
        elif keep == "pointer" and result.memory is not None:
            before = result.nbytes
            result.memory = FrameMemory(
                None, None, result.memory.obj_ptr, present=result.memory.present
            )
            held -= before - result.nbytes
