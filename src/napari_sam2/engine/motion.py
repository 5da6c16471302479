"""Memories that follow a moving object (an option of ours, not SAM 2's: on by default for
the demo model only, through its catalogue entry).

A tracked frame attends to the memories of earlier frames at the places the object had
there. A small model (the demo model) then keeps of a cell that moved a few pixels per
frame only what overlaps where its memories had it, and the mask is eaten from the
leading edge. With `Tracker(follow_motion=...)` on, each object's displacement from one frame
to the next is measured in the images (the patch under its last mask matched by normalized
cross-correlation within `REACH` pixels), and every tracked frame's spatial memory is
shifted by how far the object has moved since, before memory attention reads it (prompted
frames' memories stay where they are).
"""

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view

from ..model.memory_bank import MemoryInputs
from .compositing import frame_logits
from .state import ObjectState

# the largest displacement measured between two frames, in frame pixels
REACH = 8


def displacement(previous: np.ndarray, current: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(dy, dx) in pixels that best moves the patch of `previous` around `mask` (its bounding
    box plus 2 pixels) onto `current`, searched within REACH pixels; (0, 0) for an empty
    mask or a featureless patch. previous, current: (H, W) float; mask: (H, W) bool."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return np.zeros(2, np.float32)
    height, width = previous.shape
    y0, y1 = max(int(ys.min()) - 2, 0), min(int(ys.max()) + 3, height)
    x0, x1 = max(int(xs.min()) - 2, 0), min(int(xs.max()) + 3, width)
    patch = previous[y0:y1, x0:x1].astype(np.float32)
    patch = patch - patch.mean()
    norm = float(np.linalg.norm(patch))
    if norm == 0.0:
        return np.zeros(2, np.float32)
    # the search region, padded with NaN where it leaves the frame (such shifts are skipped)
    region = np.full((y1 - y0 + 2 * REACH, x1 - x0 + 2 * REACH), np.nan, np.float32)
    sy0, sx0 = y0 - REACH, x0 - REACH
    cy0, cy1 = max(sy0, 0), min(y1 + REACH, height)
    cx0, cx1 = max(sx0, 0), min(x1 + REACH, width)
    region[cy0 - sy0 : cy1 - sy0, cx0 - sx0 : cx1 - sx0] = current[cy0:cy1, cx0:cx1]
    windows = sliding_window_view(region, patch.shape)  # (2R+1, 2R+1, h, w)
    centred = windows - windows.mean(axis=(2, 3), keepdims=True)
    scores = np.einsum("abij,ij->ab", centred, patch) / (
        norm * np.linalg.norm(centred, axis=(2, 3)) + 1e-6
    )
    scores = np.where(np.isnan(scores), -np.inf, scores)
    dy, dx = np.unravel_index(int(np.argmax(scores)), scores.shape)
    return np.array([dy - REACH, dx - REACH], np.float32)


def shift_features(features: torch.Tensor, offset: np.ndarray) -> torch.Tensor:
    """features (B, C, h, w) moved by offset (dy, dx) in feature cells, bilinearly, the edge
    cells repeated where the shift uncovers the map."""
    b, _, h, w = features.shape
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    grid = torch.stack(
        [
            (xx - float(offset[1])) / max(w - 1, 1) * 2 - 1,
            (yy - float(offset[0])) / max(h - 1, 1) * 2 - 1,
        ],
        dim=-1,
    )
    grid = grid[None].expand(b, h, w, 2).to(features.device)
    moved = F.grid_sample(
        features.float(), grid, mode="bilinear", padding_mode="border", align_corners=True
    )
    return moved.to(features.dtype)


def follow(
    inputs: MemoryInputs,
    frame_of: dict[int, int],
    positions: dict[int, np.ndarray],
    t: int,
    frame_size: tuple[int, int],
) -> MemoryInputs:
    """`inputs` for frame t with each tracked frame's spatial memory shifted by the object's
    estimated displacement from that frame to t. frame_of maps id(memory) to its frame;
    positions maps frames to the object's estimated position (pixels, any origin). Prompted
    frames' memories (slot 0) and frames without a position are left as they are."""
    if t not in positions:
        return inputs
    height, width = frame_size
    spatial = []
    for slot, memory in inputs.spatial:
        source = frame_of.get(id(memory))
        if slot == 0 or memory.features is None or source not in positions:
            spatial.append((slot, memory))
            continue
        h, w = memory.features.shape[-2:]
        offset = (positions[t] - positions[source]) * np.array([h / height, w / width])
        if not offset.any():
            spatial.append((slot, memory))
            continue
        spatial.append((slot, replace(memory, features=shift_features(memory.features, offset))))
    return MemoryInputs(spatial, inputs.pointers, inputs.max_pointer_distance)


class MotionFollower:
    """A tracker's `follow_motion`: measures each object's position frame to frame (kept in
    `ObjectState.positions`) and shifts the memories a frame attends to along it.
    `frame(t)` gives frame t normalized, (H, W, C)."""

    def __init__(self, frame: Callable[[int], np.ndarray], frame_size: tuple[int, int]):
        self._frame = frame
        self.frame_size = frame_size
        self._gray: dict[int, np.ndarray] = {}

    def followed(
        self, obj: ObjectState, t: int, reverse: bool, inputs: MemoryInputs
    ) -> MemoryInputs:
        """`inputs` for tracking obj on frame t, shifted along its motion; its position on t
        is its position on the frame before (in tracking order) plus the displacement
        measured under that frame's mask."""
        before = t + (1 if reverse else -1)
        previous = obj.latest_result(before)
        if previous is None:
            return inputs
        start = obj.positions.setdefault(before, np.zeros(2, np.float32))
        mask = frame_logits(previous, *self.frame_size) > 0
        obj.positions[t] = start + displacement(self.gray(before), self.gray(t), mask)
        frame_of = {
            id(result.memory): frame
            for results in (obj.conditioning, obj.tracked)
            for frame, result in results.items()
            if result.memory is not None
        }
        return follow(inputs, frame_of, obj.positions, t, self.frame_size)

    def gray(self, t: int) -> np.ndarray:
        """Frame t averaged over its channels; the last few kept (every object of a frame
        measures against the same two frames)."""
        if t not in self._gray:
            if len(self._gray) >= 4:
                self._gray.pop(next(iter(self._gray)))
            self._gray[t] = self._frame(t).mean(axis=-1)
        return self._gray[t]
