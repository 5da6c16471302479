"""The operation log of a session: every edit that changes the tracker or the labels, in
order, as small typed records that write to and read from JSON.

Replaying the records on a new tracker with the same model, frames and device repeats the
same computations in the same order, so it gives the same labels bit for bit.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SAM2Error
from ..io.json_fields import JsonFields, shown
from ..io.prompts import (
    MAX_OBJECT_ID,
    FramePrompts,
    ObjectPrompts,
    Prompts,
    encode_mask,
    frame_document,
    parse_mask,
)
from ..io.prompts_reader import checked_mask_size, parse_frame
from ..io.tracker_prompts import check_prompts_fit

DIRECTIONS = ("forward", "backward", "both")


@dataclass(frozen=True)
class PromptEdit:
    """The clicks and box of one object on one frame became exactly these (none: cleared);
    `clicked_region`: whether the mask was kept to the pieces its clicks lie on;
    `exclusive_clicks`: whether the objects' masks there left out each other's clicks."""

    frame: int
    object: int
    prompts: FramePrompts
    clicked_region: bool = False
    exclusive_clicks: bool = False


@dataclass(frozen=True)
class MaskPrompt:
    """A mask (H, W) bool became the prompt of one object on one frame (`exclusive_clicks`:
    the other objects prompted there were decoded again without its clicks)."""

    frame: int
    object: int
    mask: np.ndarray
    exclusive_clicks: bool = False


@dataclass(frozen=True)
class CandidateChoice:
    """Candidate `index` of the last single click on a frame was chosen (`clicked_region`:
    kept to the pieces the click lies on)."""

    frame: int
    object: int
    index: int
    clicked_region: bool = False


@dataclass(frozen=True)
class Propagation:
    """A propagation run: its direction, start frame, objects (None: all) and the reappear,
    size-cue, non-overlap, snapped- and grown-outline, motion-following and touching-split
    settings; `frames` is None when it ran to its end, else the number of frame steps done
    before it was cancelled (or failed), after which the labels were put back."""

    direction: str
    start_frame: int | None
    objects: tuple[int, ...] | None
    reappear: bool
    frames: int | None = None
    size_cue: bool = False
    non_overlap: bool = False
    snap_outlines: bool = False
    grow_outlines: bool = False
    follow_motion: bool = False
    split_touching: bool = False


@dataclass(frozen=True)
class Paint:
    """Frame `frame` of the label volume as it was after an edit outside the tracker:
    painting or erasing by hand, or (by_hand False) labels another tool wrote."""

    frame: int
    labels: np.ndarray
    by_hand: bool = True


@dataclass(frozen=True)
class RemoveObject:
    """An object forgotten (`exclusive_clicks`: the others prompted on its frames were
    decoded again without its clicks)."""

    object: int
    exclusive_clicks: bool = False


@dataclass(frozen=True)
class Reset:
    """Every object and prompt forgotten."""


Operation = PromptEdit | MaskPrompt | CandidateChoice | Propagation | Paint | RemoveObject | Reset


# -- label frames as runs --------------------------------------------------------------


def encode_label_frame(frame: np.ndarray) -> dict[str, list[int]]:
    """A (H, W) integer label frame as {"size", "values", "counts"}: runs of equal values
    over the C-order pixels."""
    flat = np.asarray(frame).ravel()
    starts = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1])
    counts = np.diff(np.concatenate([starts, [flat.size]]))
    return {
        "size": [int(n) for n in np.shape(frame)],
        "values": flat[starts].astype(np.int64).tolist(),
        "counts": counts.astype(np.int64).tolist(),
    }


def _parse_label_frame(f: JsonFields, value, where: str, frame_shape) -> np.ndarray:
    entry = f.keys(value, where, ("size", "values", "counts"), '{"size", "values", "counts"}')
    height, width = checked_mask_size(f, entry.get("size"), f"{where}.size", frame_shape)
    values, counts = entry.get("values"), entry.get("counts")
    for name, items, top in (("values", values, MAX_OBJECT_ID), ("counts", counts, None)):
        if not isinstance(items, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in items
        ):
            f.fail(f"{where}.{name}", "expected a list of integers >= 0")
        if top is not None and any(v > top for v in items):
            f.fail(f"{where}.{name}", f"a label is at most {top}")
    if len(values) != len(counts):
        f.fail(where, f"{len(values)} values but {len(counts)} counts")
    if sum(counts) != height * width:
        f.fail(f"{where}.counts", f"runs cover {shown(sum(counts))} pixels, not {height * width}")
    dtype = np.uint16 if max(values, default=0) <= np.iinfo(np.uint16).max else np.uint32
    return np.repeat(np.asarray(values, dtype=dtype), counts).reshape(height, width)


# -- JSON ------------------------------------------------------------------------------


def operation_document(op: Operation) -> dict[str, Any]:
    """One operation as a JSON-ready dictionary."""
    if isinstance(op, PromptEdit):
        entry = {"op": "prompts", "frame": op.frame, "object": op.object}
        return entry | frame_document(op.prompts) | _flags(op)
    if isinstance(op, MaskPrompt):
        entry = {"op": "mask", "frame": op.frame, "object": op.object}
        return entry | {"mask": encode_mask(op.mask)} | _flags(op)
    if isinstance(op, CandidateChoice):
        entry = {"op": "candidate", "frame": op.frame, "object": op.object, "index": op.index}
        return entry | _flags(op)
    if isinstance(op, Propagation):
        return {
            "op": "propagate",
            "direction": op.direction,
            "start_frame": op.start_frame,
            "objects": None if op.objects is None else list(op.objects),
            "reappear": op.reappear,
            "frames": op.frames,
            "size_cue": op.size_cue,
            "non_overlap": op.non_overlap,
            "snap_outlines": op.snap_outlines,
        } | _flags(op, RUN_FLAGS)
    if isinstance(op, Paint):
        entry = {"op": "paint", "frame": op.frame, "labels": encode_label_frame(op.labels)}
        return entry if op.by_hand else entry | {"by_hand": False}
    if isinstance(op, RemoveObject):
        return {"op": "remove", "object": op.object} | _flags(op)
    if isinstance(op, Reset):
        return {"op": "reset"}
    raise TypeError(f"not an operation: {op!r}")


_FLAGS = ("clicked_region", "exclusive_clicks")
# a propagation's settings written only where on (added after the others)
RUN_FLAGS = ("grow_outlines", "follow_motion", "split_touching")


def _flags(op: Operation, names: tuple[str, ...] = _FLAGS) -> dict[str, bool]:
    """The settings `names` (the click settings) an operation ran with, written only where
    on: sessions saved before a setting existed ran without it."""
    return {name: True for name in names if getattr(op, name, False)}


_FIELDS = {
    "prompts": ("op", "frame", "object", "points", "box", *_FLAGS),
    "mask": ("op", "frame", "object", "mask", "exclusive_clicks"),
    "candidate": ("op", "frame", "object", "index", "clicked_region"),
    "propagate": (
        "op",
        "direction",
        "start_frame",
        "objects",
        "reappear",
        "frames",
        "size_cue",
        "non_overlap",
        "snap_outlines",
        *RUN_FLAGS,
    ),
    "paint": ("op", "frame", "labels", "by_hand"),
    "remove": ("op", "object", "exclusive_clicks"),
    "reset": ("op",),
}
MAX_FRAME = 1 << 28


def parse_log(entries: list, frame_shape, source: str = "session") -> list[Operation]:
    """Operations from the `log` list of a session document; a SAM2Error names the first bad
    entry, e.g. "session.json: log[4].frame: expected an integer >= 0"."""
    f = JsonFields(source)
    ops = []
    for i, entry in enumerate(entries):
        where = f"log[{i}]"
        kind = entry.get("op") if isinstance(entry, dict) else None
        if kind not in _FIELDS:
            f.fail(f"{where}.op", f"expected one of {', '.join(_FIELDS)}, got {shown(kind)}")
        f.keys(entry, where, _FIELDS[kind], "an operation")
        ops.append(_parse_operation(f, kind, entry, where, frame_shape))
    return ops


def _parse_operation(f: JsonFields, kind: str, entry: dict, where: str, frame_shape) -> Operation:
    def integer(name, minimum=0, maximum=MAX_FRAME):
        if name not in entry:
            f.fail(f"{where}.{name}", "missing")
        return f.integer(entry[name], f"{where}.{name}", minimum, maximum)

    def flag(name: str) -> bool:  # absent: false (written before the flag existed)
        value = entry.get(name, False)
        if not isinstance(value, bool):
            f.fail(f"{where}.{name}", f"expected true or false, got {shown(value)}")
        return value

    if kind == "prompts":
        frame = {k: entry[k] for k in ("points", "box") if k in entry}
        prompts = parse_frame(f, frame, where, frame_shape, allow_empty=True)
        return PromptEdit(
            integer("frame"),
            integer("object", 1, MAX_OBJECT_ID),
            prompts,
            flag("clicked_region"),
            flag("exclusive_clicks"),
        )
    if kind == "mask":
        mask = parse_mask(f, entry.get("mask"), f"{where}.mask", frame_shape)
        return MaskPrompt(
            integer("frame"),
            integer("object", 1, MAX_OBJECT_ID),
            mask,
            flag("exclusive_clicks"),
        )
    if kind == "candidate":
        return CandidateChoice(
            integer("frame"),
            integer("object", 1, MAX_OBJECT_ID),
            integer("index", 0, 2),
            flag("clicked_region"),
        )
    if kind == "propagate":
        direction = entry.get("direction")
        if direction not in DIRECTIONS:
            f.fail(f"{where}.direction", f"expected one of {DIRECTIONS}, got {shown(direction)}")
        start = None if entry.get("start_frame") is None else integer("start_frame")
        objects = entry.get("objects")
        if objects is not None:
            if not isinstance(objects, list) or not objects:
                f.fail(f"{where}.objects", "expected a non-empty list of object ids, or null")
            objects = tuple(
                f.integer(v, f"{where}.objects[{j}]", 1, MAX_OBJECT_ID)
                for j, v in enumerate(objects)
            )
        reappear = entry.get("reappear")
        if not isinstance(reappear, bool):
            f.fail(f"{where}.reappear", f"expected true or false, got {shown(reappear)}")
        frames = None if entry.get("frames") is None else integer("frames")
        size_cue, non_overlap = flag("size_cue"), flag("non_overlap")
        return Propagation(
            direction,
            start,
            objects,
            reappear,
            frames,
            size_cue,
            non_overlap,
            snap_outlines=flag("snap_outlines"),
            **{name: flag(name) for name in RUN_FLAGS},
        )
    if kind == "paint":
        labels = _parse_label_frame(f, entry.get("labels"), f"{where}.labels", frame_shape)
        by_hand = entry.get("by_hand", True)
        if not isinstance(by_hand, bool):
            f.fail(f"{where}.by_hand", f"expected true or false, got {shown(by_hand)}")
        return Paint(integer("frame"), labels, by_hand)
    if kind == "remove":
        return RemoveObject(integer("object", 1, MAX_OBJECT_ID), flag("exclusive_clicks"))
    return Reset()


def check_log_fits(
    ops: list[Operation], num_frames: int, height: int, width: int, source: str = "session"
) -> None:
    """A SAM2Error naming the first operation that does not fit a stack of num_frames
    (height, width) frames: a frame it lacks, a click or box outside, a mask of another size."""
    f = JsonFields(source)
    for i, op in enumerate(ops):
        for name in ("frame", "start_frame"):
            t = getattr(op, name, None)
            if t is not None and t >= num_frames:
                f.fail(f"log[{i}].{name}", f"frame {t} is outside the stack of {num_frames} frames")
        prompts = None
        if isinstance(op, PromptEdit):
            prompts = op.prompts
        elif isinstance(op, MaskPrompt):
            prompts = FramePrompts(mask=op.mask)
        elif isinstance(op, Paint) and op.labels.shape != (height, width):
            f.fail(f"log[{i}].labels", f"size {list(op.labels.shape)} differs from the frames'")
        if prompts is not None:
            single = Prompts(objects=[ObjectPrompts(op.object, frames={op.frame: prompts})])
            try:
                check_prompts_fit(single, num_frames, height, width, source)
            except SAM2Error as exc:  # name the log entry, not the made-up object
                detail = str(exc).split("]: ", 1)[-1].split(": ", 1)[-1]
                raise SAM2Error(f"{source}: log[{i}]: {detail}") from None


def describe(op: Operation) -> str:
    """A few words for messages: "propagate forward", "prompts on frame 3 (object 2)"."""
    if isinstance(op, Propagation):
        return f"propagate {op.direction}"
    if isinstance(op, Reset):
        return "reset"
    if isinstance(op, RemoveObject):
        return f"remove object {op.object}"
    what = {PromptEdit: "prompts", MaskPrompt: "mask", CandidateChoice: "candidate", Paint: "paint"}
    who = f" (object {op.object})" if hasattr(op, "object") else ""
    return f"{what[type(op)]} on frame {op.frame}{who}"


__all__ = [
    "CandidateChoice",
    "MaskPrompt",
    "Operation",
    "Paint",
    "PromptEdit",
    "Propagation",
    "RemoveObject",
    "Reset",
    "check_log_fits",
    "describe",
    "encode_label_frame",
    "operation_document",
    "parse_log",
]
