"""Scores of a model used as a user would use it: the Tracker, one click per object, then
propagation (and one correction click). Masklets are scored with J (region IoU) and F
(boundary F-measure), the DAVIS video-segmentation measures.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..engine import Tracker
from ..model import SAM2
from ..model.catalogue import size_cue_by_default
from .clips import LabelledStack


def jaccard(pred: np.ndarray, target: np.ndarray) -> float:
    """IoU of two (H, W) bool masks; two empty masks agree (1.0)."""
    union = np.logical_or(pred, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, target).sum() / union)


def _boundary(mask: np.ndarray) -> np.ndarray:
    """The mask's pixels that touch the background (4-connected), image edges excluded."""
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1))
    return mask & ~eroded


def boundary_f(pred: np.ndarray, target: np.ndarray, tolerance: float | None = None) -> float:
    """Boundary F-measure of two (H, W) bool masks.

    A boundary pixel counts as matched when the other mask's boundary is within `tolerance`
    pixels (default: 0.8 % of the image diagonal, at least 1, as DAVIS uses); F is the
    harmonic mean of the matched fractions of both boundaries. Two empty masks give 1.0.
    """
    if tolerance is None:
        tolerance = max(1.0, np.ceil(0.008 * np.hypot(*pred.shape)))
    pb, tb = _boundary(pred.astype(bool)), _boundary(target.astype(bool))
    if not pb.any() and not tb.any():
        return 1.0
    if not pb.any() or not tb.any():
        return 0.0
    near_target = ndimage.distance_transform_edt(~tb) <= tolerance
    near_pred = ndimage.distance_transform_edt(~pb) <= tolerance
    precision = (pb & near_target).sum() / pb.sum()
    recall = (tb & near_pred).sum() / tb.sum()
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


@dataclass
class MaskletScore:
    """Mean J, F and their average J&F of one masklet over its frames."""

    j: float
    f: float

    @property
    def jf(self) -> float:
        return (self.j + self.f) / 2


def masklet_score(pred: np.ndarray, target: np.ndarray) -> MaskletScore:
    """J and F of (T, H, W) bool masklets, averaged over all T frames (frames where both are
    empty count as perfect)."""
    js = [jaccard(p, t) for p, t in zip(pred, target, strict=True)]
    fs = [boundary_f(p, t) for p, t in zip(pred, target, strict=True)]
    return MaskletScore(float(np.mean(js)), float(np.mean(fs)))


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel deepest inside a (H, W) bool mask, where a user would click."""
    depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(x), float(y)


def correction_click(pred: np.ndarray, target: np.ndarray) -> tuple[tuple[float, float], int]:
    """The click a user would make on a wrong (H, W) mask: in the middle of the largest error
    region, positive where the object was missed, negative where background was taken."""
    error = pred != target
    regions, count = ndimage.label(error)
    if count == 0:
        return interior_point(target if target.any() else ~pred), 1
    largest = 1 + int(np.argmax(ndimage.sum(error, regions, index=range(1, count + 1))))
    region = regions == largest
    x, y = interior_point(region)
    return (x, y), int(target[int(y), int(x)])


@dataclass
class StackScores:
    """Scores of every object of one stack: the first frame's IoU after one click, and the
    masklets' J&F after propagation and after one correction click each."""

    object_ids: list[int]
    click_iou: list[float]
    masklet: list[MaskletScore]
    corrected: list[MaskletScore]
    volume_iou: list[float] = field(default_factory=list)


def _masklets(tracker: Tracker, object_ids: list[int]) -> dict[int, np.ndarray]:
    out = {
        i: np.zeros((tracker.num_frames, tracker.height, tracker.width), bool) for i in object_ids
    }
    for t, ids, logits in tracker.propagate("forward"):
        for i, logit in zip(ids, logits, strict=True):
            out[i][t] = logit > 0
    return out


def evaluate_stack(
    model: SAM2,
    stack: LabelledStack,
    num_frames: int = 30,
    start: int = 0,
    max_objects: int | None = None,
    min_area: int = 50,
    correct: bool = True,
) -> StackScores:
    """Click once in the middle of each object on frame `start`, track it `num_frames` frames
    with the Tracker, then click once more on each object's worst frame and track again.

    Objects are those with at least `min_area` pixels on the first frame; a cell's masklet
    includes its daughters after a division (the lineage)."""
    stop = min(start + num_frames, stack.num_frames)
    frames = _read_frames(stack, start, stop)
    labels = stack.labels[start:stop]
    ids, counts = np.unique(labels[0], return_counts=True)
    object_ids = [int(i) for i, n in zip(ids, counts, strict=True) if i and n >= min_area]
    object_ids = object_ids[:max_objects]
    truth = {i: np.isin(labels, sorted(stack.descendants(i))) for i in object_ids}

    tracker = Tracker(model, frames)
    click_iou = []
    for i in object_ids:
        logits = tracker.add_points(0, i, [interior_point(truth[i][0])], [1])
        click_iou.append(jaccard(logits > 0, truth[i][0]))
    masklets = _masklets(tracker, object_ids)
    scores = [masklet_score(masklets[i], truth[i]) for i in object_ids]
    corrected: list[MaskletScore] = []
    if correct and object_ids:
        for i in object_ids:
            js = [jaccard(p, g) for p, g in zip(masklets[i], truth[i], strict=True)]
            worst = int(np.argmin(js))
            xy, label = correction_click(masklets[i][worst], truth[i][worst])
            if worst == 0:
                tracker.add_points(0, i, [interior_point(truth[i][0]), xy], [1, label])
            else:
                tracker.add_points(worst, i, [xy], [label])
        masklets = _masklets(tracker, object_ids)
        corrected = [masklet_score(masklets[i], truth[i]) for i in object_ids]
    return StackScores(object_ids, click_iou, scores, corrected)


def evaluate_zstack(
    model: SAM2,
    stack: LabelledStack,
    max_objects: int | None = None,
    min_area: int = 50,
    reappear: bool = False,
    size_cue: bool | None = None,
) -> StackScores:
    """Click once in the middle of each object on the slice where it is largest, as a user
    does in a z-stack, then propagate both ways through the stack (with the Tracker's
    `reappear` off by default, as recommended for z-stacks, and its `size_cue` as the CLI
    and the widget choose along Z for this model unless `size_cue` says otherwise).

    Besides the per-slice masklet scores (slices where neither the object nor its prediction
    is count as perfect, which flatters objects that span few slices), the objects' volume
    IoU: predicted and true voxels over the whole stack."""
    frames = _read_frames(stack, 0, stack.num_frames)
    truth, largest = {}, {}
    for i in (int(i) for i in np.unique(stack.labels) if i):
        mask = stack.labels == i
        areas = mask.sum(axis=(1, 2))
        if areas.max() >= min_area:
            truth[i], largest[i] = mask, int(np.argmax(areas))
    object_ids = list(truth)[:max_objects]
    masks = {i: np.zeros(stack.labels.shape, bool) for i in object_ids}
    if size_cue is None:
        size_cue = size_cue_by_default(model.config.name, along_z=True)
    tracker = Tracker(model, frames, reappear=reappear, size_cue=size_cue)
    click_iou = []
    for i in object_ids:
        z = largest[i]
        logits = tracker.add_points(z, i, [interior_point(truth[i][z])], [1])
        click_iou.append(jaccard(logits > 0, truth[i][z]))
    for z, ids_on_slice, logits in tracker.propagate("both"):
        for i, logit in zip(ids_on_slice, logits, strict=True):
            masks[i][z] = logit > 0
    scores = [masklet_score(masks[i], truth[i]) for i in object_ids]
    volume = [jaccard(masks[i], truth[i]) for i in object_ids]
    return StackScores(object_ids, click_iou, scores, [], volume)


def _read_frames(stack: LabelledStack, start: int, stop: int) -> np.ndarray:
    # frame by frame: lazy stacks (a file's view along one axis) are indexed one frame at a time
    return np.stack([np.asarray(stack.frames[t]) for t in range(start, stop)])


def summarize(results: list[StackScores]) -> dict[str, float]:
    """Means over all objects of all stacks."""
    click = [v for r in results for v in r.click_iou]
    masklet = [s for r in results for s in r.masklet]
    corrected = [s for r in results for s in r.corrected]
    summary = {
        "objects": float(len(click)),
        "click_iou": float(np.mean(click)) if click else float("nan"),
        "J": float(np.mean([s.j for s in masklet])) if masklet else float("nan"),
        "F": float(np.mean([s.f for s in masklet])) if masklet else float("nan"),
        "J&F": float(np.mean([s.jf for s in masklet])) if masklet else float("nan"),
    }
    volume = [v for r in results for v in r.volume_iou]
    if volume:
        summary["volume IoU"] = float(np.mean(volume))
    if corrected:
        summary["J&F corrected"] = float(np.mean([s.jf for s in corrected]))
        summary["J corrected"] = float(np.mean([s.j for s in corrected]))
    return summary


# A daughter is followed on a frame when the mother's masklet covers at least half of it; a
# division is followed when both daughters are, on at least 90 % of the frames from the
# division to the end of the stack (one slip in ten frames is forgiven).
COVERED, FOLLOWED_FRAMES = 0.5, 0.9


def division_followed(masklet: np.ndarray, labels: np.ndarray, daughters: list[int]) -> bool:
    """Whether a mother's (T, H, W) masklet follows all its daughters (ids in `labels`) from
    the division on (see COVERED and FOLLOWED_FRAMES)."""
    present = [np.flatnonzero((labels == d).any(axis=(1, 2))) for d in daughters]
    if any(p.size == 0 for p in present):
        return False
    frames = range(min(int(p[0]) for p in present), len(labels))
    good = 0
    for t in frames:
        covered = True
        for d in daughters:
            daughter = labels[t] == d
            area = int(daughter.sum())
            covered &= area == 0 or (masklet[t] & daughter).sum() >= COVERED * area
        good += covered
    return good >= FOLLOWED_FRAMES * len(frames)


def family(lineage: Mapping[int, int], obj_id: int) -> set[int]:
    """The id and every id that descends from it by division (lineage: daughter -> mother)."""
    found, grew = {obj_id}, True
    while grew:
        new = {d for d, m in lineage.items() if m in found} - found
        found |= new
        grew = bool(new)
    return found


def track_masklet(labels: np.ndarray, lineage: Mapping[int, int], point) -> np.ndarray:
    """The (T, H, W) masklet that a tracking result (labels and lineage, e.g. a classical
    baseline's) gives the object clicked at `point` (x, y) on frame 0: the track under the
    click, or the nearest one, with its descendants."""
    x, y = int(round(point[0])), int(round(point[1]))
    first = labels[0]
    track = int(first[y, x])
    if track == 0 and first.any():
        yy, xx = np.nonzero(first)
        k = int(np.argmin((yy - y) ** 2 + (xx - x) ** 2))
        track = int(first[yy[k], xx[k]])
    if track == 0:
        return np.zeros(labels.shape, bool)
    return np.isin(labels, sorted(family(lineage, track)))
