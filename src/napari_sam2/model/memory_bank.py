"""Which past frames a frame attends to: the memory bank of SAM 2's streaming memory.

A frame being tracked sees (1) every prompted ("conditioning") frame, (2) the `num_maskmem - 1`
frames tracked just before it, and (3) object pointers of prompted frames up to now and of up
to `max_obj_ptrs - 1` recently tracked frames, each tagged with its signed temporal distance.
Selection is pure bookkeeping on frame indices, so the tracker can also use it to know which
memories it may drop.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch


@dataclass
class FrameMemory:
    """What one tracked frame leaves for later frames, for one object (batch B = 1).

    features: (B, mem_dim, h, w) encoded mask memory, rounded to bfloat16 as the reference
    stores it; pos_enc: (B, mem_dim, h, w); obj_ptr: (B, C). A frame that later frames only
    reach through its object pointer may keep the pointer alone (features None). present:
    False where the object was judged absent on that frame.
    """

    features: torch.Tensor | None
    pos_enc: torch.Tensor | None
    obj_ptr: torch.Tensor
    present: bool = True


@dataclass
class MemoryInputs:
    """The memories one frame attends to.

    spatial: (slot, memory) pairs, slot 0 for prompted frames and 1..num_maskmem-1 for the
    recent frames (num_maskmem - 1 = the frame just before); pointers: (signed frame
    distance, object pointer (B, C)); max_pointer_distance normalizes the distances.
    """

    spatial: list[tuple[int, FrameMemory]]
    pointers: list[tuple[int, torch.Tensor]]
    max_pointer_distance: int

    @property
    def layout(self) -> tuple[int, int]:
        """(memory frames, object pointers): objects whose memories have the same layout
        can attend in one batch."""
        return len(self.spatial), len(self.pointers)


def closest_conditioning_frames(
    frame_idx: int, conditioning: Mapping[int, FrameMemory], max_frames: int
) -> tuple[dict[int, FrameMemory], dict[int, FrameMemory]]:
    """Split prompted frames into those attended to and the rest.

    With a limit, the nearest prompted frame before, the nearest at or after, then the
    temporally closest others are kept.
    """
    if max_frames == -1 or len(conditioning) <= max_frames:
        return dict(conditioning), {}
    if max_frames < 2:
        raise ValueError("at least two conditioning frames must be allowed in attention")
    chosen: list[int] = []
    before = [t for t in conditioning if t < frame_idx]
    after = [t for t in conditioning if t >= frame_idx]
    if before:
        chosen.append(max(before))
    if after:
        chosen.append(min(after))
    others = sorted((t for t in conditioning if t not in chosen), key=lambda t: abs(t - frame_idx))
    chosen += others[: max_frames - len(chosen)]
    selected = {t: conditioning[t] for t in chosen}
    rest = {t: m for t, m in conditioning.items() if t not in selected}
    return selected, rest


def select_memories(
    frame_idx: int,
    conditioning: Mapping[int, FrameMemory],
    tracked: Mapping[int, FrameMemory],
    num_frames: int,
    reverse: bool,
    num_maskmem: int,
    max_obj_ptrs: int,
    max_cond_frames: int = -1,
    signed_distances: bool = True,
    prompt_memory_reach: int = -1,
    remember_absent: bool = True,
) -> MemoryInputs:
    """The memories for tracking `frame_idx` (not itself a new prompt's first frame).

    `conditioning` maps prompted frames to their memories, `tracked` maps frames tracked
    without prompts to theirs. `reverse` is True when tracking runs backwards in time.
    SAM 2 selects with the last two arguments' defaults. `remember_absent` False leaves out
    tracked frames where the object was judged absent (spatial memory and pointer), so that
    a lost object is looked for as last seen rather than confirmed gone; `prompt_memory_reach`
    k >= 0 attends to a prompted frame more than k frames away through its object pointer
    alone whenever a tracked frame's spatial memory is there, so that an object that has
    moved is not pulled back to where it was clicked.
    """
    selected, unselected = closest_conditioning_frames(frame_idx, conditioning, max_cond_frames)
    step = 1 if reverse else -1  # towards the frames tracked before this one

    def previous(t: int) -> FrameMemory | None:
        memory = tracked.get(t)
        memory = unselected.get(t) if memory is None else memory
        return memory if memory is None or remember_absent or memory.present else None

    recent: list[tuple[int, FrameMemory]] = []
    for slot in range(1, num_maskmem):
        memory = previous(frame_idx + step * (num_maskmem - slot))
        if memory is not None and memory.features is not None:
            recent.append((slot, memory))
    prompts = list(selected.values())
    if prompt_memory_reach >= 0 and recent:
        prompts = [m for t, m in selected.items() if abs(frame_idx - t) <= prompt_memory_reach]
    spatial: list[tuple[int, FrameMemory]] = [(0, m) for m in prompts] + recent

    max_ptrs = min(num_frames, max_obj_ptrs)
    direction = -1 if reverse else 1
    pointers: list[tuple[int, torch.Tensor]] = []
    for t, memory in selected.items():
        # only prompts already passed in tracking order give pointers
        if (t >= frame_idx) if reverse else (t <= frame_idx):
            distance = (frame_idx - t) * direction if signed_distances else abs(frame_idx - t)
            pointers.append((distance, memory.obj_ptr))
    for distance in range(1, max_ptrs):
        t = frame_idx + step * distance
        if t < 0 or t >= num_frames:
            break
        memory = previous(t)
        if memory is not None:
            pointers.append((distance, memory.obj_ptr))
    # a one-frame stack has no distance to normalize by (the reference divides by zero)
    return MemoryInputs(spatial, pointers, max(1, max_ptrs - 1))


def retention(
    frame: int,
    current: int,
    reverse: bool,
    prompted: Iterable[int],
    num_maskmem: int,
    max_obj_ptrs: int,
) -> str:
    """What of a tracked frame's memory later frames can still use, when tracking has just
    reached `current`: "full" (spatial memory and pointer), "pointer" (the object pointer
    alone) or "none".

    Later frames in this pass attend to the frames just behind them; a new pass may start
    at any prompted frame and reach out from it in either direction.
    """
    behind = (frame - current) if reverse else (current - frame)
    nearest_prompt = min((abs(frame - p) for p in prompted), default=None)

    def within(reach: int) -> bool:
        near_prompt = nearest_prompt is not None and nearest_prompt <= reach
        return 0 <= behind < reach or near_prompt

    if within(num_maskmem - 1):
        return "full"
    if within(max_obj_ptrs - 1):
        return "pointer"
    return "none"
