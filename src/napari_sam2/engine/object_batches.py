"""Objects of one frame gathered into batches that go through the model together: those
whose memories have the same layout (as many memory frames and object pointers)."""

from collections.abc import Hashable, Sequence
from typing import TypeVar

import torch

Item = TypeVar("Item")


def default_batch_size(device: torch.device) -> int:
    """Objects per batch: on a GPU one call for many objects is the gain; on a CPU batching
    saves less, and each object adds about 0.1 GB of transients at 1024, so batches stay
    small there."""
    return 64 if device.type == "cuda" else 8


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
