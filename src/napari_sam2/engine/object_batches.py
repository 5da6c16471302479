"""Objects of one frame gathered into batches that go through the model together: those
whose memories have the same layout (as many memory frames and object pointers)."""

from collections.abc import Hashable, Sequence
from typing import TypeVar

import torch

Item = TypeVar("Item")


def default_batch_size(device: torch.device) -> int:
    """Objects per batch: on a GPU one call for many objects is the gain. On a CPU one
    object at a time: a batch's memory keys and values outgrow the processor's caches
    (measured at 512: memory attention for 8 objects in one batch took 30 % longer than
    for the 8 one after the other; docs/performance.md)."""
    return 64 if device.type == "cuda" else 1


def batches_by_layout(
    items: Sequence[Item], layouts: Sequence[Hashable], batch_size: int
) -> list[list[Item]]:
    """Items grouped by equal layout, in order of first appearance, each group cut into
    batches of at most `batch_size`."""
    groups: dict[Hashable, list[Item]] = {}
    for item, layout in zip(items, layouts, strict=True):
        groups.setdefault(layout, []).append(item)
    return [
        group[start : start + batch_size]
        for group in groups.values()
        for start in range(0, len(group), batch_size)
    ]
