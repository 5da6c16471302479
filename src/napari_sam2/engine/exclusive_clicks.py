"""Objects clicked on one frame kept off each other's clicks.

Two cells that touch often come back from one click as one mask: the model cannot know that
the neighbour is another object. Its click says so, though: a click of another object on the
same frame is a pixel this object's mask should not hold. With `exclusive_clicks` on, an
object's prompt is decoded again with the other objects' clicks that its mask covers added as
background clicks, as a user would add them by hand; and when a new click lands inside an
object already prompted on that frame, that object is decoded again the same way. A
background click carves only around itself, so where the masks of objects clicked there
still meet, each pixel goes to the object with the nearest click: in the labels and in what
is remembered. The user's own clicks are what is stored and logged; what was added follows
from them, so a session replays exactly.
"""

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import ndimage

from .clicked_region import click_cells
from .non_overlap import NON_OWNER_LOGIT
from .state import FramePrompt, ObjectState

if TYPE_CHECKING:
    from .tracker import Tracker


def others_clicks(tracker: "Tracker", obj: ObjectState, t: int) -> torch.Tensor:
    """(K, 2) the object clicks (label 1) of every other object on frame t, on the model's
    grid, in the order of the objects and their clicks."""
    points = [torch.zeros((0, 2))]
    for other in tracker.objects.values():
        prompt = other.prompts.get(t)
        if other is obj or prompt is None or prompt.point_coords is None:
            continue
        points.append(prompt.point_coords[prompt.point_labels == 1].float())
    return torch.cat(points)


def covered(tracker: "Tracker", low_res: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(K,) bool: which of the (K, 2) clicks lie on the positive part of (1, 1, h, w) logits."""
    if len(points) == 0:
        return torch.zeros(0, dtype=torch.bool)
    rows, cols = covered_cells(tracker, low_res.shape[-2:], points)
    return torch.from_numpy(low_res[0, 0].float().cpu().numpy()[rows, cols] > 0)


def with_background(prompt: FramePrompt, points: torch.Tensor) -> FramePrompt:
    """The prompt with (K, 2) more clicks, as background."""
    own = prompt.point_coords if prompt.point_coords is not None else torch.zeros((0, 2))
    labels = prompt.point_labels if prompt.point_labels is not None else torch.zeros(0)
    return FramePrompt(
        point_coords=torch.cat([own.float(), points.float()]),
        point_labels=torch.cat(
            [labels.to(torch.int32), torch.zeros(len(points), dtype=torch.int32)]
        ),
        box=prompt.box,
    )


def same_points(a: torch.Tensor | None, b: torch.Tensor) -> bool:
    a = torch.zeros((0, 2)) if a is None else a
    return a.shape == b.shape and bool(torch.equal(a.float(), b.float()))


def stale_neighbours(tracker: "Tracker", t: int) -> list[ObjectState]:
    """The objects prompted with clicks or a box on frame t whose result there no longer
    leaves out what it should: another object's click now on their mask, or a click they
    left out that is gone."""
    stale = []
    for obj in tracker.objects.values():
        prompt = obj.prompts.get(t)
        result = obj.pending.get(t, obj.conditioning.get(t))
        if prompt is None or prompt.mask is not None or result is None:
            continue
        clicks = others_clicks(tracker, obj, t)
        before = torch.zeros((0, 2)) if result.excluded is None else result.excluded
        kept = np.array([any(torch.equal(c, e) for e in before) for c in clicks], dtype=bool)
        decoded = result.low_res_logits if result.decoded is None else result.decoded
        needed = clicks[torch.from_numpy(kept) | covered(tracker, decoded, clicks)]
        if not same_points(result.excluded, needed):
            stale.append(obj)
    return stale


def split_by_nearest_click(tracker: "Tracker", t: int) -> list[ObjectState]:
    """Where the masks decoded for the objects clicked on frame t (with exclusive clicks)
    meet, each pixel stays with the object whose object click is nearest (on the logits'
    grid) and the others' logits there are lowered to at most NON_OWNER_LOGIT. Sets each such
    object's result there from its decoded mask; returns those whose result changed."""
    taking = []
    for obj in tracker.objects.values():
        prompt = obj.prompts.get(t)
        result = obj.pending.get(t, obj.conditioning.get(t))
        if result is None or result.decoded is None or prompt.point_coords is None:
            continue
        clicks = prompt.point_coords[prompt.point_labels == 1]
        if len(clicks):
            taking.append((obj, result, clicks))
    changed = []
    if not taking:
        return changed
    decoded = torch.cat([r.decoded for _, r, _ in taking])[:, 0].float().cpu().numpy()
    distance = np.empty_like(decoded)
    for i, (_, _, clicks) in enumerate(taking):
        seeds = np.ones(decoded.shape[1:], bool)
        seeds[covered_cells(tracker, decoded.shape[1:], clicks)] = False
        distance[i] = ndimage.distance_transform_edt(seeds)
    claimed = decoded > 0
    distance[~claimed] = np.inf
    owner = np.argmin(distance, axis=0)
    for i, (obj, result, _) in enumerate(taking):
        lost = claimed[i] & (owner != i)
        logits = result.decoded
        if lost.any():
            lowered = torch.minimum(logits, torch.full_like(logits, NON_OWNER_LOGIT))
            logits = torch.where(torch.from_numpy(lost).to(logits.device), lowered, logits)
        if not torch.equal(logits, result.low_res_logits):
            result.low_res_logits = logits
            result.prompt_area = result.size_reference = None  # measured on the mask it had
            changed.append(obj)
    return changed


def covered_cells(tracker: "Tracker", grid: tuple[int, int], points: torch.Tensor):
    """The (rows, cols) of the cells of a logits grid that (K, 2) model-grid clicks lie in."""
    return click_cells(points, tracker.model.image_size, (tracker.height, tracker.width), grid)
