"""Every cell of a stack: seeds on one frame, tracked both ways, divisions found while tracking
forward, cells entering later picked up, lineage kept. A driver over the `Tracker`; the division
rule, the checks that confirm a split, seeding, recovery and the checks against the frame's
classical segmentation live in their own modules.
"""

from collections.abc import Callable, Iterator

import numpy as np

from ..errors import SAM2Error
from ..model.sam_heads import NO_OBJECT_LOGIT
from .automatic_masks import MaskGeneratorSettings
from .cell_seeds import automatic_labels, check_seed_frame, refine_with_regions, seed_ids
from .cell_tracking_result import CellTrackingResult, ObjectSpan
from .classical_regions import segment_frame
from .division_clicks import abandoned_daughter, click_candidates, click_split, split_pieces
from .division_rule import DivisionRule, lobe_pieces, lobes
from .division_watch import DivisionWatch
from .masklet_recovery import recovered_mask, touches_edge
from .region_checks import duplicates, settle_regions, unclaimed_regions, undersized_masklets
from .review import ReviewRecorder
from .tracker import Tracker

__all__ = [
    "CellTracker",
    "CellTrackingResult",
    "DivisionRule",
    "ObjectSpan",
    "abandoned_daughter",
    "click_candidates",
    "click_split",
    "lobe_pieces",
    "lobes",
    "split_pieces",
    "track_cells",
]


class CellTracker:
    """Seeds on one frame, propagation both ways, divisions and late-entering cells.

    tracker: a Tracker on the stack (its objects are this driver's); divisions: detect them
    while tracking forward (off for z-stacks); rule: `DivisionRule`; reseed_every: run the
    automatic mask generator every K frames forward on area no object covers (None: off);
    mask_settings: the generator's settings (for automatic seeds and reseeding);
    classical_cue: check the masklets against the frame's classical segmentation (threshold and
    watershed): divisions, leaks, duplicates, lost cells; None: as `divisions` (on along T).
    """

    def __init__(
        self,
        tracker: Tracker,
        divisions: bool = True,
        rule: DivisionRule | None = None,
        reseed_every: int | None = None,
        mask_settings: MaskGeneratorSettings | None = None,
        min_new_area: int = 20,
        recover_shrinking: bool = True,
        classical_cue: bool | None = None,
    ) -> None:
        if reseed_every is not None and reseed_every < 1:
            raise SAM2Error(f"reseed_every must be 1 or more, got {reseed_every}")
        self.tracker = tracker
        self.divisions = divisions
        self.rule = rule or DivisionRule()
        self.reseed_every = reseed_every
        self.mask_settings = mask_settings or MaskGeneratorSettings()
        self.min_new_area = min_new_area
        self.recover_shrinking = recover_shrinking
        self.classical_cue = divisions if classical_cue is None else classical_cue
        self._classical: dict[int, np.ndarray] = {}  # frame -> its classical segmentation
        self._region_checked: set[tuple[int | None, int]] = set()
        self.seed_areas: dict[int, int] = {}  # seed object -> its seed mask's area
        self.prompt_areas: dict[int, int] = {}  # object -> area of its mask prompt
        self.prompt_masks: dict[int, dict[int, np.ndarray]] = {}  # frame -> {object: mask}
        self._recovered: set[tuple[int, int]] = set()
        shape = (tracker.num_frames, tracker.height, tracker.width)
        self.volume = np.zeros(shape, dtype=np.int32)
        self.lineage: dict[int, int] = {}
        self.division_events: list[tuple[int, int, int, int]] = []
        self.spans: dict[int, ObjectSpan] = {}
        self.ended: dict[int, int] = {}  # object -> its last frame (a divided mother)
        self.births: dict[int, int] = {}  # daughter -> her division frame
        self.review = ReviewRecorder()
        self.seed_frame: int | None = None
        self._next_id = 1

    # -- seeds ------------------------------------------------------------------------

    def _new_id(self) -> int:
        used = max([*self.spans, *self.tracker.object_ids, self._next_id - 1], default=0)
        self._next_id = used + 1
        return self._next_id

    def _add(self, t: int, obj_id: int, mask: np.ndarray) -> None:
        mask = np.asarray(mask, dtype=bool)
        self.tracker.add_mask(t, obj_id, mask)
        self.prompt_areas[obj_id] = int(mask.sum())
        self.prompt_masks.setdefault(t, {})[obj_id] = mask
        self.spans.setdefault(obj_id, ObjectSpan())
        self._next_id = max(self._next_id, obj_id + 1)

    def seed_from_labels(self, t: int, seeds: np.ndarray) -> list[int]:
        """Every nonzero label of a (H, W) integer image becomes an object prompted with its
        mask on frame t; id = label. Returns the ids."""
        t = check_seed_frame(self.tracker, t)
        seeds = np.asarray(seeds)
        ids = seed_ids(self.tracker, t, seeds)
        for obj_id in ids:
            self._add(t, obj_id, seeds == obj_id)
            self.seed_areas[obj_id] = self.prompt_areas[obj_id]
        self.seed_frame = t
        return ids

    def automatic_seed_labels(self, t: int, free: np.ndarray | None = None) -> np.ndarray:
        """SAM 2's automatic masks on frame t as a (H, W) label image (1..N); with `free`,
        only masks lying mostly (80 %) in it, clipped to it. Without `free` and with the
        classical cue, corrected with the frame's classical regions (`refine_with_regions`:
        pairs of cells split, cells missed or cut in parts added whole)."""
        t = check_seed_frame(self.tracker, t)
        labels = automatic_labels(self.tracker, t, self.mask_settings, self.min_new_area, free)
        if self.classical_cue and free is None and labels.any():
            labels = refine_with_regions(labels, self._regions(t), self.min_new_area)
        return labels

    def seed_automatic(self, t: int) -> list[int]:
        """Objects for every mask the automatic mask generator keeps on frame t."""
        labels = self.automatic_seed_labels(t)
        if not labels.any():
            raise SAM2Error(
                f"the automatic mask generator found no object on frame {t}; lower its "
                f"thresholds or give seeds"
            )
        return self.seed_from_labels(t, labels)

    # -- tracking ---------------------------------------------------------------------

    def run(self) -> Iterator[int]:
        """Track from the seed frame backward to the start, then forward to the end with
        divisions and reseeding. Yields each frame index as it is done."""
        if self.seed_frame is None or not self.tracker.object_ids:
            raise SAM2Error("no seeds: call seed_from_labels or seed_automatic first")
        seed = self.seed_frame
        if seed > 0:
            for t, obj_ids, logits in self.tracker.propagate("backward", start_frame=seed):
                self._write(t, obj_ids, logits, reverse=True)
                if t != seed:
                    yield t
        self._done = seed - 1
        start = seed
        while start is not None:
            start = yield from self._forward(start)

    def _forward(self, start: int) -> Iterator[int]:
        """Track forward from `start`; returns the frame to restart from after a division or
        new cells, None at the end."""
        watch = DivisionWatch(self.tracker, self.rule, self.births, self.review, self.seed_frame)
        for t, obj_ids, logits in self.tracker.propagate("forward", start_frame=start):
            self._write(t, obj_ids, logits, reverse=False)
            if self.divisions:
                confirmed = watch.check(t, obj_ids, logits, self.volume[t], self._regions(t))
                if confirmed:
                    if not self.classical_cue:  # (SAM 2's clicks see a split late)
                        for obj_id in confirmed:
                            watch.backtrack(obj_id)
                    # tracking resumes at the earliest division; later ones are found again
                    # then (daughters prompted later would be tracked before their birth)
                    earliest = min(watch.division_frame(obj_id) for obj_id in confirmed)
                    confirmed = [o for o in confirmed if watch.division_frame(o) == earliest]
                    return self._divide(confirmed, watch)
            if self.recover_shrinking and self._recover(t, obj_ids, logits):
                return t
            if self.classical_cue and t > self.seed_frame and self._drop_duplicates(t):
                return t
            if self.classical_cue and t != self.seed_frame and self._check_regions(t):
                return t
            if (
                self.reseed_every is not None
                and t > self.seed_frame
                and (t - self.seed_frame) % self.reseed_every == 0
                and self._reseed(t)
            ):
                return t
            if t > self._done:  # frames tracked again after a division are not news
                self._done = t
                yield t
        watch.report_unconfirmed()
        return None

    def _regions(self, t: int) -> np.ndarray | None:
        """Frame t's classical segmentation (computed once per frame), None when off."""
        if not self.classical_cue:
            return None
        if t not in self._classical:
            frame = np.asarray(self.tracker.frames.read(t), dtype=np.float32)
            self._classical[t] = segment_frame(frame.mean(axis=-1) if frame.ndim == 3 else frame)
        return self._classical[t]

    def _divide(self, confirmed: list[int], watch: DivisionWatch) -> int:
        """End each confirmed mother before its split, prompt its daughters; the frame to
        restart forward tracking from."""
        restart = min(watch.division_frame(obj_id) for obj_id in confirmed)
        for obj_id in confirmed:
            d = watch.division_frame(obj_id)
            self.tracker.remove_object(obj_id)
            self.review.forget(obj_id, d)
            self.ended[obj_id] = d - 1
            self.volume[d:][self.volume[d:] == obj_id] = 0
            span = self.spans[obj_id]
            span.last = d - 1 if span.first is not None and span.first <= d - 1 else None
            daughters = []
            for piece in watch.pieces[obj_id]:
                daughter = self._new_id()
                self._add(d, daughter, piece)
                self.lineage[daughter] = obj_id
                self.births[daughter] = d
                daughters.append(daughter)
            self.division_events.append((obj_id, *daughters, d))
        return restart

    def _recover(self, t: int, obj_ids: list[int], logits: np.ndarray) -> bool:
        """Masklets that shrank to part of their cell (below 60 % of their prompt's area):
        one click at the centre of what is left; a candidate holding it, about the cell's
        size and mostly on pixels no other object holds, becomes (without those pixels) a
        mask prompt on frame t. Whether any did (tracking then resumes from t)."""
        fixed = False
        for obj_id, obj_logits in zip(obj_ids, logits, strict=True):
            mask = obj_logits > 0
            area, reference = int(mask.sum()), self.prompt_areas.get(obj_id, 0)
            if not area or area >= 0.6 * reference or (obj_id, t) in self._recovered:
                continue
            if touches_edge(mask):
                continue  # leaving the field
            self._recovered.add((obj_id, t))
            others = (self.volume[t] != 0) & (self.volume[t] != obj_id)
            found = recovered_mask(self.tracker, t, mask, reference, others)
            if found is not None:
                self._add(t, obj_id, found)
                self.prompt_areas[obj_id] = reference
                fixed = True
        return fixed

    def _drop_duplicates(self, t: int) -> bool:
        """Masklets that moved onto another object's cell on frame t end at t - 1 (they are
        not tracked further). Whether any did (tracking then resumes from t)."""
        prompted = self.prompt_masks.get(t, {})
        dropped = False
        for obj_id in duplicates(self.volume[t], self.volume[t - 1]):
            if obj_id in prompted or obj_id not in self.tracker.object_ids:
                continue
            self.tracker.remove_object(obj_id)
            self.review.forget(obj_id, t)
            self.ended[obj_id] = t - 1
            self.volume[t:][self.volume[t:] == obj_id] = 0
            span = self.spans[obj_id]
            span.last = t - 1 if span.first is not None and span.first <= t - 1 else None
            dropped = True
        return dropped

    def _check_regions(self, t: int) -> bool:
        """Frame t against its classical segmentation: a masklet holding under half of the
        cell region it lies on is prompted with that region, a cell-sized region no object
        holds becomes a new object (each once per frame). Whether any was (tracking then
        resumes from t)."""
        if (None, t) in self._region_checked:
            return False
        self._region_checked.add((None, t))
        regions, frame = self._regions(t), self.volume[t]
        typical = float(np.median(list(self.seed_areas.values()))) if self.seed_areas else 0.0
        changed = False
        for obj_id, region in undersized_masklets(frame, regions, typical).items():
            if (obj_id, t) not in self._region_checked and self.ended.get(obj_id, t) >= t:
                self._region_checked.add((obj_id, t))
                self._add(t, obj_id, region)
                changed = True
        for region in unclaimed_regions(frame, regions, typical, self.min_new_area):
            if region.sum() >= self.min_new_area:
                self._add(t, self._new_id(), region)
                changed = True
        return changed

    def _reseed(self, t: int) -> bool:
        """New objects for masks on frame t that no object covers; whether any was added."""
        free = self.volume[t] == 0
        labels = self.automatic_seed_labels(t, free=free)
        added = False
        for value in np.unique(labels)[1:]:
            self._add(t, self._new_id(), labels == value)
            added = True
        return added

    def _write(self, t: int, obj_ids: list[int], logits: np.ndarray, reverse: bool) -> None:
        """Composite frame t from the yielded logits (each pixel to the object with the
        highest positive logit) and record what the review queue needs."""
        keep = [i for i, obj_id in enumerate(obj_ids) if self.ended.get(obj_id, t) >= t]
        ids = np.array([obj_ids[i] for i in keep], dtype=np.int32)
        frame = np.zeros((self.tracker.height, self.tracker.width), dtype=np.int32)
        if len(ids):
            chosen = logits[keep]
            best = chosen.argmax(axis=0)
            positive = np.take_along_axis(chosen, best[None], axis=0)[0] > 0
            frame[positive] = ids[best[positive]]
            absent = (chosen <= NO_OBJECT_LOGIT).all(axis=(1, 2))
            self.review.record(t, list(ids), chosen, absent, reverse=reverse)
        if self.classical_cue and len(ids):
            frame = settle_regions(frame, self._regions(t))
        # a mask prompt is the object's mask on its frame, exactly (not the model's
        # down- and up-sampled copy of it), so seeds come out as they went in
        for obj_id, mask in self.prompt_masks.get(t, {}).items():
            if obj_id in ids:
                frame[(frame == obj_id) & ~mask] = 0
                frame[mask] = obj_id
        self.volume[t] = frame
        for obj_id in np.unique(frame):
            if obj_id:
                self.spans.setdefault(int(obj_id), ObjectSpan()).see(t)

    def result(self) -> CellTrackingResult:
        spans = {
            obj_id: (span.first, span.last)
            for obj_id, span in self.spans.items()
            if span.first is not None
        }
        lineage = {d: p for d, p in self.lineage.items() if d in spans and p in spans}
        return CellTrackingResult(
            self.volume, lineage, spans, self.seed_frame, list(self.division_events)
        )


def track_cells(
    tracker: Tracker,
    seed_frame: int,
    seeds: np.ndarray | str = "auto",
    divisions: bool = True,
    rule: DivisionRule | None = None,
    reseed_every: int | None = None,
    mask_settings: MaskGeneratorSettings | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[CellTrackingResult, ReviewRecorder]:
    """Seed (a (H, W) label image, or "auto"), track every cell both ways, and return the
    result with its review recorder. progress(t) is called after each frame."""
    cells = CellTracker(tracker, divisions, rule, reseed_every, mask_settings)
    if isinstance(seeds, str):
        if seeds != "auto":
            raise SAM2Error(f"seeds must be a label image or 'auto', got {seeds!r}")
        cells.seed_automatic(seed_frame)
    else:
        cells.seed_from_labels(seed_frame, seeds)
    for t in cells.run():
        if progress is not None:
            progress(t)
    return cells.result(), cells.review
