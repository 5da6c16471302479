"""Run-length encoding of a (H, W) mask as prompts and session files store it: runs of 0 and 1
over the pixels in C (row) order, starting with 0, and the mask's size."""

from typing import Any

import numpy as np

from ..errors import SAM2Error


def encode_mask(mask: np.ndarray) -> dict[str, list[int]]:
    """A (H, W) mask as {"size": [H, W], "counts": [...]}, runs over the C-order pixels."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise SAM2Error(f"a mask is 2-D (H, W), got shape {mask.shape}")
    flat = mask.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]  # runs start with background
    return {"size": [int(n) for n in mask.shape], "counts": [int(c) for c in counts]}


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """The (H, W) bool mask of an `encode_mask` dictionary."""
    height, width = (int(n) for n in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any() or int(counts.sum()) != height * width:
        raise SAM2Error(f"the mask's runs do not cover its {height} x {width} pixels exactly")
    runs = np.arange(len(counts)) % 2 == 1
    return np.repeat(runs, counts).reshape(height, width)
