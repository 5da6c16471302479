"""Every cell of a stack: seeds on one frame, tracked both ways, divisions found while tracking
forward, cells entering later picked up, lineage kept. A driver over the `Tracker`.

Divisions: a masklet that SAM 2 sees as two cells on `persistence` frames ends at the frame
before the first of them; its two pieces become new objects (new ids) prompted with their
masks on the division frame, with the mother recorded as their parent.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.segmentation import watershed

from ..errors import SAM2Error
from ..model.sam2 import NO_OBJECT_LOGIT
from .automatic_masks import (
    MaskGeneratorSettings,
    decode_clicks,
    generate_masks,
    masks_to_labels,
)
from .masks import to_frame_resolution
from .review import ReviewRecorder
from .tracker import Tracker


@dataclass(frozen=True)
class DivisionRule:
    """When a masklet counts as divided.

    A mask is a candidate when it has two lobes: two maxima of its distance transform, each
    at least `min_lobe` of the largest, joined by a neck narrower than `max_neck` of the
    smaller lobe. SAM 2 then decides, as for clicks in an image: one click on each lobe, no
    memory, and of each click's three candidate masks the smallest that could be a daughter
    (between `min_fraction` and 1 - `min_fraction` of the masklet, 70 % inside it). The lobes
    are two cells when those two masks overlap by less than `max_click_iou` (IoU). The split
    must be seen on `persistence` of the `window` frames from the first one it is seen on;
    the division frame is that first one. A masklet that follows one daughter only (it keeps
    less than `max_kept` of its area from one frame to the next) divides at once when a click
    in the middle of what it left finds a daughter-sized cell that no object holds. A
    daughter is not checked for `min_cycle` frames after her birth (a cell cycle is longer).
    A confirmed division moves back, up to `backtrack` frames, over frames where the masklet
    already had two lobes and at least `backtrack_area` of its area on the division frame
    (SAM 2 is sure of two cells a little after they separate).
    """

    min_fraction: float = 0.25
    min_area: int = 20
    persistence: int = 1
    window: int = 3
    min_lobe: float = 0.5
    max_neck: float = 0.8
    max_click_iou: float = 0.3
    max_kept: float = 0.7
    min_cycle: int = 5
    backtrack: int = 4
    backtrack_area: float = 0.85

    def __post_init__(self) -> None:
        if not 0.0 < self.min_fraction <= 0.5:
            raise SAM2Error("min_fraction must be in (0, 0.5]")
        if self.persistence < 1 or self.min_area < 1 or self.window < self.persistence:
            raise SAM2Error("persistence and min_area must be 1 or more, window >= persistence")


def lobes(mask: np.ndarray, rule: DivisionRule) -> tuple[np.ndarray, np.ndarray] | None:
    """The centres (y, x) of a mask's two lobes when it looks pinched, else None."""
    if mask.sum() < 2 * rule.min_area:
        return None
    distance = ndimage.gaussian_filter(ndimage.distance_transform_edt(mask), 1.0)
    top = distance.max()
    peaks = peak_local_max(
        distance,
        min_distance=max(2, int(0.5 * top)),
        threshold_abs=rule.min_lobe * top,
        labels=mask.astype(np.int32),
        num_peaks=4,
        exclude_border=False,
    )
    if len(peaks) < 2:
        return None
    first, second = peaks[0], peaks[1]
    steps = int(np.hypot(*(second - first))) + 2
    line = np.linspace(first, second, steps).round().astype(int)
    neck = distance[line[:, 0], line[:, 1]].min()
    if neck > rule.max_neck * min(distance[tuple(first)], distance[tuple(second)]):
        return None
    return first, second


def click_candidates(tracker: Tracker, t: int, points_yx) -> tuple[np.ndarray, np.ndarray]:
    """One click per (y, x) point on frame t, as in an image (no memory): the candidate
    masks' logits (N, 3, H, W) at the frames' resolution and their predicted IoUs (N, 3)."""
    model, height, width = tracker.model, tracker.height, tracker.width
    scale = np.array([model.image_size / width, model.image_size / height])
    clicks = torch.tensor(
        np.array([[x + 0.0, y + 0.0] for y, x in points_yx]) * scale, dtype=torch.float32
    )
    low_res, ious = decode_clicks(model, tracker.frame_features(t), clicks)
    candidates = to_frame_resolution(low_res.flatten(0, 1)[:, None], height, width)
    return (
        candidates.reshape(len(clicks), -1, height, width).cpu().numpy(),
        ious.cpu().numpy(),
    )


def abandoned_daughter(
    tracker: Tracker,
    t: int,
    mask: np.ndarray,
    previous: np.ndarray,
    free: np.ndarray,
    rule: DivisionRule,
) -> list[np.ndarray]:
    """A masklet that keeps one daughter and lets the other go: when its mask on frame t
    holds between `min_fraction` and `max_kept` of its previous area (and did not touch the
    frame's edge, where cells leave), one click in the middle of what it left; if SAM 2 finds
    a daughter-sized cell there, on pixels no object holds, returns [the masklet's mask, that
    cell], else []."""
    before, now = int(previous.sum()), int(mask.sum())
    if (
        before < 2 * rule.min_area
        or not rule.min_fraction * before <= now <= rule.max_kept * before
    ):
        return []
    left = previous & ~mask
    touches_border = previous[0].any() or previous[-1].any() or previous[:, 0].any()
    if left.sum() < rule.min_area or touches_border or previous[:, -1].any():
        return []  # (a cell leaving the field shrinks too)
    distance = ndimage.distance_transform_edt(left)
    centre = np.unravel_index(int(distance.argmax()), distance.shape)
    candidates, _ = click_candidates(tracker, t, [centre])
    for candidate in sorted(candidates[0] > 0, key=lambda c: c.sum()):
        size = int(candidate.sum())
        if not rule.min_fraction * before <= size <= (1 - rule.min_fraction) * before:
            continue
        if (candidate & free).sum() < 0.7 * size:
            continue
        if (candidate & mask).sum() > rule.max_click_iou * (candidate | mask).sum():
            continue
        other = candidate & free & ~mask
        parts, count = ndimage.label(other)
        if count > 1:
            other = parts == np.bincount(parts.ravel())[1:].argmax() + 1
        if other.sum() >= max(rule.min_area, rule.min_fraction * before):
            return [mask, other]
    return []


def click_split(
    tracker: Tracker, t: int, mask: np.ndarray, centres, rule: DivisionRule
) -> list[np.ndarray]:
    """Ask SAM 2 whether the two lobes of a (H, W) mask on frame t are two cells: one click
    on each, as in an image; returns the mask's pixels split between the two, or []."""
    candidates, ious = click_candidates(tracker, t, centres)
    area = mask.sum()
    chosen = []
    for options, click_ious in zip(candidates, ious, strict=True):
        sizes = [(c > 0).sum() for c in options]
        daughter_sized = [
            k
            for k, c in enumerate(options)
            if rule.min_fraction * area <= sizes[k] <= (1 - rule.min_fraction) * area
            and ((c > 0) & mask).sum() >= 0.7 * sizes[k]
        ]
        if daughter_sized:
            chosen.append(options[min(daughter_sized, key=lambda k: sizes[k])])
        else:
            chosen.append(options[int(click_ious.argmax())])
    logits = np.stack(chosen)
    first, second = logits > 0
    union = (first | second).sum()
    if union == 0 or (first & second).sum() > rule.max_click_iou * union:
        return []
    for click_mask in (first, second):
        if (click_mask & mask).sum() < 0.5 * click_mask.sum():
            return []  # the click found something else than a part of this cell
    piece = mask & (logits[0] >= logits[1])
    pieces = [piece, mask & ~piece]
    smallest = max(rule.min_area, rule.min_fraction * mask.sum())
    if min(int(p.sum()) for p in pieces) < smallest:
        return []
    # each daughter is one connected piece (stray pixels go with the other)
    kept = []
    for p in pieces:
        parts, count = ndimage.label(p)
        if count > 1:
            p = parts == np.bincount(parts.ravel())[1:].argmax() + 1
        kept.append(p)
    return kept


def lobe_pieces(mask: np.ndarray, centres) -> list[np.ndarray]:
    """A mask cut in two by a watershed of its distance transform from two lobe centres."""
    markers = np.zeros(mask.shape, dtype=np.int32)
    for k, (y, x) in enumerate(centres, start=1):
        markers[int(y), int(x)] = k
    regions = watershed(-ndimage.distance_transform_edt(mask), markers, mask=mask)
    return [regions == 1, regions == 2]


def split_pieces(tracker: Tracker, t: int, mask: np.ndarray, rule: DivisionRule):
    """The two daughters' masks when the masklet's mask on frame t is two cells, else []."""
    centres = lobes(mask, rule)
    return [] if centres is None else click_split(tracker, t, mask, centres, rule)


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


class CellTracker:
    """Seeds on one frame, propagation both ways, divisions and late-entering cells.

    tracker: a Tracker on the stack (its objects are this driver's); divisions: detect them
    while tracking forward (off for z-stacks); rule: `DivisionRule`; reseed_every: run the
    automatic mask generator every K frames forward on area no object covers (None: off);
    mask_settings: the generator's settings (for automatic seeds and reseeding).
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
        t = self._check_seed_frame(t)
        seeds = np.asarray(seeds)
        if seeds.shape != (self.tracker.height, self.tracker.width):
            raise SAM2Error(
                f"the seeds have shape {seeds.shape}; a frame is "
                f"{(self.tracker.height, self.tracker.width)}"
            )
        if seeds.dtype.kind not in "iub":
            raise SAM2Error(f"the seeds must be integer labels, got {seeds.dtype}")
        ids = [int(v) for v in np.unique(seeds) if v != 0]
        if not ids:
            raise SAM2Error(f"the seeds have no object on frame {t} (every pixel is 0)")
        if min(ids) < 0:
            raise SAM2Error(f"the seeds hold a negative label ({min(ids)}); labels are 1 or more")
        for obj_id in ids:
            self._add(t, obj_id, seeds == obj_id)
        self.seed_frame = t
        return ids

    def automatic_seed_labels(self, t: int, free: np.ndarray | None = None) -> np.ndarray:
        """SAM 2's automatic masks on frame t as a (H, W) label image (1..N); with `free`,
        only masks lying mostly (80 %) in it, clipped to it."""
        t = self._check_seed_frame(t)
        image = self.tracker.frames.normalized(t)
        masks = generate_masks(
            self.tracker.model, image, self.mask_settings, self.tracker.frame_features(t)
        )
        if free is not None:
            masks = [m for m in masks if (m.mask & free).sum() >= 0.8 * m.area]
            for m in masks:
                m.mask = m.mask & free
        labels = masks_to_labels(masks, self.tracker.height, self.tracker.width)
        sizes = np.bincount(labels.ravel())
        labels[sizes[labels] < self.min_new_area] = 0
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

    def _check_seed_frame(self, t: int) -> int:
        if not isinstance(t, int | np.integer) or not 0 <= t < self.tracker.num_frames:
            raise SAM2Error(
                f"seed frame {t} is out of range: the stack has {self.tracker.num_frames} "
                f"frames (0 to {self.tracker.num_frames - 1})"
            )
        return int(t)

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
        splits: dict[int, list[int]] = {}  # object -> frames a split was seen on
        pieces: dict[int, list[np.ndarray]] = {}  # object -> pieces on its first split frame
        previous: dict[int, np.ndarray] = {}  # object -> its mask on the frame before
        history: dict[int, dict[int, np.ndarray]] = {}  # object -> recent frames' masks
        for t, obj_ids, logits in self.tracker.propagate("forward", start_frame=start):
            self._write(t, obj_ids, logits, reverse=False)
            if self.divisions:
                confirmed = self._check_divisions(
                    t, obj_ids, logits, splits, pieces, previous, history
                )
                if confirmed:
                    for obj_id in confirmed:
                        self._backtrack(obj_id, splits, pieces, history.get(obj_id, {}))
                    # tracking resumes at the earliest division; later ones are found again
                    # then (daughters prompted later would be tracked before their birth)
                    earliest = min(splits[obj_id][0] for obj_id in confirmed)
                    confirmed = [o for o in confirmed if splits[o][0] == earliest]
                    return self._divide(confirmed, splits, pieces)
            if self.recover_shrinking and self._recover(t, obj_ids, logits):
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
        for obj_id, frames in splits.items():
            self.review.unconfirmed_division(obj_id, frames[0])
        return None

    def _check_divisions(self, t, obj_ids, logits, splits, pieces, previous, history) -> list[int]:
        """Objects whose division is confirmed on frame t; `splits` holds, per object, the
        frames a split was seen on since the first, `pieces` the pieces on that first,
        `previous` the masks of the frame before and `history` those of the last few frames
        (both updated here)."""
        confirmed = []
        free = self.volume[t] == 0
        for obj_id, obj_logits in zip(obj_ids, logits, strict=True):
            mask = obj_logits > 0
            born = self.births.get(obj_id)
            if (born is not None and t - born < self.rule.min_cycle) or t == self.seed_frame:
                continue  # (the seed frame's objects are as the user gave them)
            found = split_pieces(self.tracker, t, mask, self.rule) if mask.any() else []
            before = previous.get(obj_id)
            previous[obj_id] = mask
            recent = history.setdefault(obj_id, {})
            recent[t] = mask
            for old in [k for k in recent if k < t - self.rule.backtrack - self.rule.window]:
                del recent[old]
            if not found and before is not None and obj_id not in splits:
                found = abandoned_daughter(self.tracker, t, mask, before, free, self.rule)
                if found:
                    splits[obj_id], pieces[obj_id] = [t], found
                    confirmed.append(obj_id)
                    continue
            if found:
                if obj_id not in splits:
                    pieces[obj_id] = found
                splits.setdefault(obj_id, []).append(t)
                if len(splits[obj_id]) >= self.rule.persistence:
                    confirmed.append(obj_id)
            elif obj_id in splits and t - splits[obj_id][0] + 1 >= self.rule.window:
                self.review.unconfirmed_division(obj_id, splits.pop(obj_id)[0])
                pieces.pop(obj_id, None)
        return confirmed

    def _backtrack(self, obj_id: int, splits, pieces, recent: dict[int, np.ndarray]) -> None:
        """Move a confirmed division back over frames where the masklet already looked like
        two cells (two lobes, nearly the area it has on the division frame)."""
        first = splits[obj_id][0]
        area = recent[first].sum() if first in recent else 0
        born = self.births.get(obj_id, -1)
        t = first - 1
        while t >= first - self.rule.backtrack and t in recent and t > max(born, self.seed_frame):
            mask = recent[t]
            centres = lobes(mask, self.rule)
            if centres is None or mask.sum() < self.rule.backtrack_area * area:
                break
            found = lobe_pieces(mask, centres)
            if min(p.sum() for p in found) < max(
                self.rule.min_area, self.rule.min_fraction * mask.sum()
            ):
                break
            splits[obj_id][0], pieces[obj_id] = t, found
            t -= 1

    def _divide(self, confirmed: list[int], splits, pieces) -> int:
        """End each confirmed mother before its split, prompt its daughters; the frame to
        restart forward tracking from."""
        restart = min(splits[obj_id][0] for obj_id in confirmed)
        for obj_id in confirmed:
            d = splits[obj_id][0]
            self.tracker.remove_object(obj_id)
            self.review.forget(obj_id, d)
            self.ended[obj_id] = d - 1
            self.volume[d:][self.volume[d:] == obj_id] = 0
            span = self.spans[obj_id]
            span.last = d - 1 if span.first is not None and span.first <= d - 1 else None
            daughters = []
            for piece in pieces[obj_id]:
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
        mask prompt on frame t. Whether
        any did (tracking then resumes from t)."""
        fixed = False
        for obj_id, obj_logits in zip(obj_ids, logits, strict=True):
            mask = obj_logits > 0
            area, reference = int(mask.sum()), self.prompt_areas.get(obj_id, 0)
            if not area or area >= 0.6 * reference or (obj_id, t) in self._recovered:
                continue
            if mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any():
                continue  # leaving the field
            self._recovered.add((obj_id, t))
            centre = ndimage.center_of_mass(mask)
            if not mask[int(round(centre[0])), int(round(centre[1]))]:
                centre = np.unravel_index(
                    int(ndimage.distance_transform_edt(mask).argmax()), mask.shape
                )
            candidates, _ = click_candidates(self.tracker, t, [centre])
            others = (self.volume[t] != 0) & (self.volume[t] != obj_id)
            for candidate in candidates[0] > 0:
                size = int(candidate.sum())
                if (
                    (candidate & mask).sum() >= 0.8 * area
                    and 0.7 * reference <= size <= 1.4 * reference
                    and (candidate & others).sum() <= 0.25 * size
                ):
                    self._add(t, obj_id, candidate & ~others)
                    self.prompt_areas[obj_id] = reference
                    fixed = True
                    break
        return fixed

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
