"""The review queue: what the model's masks say about themselves per object and frame, and a
ranked list of the frames a person should look at (lost objects, unsure masks, area jumps,
merges with a neighbour, divisions seen but not confirmed).

The Tracker yields mask logits only, so the records are what logits tell: whether the
object-score head judged the object absent (every logit at the "no object" value), the area,
the mean foreground probability inside the mask, and the mask's stability (area above logit
+1 over area above -1, as the automatic mask generator scores masks).
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameRecord:
    """One object on one frame."""

    area: int
    absent: bool
    confidence: float  # mean sigmoid of the logits inside the mask (0 when empty)
    stability: float  # area(logit > 1) / area(logit > -1)
    overlap: float  # largest share of this mask also in another object's mask
    overlap_with: int  # that object (0: none)
    reverse: bool  # recorded while tracking backward


@dataclass(frozen=True)
class ReviewItem:
    """A frame to look at: which object, why, and how sure we are that it is wrong (0..1)."""

    obj_id: int
    frame: int
    reason: str
    score: float
    detail: str = ""


@dataclass(frozen=True)
class ReviewThresholds:
    """When a record becomes a review item.

    min_confidence, min_stability: masks less sure than this are "low score"; area_jump: an
    area that changes by more than this factor from the frame before is an "area jump";
    merge_overlap: a mask sharing more than this fraction of its pixels with another
    object's mask has "merged" with it.
    """

    min_confidence: float = 0.75
    min_stability: float = 0.8
    area_jump: float = 1.6
    merge_overlap: float = 0.25


class ReviewRecorder:
    """Collects per-object, per-frame records while tracking and ranks them into a queue."""

    def __init__(self, thresholds: ReviewThresholds | None = None) -> None:
        self.thresholds = thresholds or ReviewThresholds()
        self.records: dict[int, dict[int, FrameRecord]] = {}
        self.unconfirmed: dict[tuple[int, int], None] = {}

    def record(
        self,
        t: int,
        obj_ids: list[int],
        logits: np.ndarray,
        absent: np.ndarray | None = None,
        reverse: bool = False,
    ) -> None:
        """Record frame t: logits (N, H, W) of obj_ids; absent (N,) where the model judged
        the object not there (default: every logit at or below -1024)."""
        logits = np.asarray(logits, dtype=np.float32)
        n = len(obj_ids)
        if absent is None:
            absent = (logits <= -1024.0).all(axis=(1, 2))
        masks = (logits > 0).reshape(n, -1)
        areas = masks.sum(1)
        inter = masks.astype(np.float32) @ masks.T.astype(np.float32)
        np.fill_diagonal(inter, 0.0)
        share = inter / np.maximum(areas, 1)[:, None]
        for i, obj_id in enumerate(obj_ids):
            area = int(areas[i])
            if area:
                inside = logits[i].reshape(-1)[masks[i]]
                confidence = float(np.mean(1.0 / (1.0 + np.exp(-np.clip(inside, -30, 30)))))
                outer = int((logits[i] > -1.0).sum())
                stability = int((logits[i] > 1.0).sum()) / max(outer, 1)
            else:
                confidence, stability = 0.0, 0.0
            j = int(share[i].argmax()) if n > 1 else 0
            overlap = float(share[i, j]) if n > 1 else 0.0
            self.records.setdefault(int(obj_id), {})[int(t)] = FrameRecord(
                area,
                bool(absent[i]),
                confidence,
                stability,
                overlap,
                int(obj_ids[j]) if overlap > 0 else 0,
                reverse,
            )

    def unconfirmed_division(self, obj_id: int, t: int) -> None:
        """A split of the object's mask seen from frame t that did not last."""
        self.unconfirmed[(int(obj_id), int(t))] = None

    def forget(self, obj_id: int, from_frame: int) -> None:
        """Drop an object's records from a frame on (a mother after her division)."""
        frames = self.records.get(obj_id, {})
        for t in [t for t in frames if t >= from_frame]:
            del frames[t]

    def queue(self) -> list[ReviewItem]:
        """Every frame to look at, most suspicious first (then by frame and object)."""
        th = self.thresholds
        items = []
        for obj_id, frames in self.records.items():
            order = sorted(frames)
            seen = [t for t in order if frames[t].area > 0]
            first_seen, last_seen = (seen[0], seen[-1]) if seen else (None, None)
            for t in order:
                rec = frames[t]
                before = frames.get(t - 1) if not rec.reverse else frames.get(t + 1)
                if rec.area == 0:
                    if before is not None and before.area > 0:
                        why = "judged absent" if rec.absent else "empty mask"
                        items.append(
                            ReviewItem(obj_id, t, "lost", 0.6 if rec.reverse else 1.0, why)
                        )
                    continue
                if (
                    first_seen is not None
                    and first_seen < t <= last_seen
                    and frames.get(t - 1) is not None
                    and frames[t - 1].area == 0
                ):
                    items.append(ReviewItem(obj_id, t, "reappeared", 0.8, "after a gap"))
                if rec.confidence < th.min_confidence or rec.stability < th.min_stability:
                    items.append(
                        ReviewItem(
                            obj_id,
                            t,
                            "low score",
                            round(1.0 - min(rec.confidence, rec.stability), 4),
                            f"confidence {rec.confidence:.2f}, stability {rec.stability:.2f}",
                        )
                    )
                if before is not None and before.area > 0:
                    ratio = max(rec.area, before.area) / min(rec.area, before.area)
                    if ratio > th.area_jump:
                        items.append(
                            ReviewItem(
                                obj_id,
                                t,
                                "area jump",
                                round(1.0 - 1.0 / ratio, 4),
                                f"{before.area} -> {rec.area} pixels",
                            )
                        )
                if rec.overlap > th.merge_overlap:
                    items.append(
                        ReviewItem(
                            obj_id,
                            t,
                            "merge",
                            round(rec.overlap, 4),
                            f"with object {rec.overlap_with}",
                        )
                    )
        for obj_id, t in self.unconfirmed:
            items.append(ReviewItem(obj_id, t, "unconfirmed division", 0.5, ""))
        items.sort(key=lambda item: (-item.score, item.frame, item.obj_id))
        return items


def review_labels(labels: np.ndarray) -> ReviewRecorder:
    """A recorder filled from a finished (T, H, W) label volume alone (no logits): it finds
    lost and reappearing objects and area jumps; masks there never overlap, so a merge shows
    as one object lost and its neighbour's area jumping."""
    recorder = ReviewRecorder()
    ids = [int(i) for i in np.unique(labels) if i]
    for t in range(labels.shape[0]):
        plane = np.asarray(labels[t])
        present = [i for i in ids if (plane == i).any()]
        if not ids:
            break
        logits = np.stack([np.where(plane == i, 10.0, -10.0) for i in ids]).astype(np.float32)
        absent = np.array([i not in present for i in ids])
        recorder.record(t, ids, logits, absent)
    return recorder
