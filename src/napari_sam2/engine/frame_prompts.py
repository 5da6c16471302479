"""From a user's clicks, box or mask on one frame to one object's result there: the prompt
checked and put on the model's grid, then one pass of the SAM heads (a click); and the
frame's other prompted objects settled after it (exclusive clicks)."""

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import SAM2Error
from .compositing import show_result
from .exclusive_clicks import (
    covered,
    others_clicks,
    split_by_nearest_click,
    stale_neighbours,
    with_background,
)
from .non_overlap import keep_apart
from .state import BACKWARD, NOT_TRACKED, FramePrompt, FrameResult, ObjectState, StartingMask

if TYPE_CHECKING:
    from .tracker import Tracker


def points_prompt(tracker: "Tracker", points_xy, labels, box, box_in_model_units: bool):
    """The prompt of clicks (frame pixels, labels 1/0) and a box (x0, y0, x1, y1 in frame
    pixels, or already on the model's grid); None when there are neither."""
    labels = np.asarray(labels).reshape(-1)
    points = tracker._to_model_xy(points_xy, "point")
    if len(labels) != len(points):
        raise SAM2Error(f"{len(points)} points but {len(labels)} labels")
    if not np.isin(labels, (0, 1)).all():
        raise SAM2Error("point labels must be 1 (object) or 0 (background)")
    if box is not None and not box_in_model_units:
        corners = tracker._to_model_xy(box, "box corner")
        box = torch.stack([corners.min(0).values, corners.max(0).values]).reshape(4)
    if len(points) == 0 and box is None:
        return None
    prompt = FramePrompt(box=box)
    if len(points):
        prompt.point_coords = points
        prompt.point_labels = torch.as_tensor(labels, dtype=torch.int32)
    return prompt


def mask_prompt(mask, height: int, width: int, image_size: int) -> FramePrompt:
    """The prompt of a (H, W) mask, resized to the model's input grid."""
    mask = np.asarray(mask)
    if mask.shape != (height, width):
        raise SAM2Error(f"the mask has shape {mask.shape}, the frames are {(height, width)}")
    resized = torch.from_numpy(mask.astype(bool, copy=False)).float()[None, None]
    if resized.shape[-2:] != (image_size, image_size):
        resized = torch.nn.functional.interpolate(
            resized,
            size=(image_size, image_size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        resized = (resized >= 0.5).float()
    return FramePrompt(mask=resized)


def starting_mask(tracker: "Tracker", obj: ObjectState, t: int) -> torch.Tensor | None:
    """The low-resolution logits a click on frame t starts from: the object's newest result
    there. A tracked frame's result with objects kept apart gives up the pixels another
    object's result there claims more strongly (as the labels show them); the stored results
    stay as they are, so that the others can take back pixels this one gives up."""
    previous = obj.latest_result(t)
    if previous is None or not tracker.non_overlap or previous is not obj.tracked.get(t):
        return None if previous is None else previous.low_res_logits
    others = [o.latest_result(t) for o in tracker.objects.values() if o is not obj]
    others = [r.low_res_logits for r in others if r is not None]
    if not others:
        return previous.low_res_logits
    rows = torch.cat([previous.low_res_logits, *others])[:, 0].float().cpu().numpy()
    return torch.from_numpy(keep_apart(rows)[:1])[:, None]


@torch.inference_mode()
def predict(
    tracker: "Tracker",
    t: int,
    obj: ObjectState,
    prompt: FramePrompt,
    start: StartingMask | None = None,
) -> FrameResult:
    """The object's result on frame t from this prompt, kept as pending (it becomes a
    conditioning frame's memory when propagation starts). With `exclusive_clicks` on, the
    other objects' clicks on frame t that the mask would hold are added as background clicks.
    start: the mask a click starts from (default: the object's newest result there)."""
    model, device = tracker.model, tracker.device
    reverse = obj.direction[t] == BACKWARD
    first_prompt = obj.direction[t] == NOT_TRACKED
    features = tracker.frame_features(t)
    if start is None:
        start = StartingMask(None if prompt.mask is not None else starting_mask(tracker, obj, t))

    def decode(asked: FramePrompt):
        with tracker._autocast():
            if asked.mask is not None:
                return model.track_frame(
                    features, None, mask=asked.mask.to(device), float32_heads=tracker.float32_heads
                )
            coords, labels = asked.model_points()
            previous = start.logits
            prev_logits = None if previous is None else previous.to(device).clamp(-32.0, 32.0)
            memory = None if first_prompt else tracker._memory_for(obj, t, reverse)
            return model.track_frame(
                features,
                memory,
                coords.to(device),
                labels.to(device),
                prev_mask_logits=prev_logits,
                high_res_masks=False,  # the memory encoder upscales at propagation
                float32_heads=tracker.float32_heads,
            )

    prediction = decode(prompt)
    mask = tracker._finish(prediction.low_res_masks, prompt)
    exclusive = tracker.exclusive_clicks and prompt.mask is None
    if exclusive:
        clicks = others_clicks(tracker, obj, t)
        left_out = torch.zeros(len(clicks), dtype=torch.bool)
        # a mask drawn without some clicks can spread onto others: until it holds none
        while (more := covered(tracker, mask, clicks) & ~left_out).any():
            left_out |= more
            prediction = decode(with_background(prompt, clicks[left_out]))
            mask = tracker._finish(prediction.low_res_masks, prompt)
    result = FrameResult(mask, float(prediction.object_score_logits), prediction.obj_ptr)
    if exclusive:
        result.excluded = clicks[left_out] if left_out.any() else None
        result.start, result.decoded = start, mask
    obj.prompts[t] = prompt
    if prediction.candidate_obj_ptrs is not None:
        result.candidates = prediction.low_res_multimasks
        result.candidate_ptrs = prediction.candidate_obj_ptrs
    obj.pending[t] = result
    return result


def settle_frame(
    tracker: "Tracker", t: int, edited: ObjectState | None = None
) -> np.ndarray | None:
    """After the prompts on frame t changed (of `edited`, if it is still there): with
    `exclusive_clicks`, the objects prompted there decoded again where the clicks they must
    leave out changed (from the mask their prompt started from), and their masks split by
    the nearest click; then the changed ones written into the labels (the others than
    `edited` listed in `tracker.neighbours_redecoded`). Returns the logits (H, W) of
    `edited` there."""
    changed = [] if edited is None else [edited]
    if tracker.exclusive_clicks:
        for obj in stale_neighbours(tracker, t):
            result = obj.pending.get(t, obj.conditioning.get(t))
            predict(tracker, t, obj, obj.prompts[t], result.start)
            changed.append(obj)
        for obj in split_by_nearest_click(tracker, t):
            if t not in obj.pending:  # a remembered prompt's mask changed: encoded again
                obj.pending[t] = replace(obj.conditioning[t], memory=None)
            changed.append(obj)
    shown = {}
    for obj in changed:
        if obj.obj_id not in shown:
            shown[obj.obj_id] = show_result(tracker, obj, t, obj.latest_result(t))
            if obj is not edited:
                tracker.neighbours_redecoded.append(obj.obj_id)
    return None if edited is None else shown[edited.obj_id]
