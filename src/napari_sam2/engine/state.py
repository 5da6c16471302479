"""What the tracker remembers about each object: its prompts and its per-frame results.

Kept in small dataclasses rather than nested dicts, so each piece of video state has a name
and a type: prompts per frame, results on prompted ("conditioning") frames, results on frames
reached by propagation (bounded), and the direction each frame was last tracked in.
"""

from dataclasses import dataclass, field

import numpy as np
import torch

from ..model import FrameMemory
from .size_cue import KeptRegion, SizeReference

NOT_TRACKED, FORWARD, BACKWARD = 0, 1, -1


@dataclass
class FramePrompt:
    """The prompts of one object on one frame, in model input pixels.

    A box becomes the first two points (labels 2 and 3); a mask prompt replaces both.
    point_coords: (N, 2) (x, y); point_labels: (N,) int; box: (4,) x0, y0, x1, y1;
    mask: (1, 1, S, S) float 0/1.
    """

    point_coords: torch.Tensor | None = None
    point_labels: torch.Tensor | None = None
    box: torch.Tensor | None = None
    mask: torch.Tensor | None = None

    def model_points(self) -> tuple[torch.Tensor, torch.Tensor] | tuple[None, None]:
        """(1, N, 2) coordinates and (1, N) int32 labels, box corners first."""
        coords, labels = [], []
        if self.box is not None:
            coords.append(self.box.view(2, 2))
            labels.append(torch.tensor([2, 3], dtype=torch.int32))
        if self.point_coords is not None:
            coords.append(self.point_coords)
            labels.append(self.point_labels.to(torch.int32))
        if not coords:
            return None, None
        return torch.cat(coords)[None], torch.cat(labels)[None]


@dataclass
class StartingMask:
    """The low-resolution logits (1, 1, h, w) a click on a frame started from (None: none)."""

    logits: torch.Tensor | None


@dataclass
class FrameResult:
    """One object's result on one frame.

    low_res_logits: (1, 1, S/4, S/4) after hole filling; obj_ptr: (1, C); memory: what later
    frames attend to (None on a prompted frame until the next propagation encodes it);
    kept: where the size cue trimmed the mask (None: the mask is the logits' own);
    candidates: (1, 3, S/4, S/4) the decoder's three candidate masks after a single click,
    and candidate_ptrs (1, 3, C) their object pointers.
    """

    low_res_logits: torch.Tensor
    object_score: float
    obj_ptr: torch.Tensor
    memory: FrameMemory | None = None
    kept: KeptRegion | None = None
    candidates: torch.Tensor | None = None
    candidate_ptrs: torch.Tensor | None = None
    # with exclusive_clicks, on a prompted frame: the other objects' clicks (K, 2) added as
    # background and the mask the prompt started from, to decode it again when they change
    excluded: torch.Tensor | None = field(default=None, repr=False)
    start: "StartingMask | None" = field(default=None, repr=False)
    # ... and its logits as decoded, before the pixels nearer another object's click went
    decoded: torch.Tensor | None = field(default=None, repr=False)
    # on a prompted frame, its mask's area in frame pixels once measured (`grow_outlines`)
    prompt_area: int | None = field(default=None, repr=False)
    # on a prompted frame, the size cue's reference once measured, as (reference or None):
    # new prompts there make a new result, so it never goes stale
    size_reference: tuple[SizeReference | None] | None = field(default=None, repr=False)

    @property
    def nbytes(self) -> int:
        total = self.low_res_logits.numel() * self.low_res_logits.element_size()
        if self.memory is not None and self.memory.features is not None:
            # the position encoding is one tensor shared by all memories; not counted
            total += self.memory.features.numel() * self.memory.features.element_size()
        if self.kept is not None:
            total += self.kept.nbytes
        return total


@dataclass
class ObjectState:
    """Prompts and results of one object (a masklet) through the stack."""

    obj_id: int
    num_frames: int
    prompts: dict[int, FramePrompt] = field(default_factory=dict)
    # prompted frames whose result is not yet encoded into memory (clicks since the last
    # propagation); they become conditioning frames when propagation starts
    pending: dict[int, FrameResult] = field(default_factory=dict)
    conditioning: dict[int, FrameResult] = field(default_factory=dict)
    tracked: dict[int, FrameResult] = field(default_factory=dict)
    direction: np.ndarray = field(init=False)
    # with Tracker(follow_motion=True): the object's estimated position per frame (pixels,
    # (y, x), from an arbitrary origin), measured frame to frame in tracking order
    positions: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.direction = np.zeros(self.num_frames, dtype=np.int8)

    def latest_result(self, t: int) -> FrameResult | None:
        """The newest result of this object on frame t, if still held."""
        for results in (self.pending, self.conditioning, self.tracked):
            if t in results:
                return results[t]
        return None

    def conditioning_memories(self) -> dict[int, FrameMemory]:
        return {t: r.memory for t, r in self.conditioning.items() if r.memory is not None}

    def tracked_memories(self) -> dict[int, FrameMemory]:
        return {t: r.memory for t, r in self.tracked.items() if r.memory is not None}
