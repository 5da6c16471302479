"""What tracking every cell produces: the label volume, lineage and each object's frames."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ObjectSpan:
    """An object's frames with a mask (first, last; None before it is seen)."""

    first: int | None = None
    last: int | None = None

    def see(self, t: int) -> None:
        self.first = t if self.first is None else min(self.first, t)
        self.last = t if self.last is None else max(self.last, t)


@dataclass
class CellTrackingResult:
    """What tracking every cell produced: (T, H, W) int32 labels, lineage {daughter: parent},
    each object's first and last frame, and the seed frame."""

    labels: np.ndarray
    lineage: dict[int, int]
    spans: dict[int, tuple[int, int]]
    seed_frame: int
    divisions: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (parent, daughter_a, daughter_b, division frame)
