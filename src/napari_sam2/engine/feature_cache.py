"""Image features kept between uses, least recently used first out, within a byte budget.

Computing a frame's image features is the most expensive step; keeping them lets the user
click again on a frame or re-propagate after a correction without recomputing them.
"""

from collections import OrderedDict
from collections.abc import Callable

from ..model import FrameFeatures


def feature_bytes(features: FrameFeatures) -> int:
    tensors = [features.image_embed, *features.high_res]
    return sum(t.numel() * t.element_size() for t in tensors)


class FeatureCache:
    """Frame index -> FrameFeatures, holding at most `budget_bytes` (the newest entry is
    always kept, so a budget of 0 still caches one frame)."""

    def __init__(self, budget_bytes: int = 1 << 30) -> None:
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[int, FrameFeatures] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, t: int, compute: Callable[[int], FrameFeatures]) -> FrameFeatures:
        features = self._entries.get(t)
        if features is not None:
            self._entries.move_to_end(t)
            self.hits += 1
            return features
        self.misses += 1
        features = compute(t)
        self._entries[t] = features
        self._bytes += feature_bytes(features)
        while self._bytes > self.budget_bytes and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= feature_bytes(dropped)
        return features

    def __contains__(self, t: int) -> bool:
        return t in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
