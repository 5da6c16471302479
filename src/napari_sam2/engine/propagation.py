"""Propagation through the stack: prompted frames encoded into memory, then every frame of a
pass tracked from memory, object batch by object batch, and written into the labels."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SAM2Error
from ..model import FrameFeatures, FrameMemory
from ..model.memory_bank import MemoryInputs
from ..model.sam_heads import NO_OBJECT_LOGIT, MaskPrediction
from .compositing import write_tracked_frame
from .eviction import evict_results
from .freed_memory import keeping_freed_memory, release_freed_memory
from .masks import to_frame_resolution
from .non_overlap import keep_apart
from .object_batches import batches_by_layout
from .outlines import snap_outline
from .propagation_plan import DIRECTIONS, Pass, plan_passes
from .size_cue import KeptRegion, SizeReference, brightness, size_reference, trim_to_edge
from .state import BACKWARD, FORWARD, NOT_TRACKED, FrameResult, ObjectState
from .touching_cells import Patch, split_at_necks

if TYPE_CHECKING:
    from .tracker import Tracker

Step = tuple[int, list[int], np.ndarray]


def selection(tracker: "Tracker", obj_ids: Iterable[int] | None) -> list[ObjectState]:
    """The objects a propagation runs: all of them, or exactly `obj_ids`."""
    if obj_ids is None:
        return list(tracker.objects.values())
    if isinstance(obj_ids, int | np.integer):
        obj_ids = [obj_ids]
    selected = [tracker._object(i, create=False) for i in obj_ids]
    if not selected:
        raise SAM2Error("obj_ids is empty: name at least one object to propagate")
    unprompted = [o.obj_id for o in selected if not o.conditioning and not o.pending]
    if unprompted:
        raise SAM2Error(
            f"objects {unprompted} have no prompts to propagate from: add a click, box or "
            "mask first"
        )
    return list({o.obj_id: o for o in selected}.values())


@torch.inference_mode()
def consolidate(tracker: "Tracker", objs: list[ObjectState]) -> None:
    """Encode the memory of frames prompted since the last propagation."""
    model, device = tracker.model, tracker.device
    for obj in objs:
        for t, result in sorted(obj.pending.items()):
            features = tracker.frame_features(t)
            high_res = model.upscale(result.low_res_logits.to(device))
            score = torch.tensor([[result.object_score]], device=device)
            with tracker._autocast():
                result.memory = model.frame_memory(
                    features, high_res, score, result.obj_ptr, from_clicks=True
                )
            obj.conditioning[t] = result
            obj.tracked.pop(t, None)
        obj.pending.clear()


def passes(
    tracker: "Tracker", direction: str, start_frame: int | None, objs: list[ObjectState]
) -> list[Pass]:
    """The passes propagation makes, after encoding new prompts into memory."""
    if direction not in DIRECTIONS:
        raise SAM2Error(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if start_frame is not None:
        start_frame = tracker._check_frame(start_frame)
    consolidate(tracker, objs)
    prompted = [list(obj.conditioning) for obj in objs]
    return plan_passes(direction, start_frame, prompted, tracker.num_frames)


def run_passes(
    tracker: "Tracker", objs: list[ObjectState], planned: list[Pass], partial: bool
) -> Iterator[Step]:
    for order, reverse in planned:
        yield from run_pass(tracker, objs, order, reverse, partial)


def run_pass(
    tracker: "Tracker",
    objs: list[ObjectState],
    order: range,
    reverse: bool,
    partial: bool = False,
) -> Iterator[Step]:
    """Track `objs` over the frames of `order`, yielding (t, obj_ids, logits) per frame."""
    with keeping_freed_memory(tracker.device.type == "cpu"):
        yield from _run_pass(tracker, objs, order, reverse, partial)


def _run_pass(
    tracker: "Tracker", objs: list[ObjectState], order: range, reverse: bool, partial: bool
) -> Iterator[Step]:
    seen, lost = set(), set()  # in this pass, when lost objects may not return
    # each object's mask on the pass's frame before, where touching masks are split from it
    before: dict[int, Patch | None] = {}
    for t in order:
        # objects removed (or a reset) while the generator was paused stay gone
        objs = [o for o in objs if tracker.objects.get(o.obj_id) is o]
        if not objs:
            return
        active = objs if tracker.reappear else [o for o in objs if reached(o, t, reverse)]
        if not active:
            yield t, [], np.empty((0, tracker.height, tracker.width), dtype=np.float32)
            continue
        frame_partial = partial or len(active) < len(tracker.objects)
        obj_ids = [o.obj_id for o in active]
        with torch.inference_mode():
            logits = track_objects(tracker, active, t, reverse, lost, before)
        if splits_touching(tracker):
            before = {o.obj_id: Patch.of(row > 0) for o, row in zip(active, logits, strict=True)}
        if not tracker.reappear:
            for obj, obj_logits in zip(active, logits, strict=True):
                # lost: an empty mask (an absent object's mask is empty too)
                if (obj_logits > 0).any():
                    seen.add(obj.obj_id)
                    lost.discard(obj.obj_id)
                elif obj.obj_id in seen:
                    lost.add(obj.obj_id)
        write_tracked_frame(tracker, t, active, logits, frame_partial)
        # the frame's activations are freed: give them back to the system now, so the
        # process's resident memory stays near what the caches hold (unless they are kept
        # for the next frame, freed_memory.py)
        release_freed_memory()
        yield t, obj_ids, logits


def reached(obj: ObjectState, t: int, reverse: bool) -> bool:
    """Whether a pass in this direction has reached or passed one of the object's prompted
    frames at frame t. With `reappear` off (along Z) an object is only followed away from its
    prompts: tracked towards a prompt from far off, a nucleus prompted on slice 4 would be
    looked for on slices 31..5 in the backward pass, found on a deeper nucleus or lost, and
    its forward results there overwritten."""
    return any(c >= t if reverse else c <= t for c in obj.conditioning)


def splits_touching(tracker: "Tracker") -> bool:
    """Whether touching objects' masks are split again at their necks: with objects kept
    apart (`non_overlap`) and `split_touching` on, not with the size cue (along Z, where
    a nucleus's slices shrink and grow on purpose: measured worse)."""
    return tracker.non_overlap and tracker.split_touching and not tracker.size_cue


def track_objects(
    tracker: "Tracker",
    objs: list[ObjectState],
    t: int,
    reverse: bool,
    lost: set[int],
    before: dict[int, Patch | None] | None = None,
) -> np.ndarray:
    """Every object's logits on frame t, (N, H, W). Objects tracked from memory run in
    batches of objects whose memories have the same layout. `before`: the objects' masks on
    the pass's frame before, where touching masks are split from it (`split_at_necks`)."""
    logits = np.empty((len(objs), tracker.height, tracker.width), dtype=np.float32)
    to_track: list[tuple[int, ObjectState, MemoryInputs]] = []
    for i, obj in enumerate(objs):
        if obj.obj_id in lost and t not in obj.conditioning:
            logits[i] = untrack(tracker, obj, t)
            continue
        obj.direction[t] = BACKWARD if reverse else FORWARD
        if t in obj.conditioning:
            logits[i] = tracker._frame_logits(obj.conditioning[t])
            continue
        to_track.append((i, obj, tracker._memory_for(obj, t, reverse)))
    # the size cue and the snapped outlines read the frame once for all its objects' batches
    reads_image = tracker.size_cue or tracker.snap_outlines
    image = brightness(tracker.normalized_frame(t)) if reads_image and to_track else None
    layouts = [memory.layout for _, _, memory in to_track]
    # each batch as (its rows in `logits`, its objects, their memories)
    batches = [
        tuple(map(list, zip(*batch, strict=True)))
        for batch in batches_by_layout(to_track, layouts, tracker.batch_size)
    ]
    if not (tracker.non_overlap and len(to_track) > 1):
        # one batch at a time: only one batch's high-resolution masks exist at once
        for rows, batch_objs, memories in batches:
            predicted = predict_batch(tracker, batch_objs, memories, t, image)
            remember_batch(tracker, batch_objs, predicted, t, reverse)
            logits[rows] = predicted.logits
        return logits
    # every tracked object's mask first, so that each is remembered without its neighbours'
    predictions = [predict_batch(tracker, b, m, t, image) for _, b, m in batches]
    all_rows = [i for rows, _, _ in batches for i in rows]
    logits[all_rows] = keep_apart(np.concatenate([p.logits for p in predictions]))
    if before is not None and splits_touching(tracker):
        masks_before = [before.get(objs[i].obj_id) for i in all_rows]
        logits[all_rows] = split_at_necks(logits[all_rows], masks_before)
    for (rows, batch_objs, _), predicted in zip(batches, predictions, strict=True):
        predicted.high_res = trimmed_high_res(predicted.high_res, logits[rows])
        remember_batch(tracker, batch_objs, predicted, t, reverse)
    return logits


def untrack(tracker: "Tracker", obj: ObjectState, t: int) -> np.ndarray:
    """An object that may not return, past the frame where it was lost: empty, and the
    frame counts as never tracked (a click there starts afresh)."""
    obj.tracked.pop(t, None)
    obj.direction[t] = NOT_TRACKED
    return np.full((tracker.height, tracker.width), NO_OBJECT_LOGIT, dtype=np.float32)


@dataclass
class BatchPrediction:
    """One batch's masks on a frame, before they are remembered: the frame's features, the
    decoder's output, the low-resolution logits (B, 1, h, w) kept as results, the frame logits
    (B, H, W), what the size cue kept of each mask, and the (B, 1, S, S) masks the memory
    encoder will see."""

    features: FrameFeatures
    prediction: MaskPrediction
    low_res: torch.Tensor
    logits: np.ndarray
    kept: list[KeptRegion | None]
    high_res: torch.Tensor


def predict_batch(
    tracker: "Tracker",
    objs: list[ObjectState],
    memories: list[MemoryInputs],
    t: int,
    image: np.ndarray | None = None,
) -> BatchPrediction:
    """Objects' masks on frame t, predicted in one batch from their memories. With the frame's
    `brightness` as `image`, masks are trimmed by the size cue and their outlines snapped to
    the image, as the tracker's options say."""
    model = tracker.model
    features = tracker.frame_features(t)
    with tracker._autocast():
        prediction = model.track_frames(features, memories, float32_heads=tracker.float32_heads)
    low_res = tracker._finish(prediction.low_res_masks)
    logits = to_frame_resolution(low_res, tracker.height, tracker.width).cpu().numpy()
    kept: list[KeptRegion | None] = [None] * len(objs)
    high_res = prediction.high_res_masks
    if image is not None:
        if tracker.size_cue:
            kept = trim_by_size_cue(tracker, objs, t, logits, image)
        if tracker.snap_outlines:
            shown = [
                row if k is None else k.apply(row) for k, row in zip(kept, logits, strict=True)
            ]
            limits = [grow_limit(tracker, obj, t) for obj in objs]
            snapped = [
                snap_outline(image, row > 0, limit)
                for row, limit in zip(shown, limits, strict=True)
            ]
            kept = [k if s is None else s for k, s in zip(kept, snapped, strict=True)]
        logits = np.stack(
            [k.apply(row) if k is not None else row for k, row in zip(kept, logits, strict=True)]
        )
        if tracker.snap_outlines:
            high_res = matched_high_res(high_res, logits)
        elif CUE_INTO_MEMORY:
            high_res = trimmed_high_res(high_res, logits)
    return BatchPrediction(features, prediction, low_res, logits, kept, high_res)


def remember_batch(
    tracker: "Tracker",
    objs: list[ObjectState],
    predicted: BatchPrediction,
    t: int,
    reverse: bool,
) -> None:
    """Encode a predicted batch's masks into memory and keep each object's result on frame t."""
    prediction = predicted.prediction
    with tracker._autocast():
        memory = tracker.model.frame_memory(
            predicted.features,
            predicted.high_res,
            prediction.object_score_logits,
            prediction.obj_ptr,
        )
    scores = prediction.object_score_logits.float().cpu().view(-1).tolist()
    options = tracker._memory_options
    budget = tracker.result_budget_bytes // max(1, len(tracker.objects))
    for i, obj in enumerate(objs):
        # copies, so that each result holds its own rows and not the whole batch
        row = slice(i, i + 1)
        obj_ptr = memory.obj_ptr[row].clone()
        own_memory = FrameMemory(
            memory.features[row].clone(), memory.pos_enc, obj_ptr, present=scores[i] > 0
        )
        result = FrameResult(
            predicted.low_res[row].clone(), scores[i], obj_ptr, own_memory, predicted.kept[i]
        )
        obj.tracked.pop(t, None)
        obj.tracked[t] = result  # newest last, for eviction order
        evict_results(obj, t, reverse, budget, options["num_maskmem"], options["max_obj_ptrs"])


# the memory encoder sees the trimmed masks too, not only the results: later frames then
# start from the smaller mask (measured better, docs/demo_model.md)
CUE_INTO_MEMORY = True


def trim_by_size_cue(
    tracker: "Tracker", objs: list[ObjectState], t: int, logits: np.ndarray, image: np.ndarray
) -> list[KeptRegion | None]:
    """Each object's mask on frame t (`image`: its `brightness`) trimmed to its half-maximum
    edge (`size_cue`), measured against its nearest prompted frame; None where there is
    nothing to trim or no reference."""
    kept: list[KeptRegion | None] = []
    for obj, obj_logits in zip(objs, logits, strict=True):
        reference = size_reference_of(tracker, obj, t)
        mask = obj_logits > 0
        if reference is None or not mask.any():
            kept.append(None)
            continue
        kept.append(trim_to_edge(image, mask, reference))
    return kept


# how large a snapped mask may grow to the region at its level (`grow_outlines`), as a multiple
# of the object's area on its nearest prompted frame: room for a cell that grows
GROWTH = 1.3


def grow_limit(tracker: "Tracker", obj: ObjectState, t: int) -> float | None:
    """The most pixels the object's snapped mask on frame t may grow to (`grow_outlines`):
    GROWTH times its area on its nearest prompted frame; None when not growing, and with the
    size cue, which trims a nucleus's end slices on purpose (z-stacks: measured worse)."""
    if not tracker.grow_outlines or tracker.size_cue or not obj.conditioning:
        return None
    nearest = min(obj.conditioning, key=lambda c: (abs(c - t), c))
    result = obj.conditioning[nearest]
    if result.prompt_area is None:  # new prompts make a new result: never stale
        result.prompt_area = int((tracker._frame_logits(result) > 0).sum())
    return GROWTH * result.prompt_area


def size_reference_of(tracker: "Tracker", obj: ObjectState, t: int) -> SizeReference | None:
    """The object's size reference from its prompted frame nearest to t (measured once per
    prompted result: new prompts there give a new result, hence a new reference)."""
    if not obj.conditioning:
        return None
    nearest = min(obj.conditioning, key=lambda c: (abs(c - t), c))
    result = obj.conditioning[nearest]
    if result.size_reference is None:
        image = brightness(tracker.normalized_frame(nearest))
        result.size_reference = (size_reference(image, tracker._frame_logits(result) > 0),)
    return result.size_reference[0]


def matched_high_res(high_res: torch.Tensor, logits: np.ndarray) -> torch.Tensor:
    """The decoder's (B, 1, S, S) masks made to agree with the frame logits (B, H, W) where
    these were trimmed or grown (snapped outlines), for the memory encoder."""
    inside = torch.from_numpy(logits > 0)[:, None].float()
    inside = F.interpolate(inside, size=high_res.shape[-2:], mode="nearest") > 0.5
    inside = inside.to(high_res.device)
    high_res = torch.where(~inside & (high_res > 0), torch.full_like(high_res, -10.0), high_res)
    return torch.where(inside & (high_res <= 0), torch.full_like(high_res, 10.0), high_res)


def trimmed_high_res(high_res: torch.Tensor, logits: np.ndarray) -> torch.Tensor:
    """The decoder's (B, 1, S, S) masks with the pixels the size cue removed from the frame
    logits (B, H, W) set to no object, for the memory encoder."""
    removed = torch.from_numpy(logits <= 0)[:, None].float()
    removed = F.interpolate(removed, size=high_res.shape[-2:], mode="nearest") > 0.5
    removed = removed.to(high_res.device)
    return torch.where(removed & (high_res > 0), torch.full_like(high_res, -10.0), high_res)
