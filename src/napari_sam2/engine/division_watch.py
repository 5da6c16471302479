"""Watching masklets for divisions during one forward pass: which objects' splits are
confirmed on a frame (by `DivisionRule`), and on which frame each division happened."""

import numpy as np

from .division_clicks import abandoned_daughter, split_pieces
from .division_rule import DivisionRule, lobe_pieces, lobes
from .review import ReviewRecorder
from .tracker import Tracker


class DivisionWatch:
    """Splits seen since a forward pass began. `splits` holds, per object, the frames a split
    was seen on since the first, `pieces` the pieces on that first, `previous` the masks of
    the frame before and `history` those of the last few frames. births: daughter -> her
    division frame (not checked for `rule.min_cycle` frames after it)."""

    def __init__(
        self,
        tracker: Tracker,
        rule: DivisionRule,
        births: dict[int, int],
        review: ReviewRecorder,
        seed_frame: int,
    ) -> None:
        self.tracker = tracker
        self.rule = rule
        self.births = births
        self.review = review
        self.seed_frame = seed_frame
        self.splits: dict[int, list[int]] = {}
        self.pieces: dict[int, list[np.ndarray]] = {}
        self.previous: dict[int, np.ndarray] = {}
        self.history: dict[int, dict[int, np.ndarray]] = {}

    def check(
        self,
        t: int,
        obj_ids,
        logits: np.ndarray,
        frame: np.ndarray,
        regions: np.ndarray | None = None,
    ) -> list[int]:
        """Objects whose division is confirmed on frame t. frame: the composited (H, W)
        labels of frame t (each pixel to the object with the highest logit): a masklet is
        judged on the pixels it wins, so one leaking into a neighbour does not look like two
        cells; regions: the frame's classical segmentation, or None."""
        free = frame == 0
        rule, splits, pieces = self.rule, self.splits, self.pieces
        confirmed = []
        for obj_id, obj_logits in zip(obj_ids, logits, strict=True):
            mask = (obj_logits > 0) & (frame == obj_id)
            born = self.births.get(obj_id)
            if (born is not None and t - born < rule.min_cycle) or t == self.seed_frame:
                continue  # (the seed frame's objects are as the user gave them)
            others = (frame != 0) & (frame != obj_id)
            found = split_pieces(self.tracker, t, mask, rule, regions, others) if mask.any() else []
            before = self.previous.get(obj_id)
            self.previous[obj_id] = mask
            recent = self.history.setdefault(obj_id, {})
            recent[t] = mask
            for old in [k for k in recent if k < t - rule.backtrack - rule.window]:
                del recent[old]
            if not found and before is not None and obj_id not in splits:
                found = abandoned_daughter(self.tracker, t, mask, before, free, rule)
                if found:
                    splits[obj_id], pieces[obj_id] = [t], found
                    confirmed.append(obj_id)
                    continue
            if found:
                if obj_id not in splits:
                    pieces[obj_id] = found
                splits.setdefault(obj_id, []).append(t)
                if len(splits[obj_id]) >= rule.persistence:
                    confirmed.append(obj_id)
            elif obj_id in splits and t - splits[obj_id][0] + 1 >= rule.window:
                self.review.unconfirmed_division(obj_id, splits.pop(obj_id)[0])
                pieces.pop(obj_id, None)
        return confirmed

    def backtrack(self, obj_id: int) -> None:
        """Move a confirmed division back over frames where the masklet already looked like
        two cells (two lobes, nearly the area it has on the division frame)."""
        rule, recent = self.rule, self.history.get(obj_id, {})
        first = self.splits[obj_id][0]
        area = recent[first].sum() if first in recent else 0
        born = self.births.get(obj_id, -1)
        t = first - 1
        while t >= first - rule.backtrack and t in recent and t > max(born, self.seed_frame):
            mask = recent[t]
            centres = lobes(mask, rule)
            if centres is None or mask.sum() < rule.backtrack_area * area:
                break
            found = lobe_pieces(mask, centres)
            if min(p.sum() for p in found) < max(rule.min_area, rule.min_fraction * mask.sum()):
                break
            self.splits[obj_id][0], self.pieces[obj_id] = t, found
            t -= 1

    def division_frame(self, obj_id: int) -> int:
        return self.splits[obj_id][0]

    def report_unconfirmed(self) -> None:
        """At the end of the stack, splits seen but never confirmed go to the review queue."""
        for obj_id, frames in self.splits.items():
            self.review.unconfirmed_division(obj_id, frames[0])
