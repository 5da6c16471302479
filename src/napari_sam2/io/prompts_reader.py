"""Reading a prompts (or session) file: every field checked, version 1 read as version 2, and a
SAM2Error naming the file and the first bad field."""

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SAM2Error
from .json_fields import JsonFields, loads_document, shown
from .mask_runs import decode_mask
from .prompt_data import (
    FORMAT,
    MAX_FILE_BYTES,
    MAX_FRAME_PIXELS,
    MAX_FRAME_SIDE,
    MAX_OBJECT_ID,
    SESSION_PRECISIONS,
    SETTING_CHOICES,
    VERSION,
    VERSIONS,
    FramePrompts,
    Normalization,
    ObjectPrompts,
    Prompts,
)

_TOP_FIELDS = (
    "format",
    "version",
    "model",
    "checkpoint",
    "image_size",
    "video_axis",
    "fixed",
    "num_frames",
    "frame_shape",
    "normalization",
    *SETTING_CHOICES,
    "precision",
    "objects",
    "lineage",
    "log",
    "labels_sha256",
)
_V1_FIELDS = ("format", "version", "model", "video_axis", "frame_shape", "normalization", "objects")


def parse_prompts(document: Any, source: str = "prompts") -> Prompts:
    """Prompts from a decoded JSON document (version 1 or 2); a SAM2Error names the first
    bad field."""
    f = JsonFields(source)
    if not isinstance(document, dict):
        f.fail("", f"expected a JSON object, got {type(document).__name__}")
    version = document.get("version")
    if "version" not in document:
        f.fail("version", f"missing; this reader knows versions {VERSIONS}")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        f.fail(
            "version", f"{shown(version)} is newer than this napari-sam2 reads ({VERSION}); update"
        )
    if version not in VERSIONS or isinstance(version, bool):
        f.fail("version", f"expected one of {', '.join(map(str, VERSIONS))}, got {shown(version)}")
    allowed = _TOP_FIELDS if version == 2 else _V1_FIELDS
    top = f.keys(document, "", allowed, "a JSON object")
    if top.get("format", FORMAT) != FORMAT:
        f.fail("format", f"expected {FORMAT!r}, got {shown(top['format'])}")
    prompts = Prompts()
    model = top.get("model")
    if model is not None:
        from ..model.catalogue import is_known_model, model_names

        if not is_known_model(model):
            f.fail("model", f"unknown model {shown(model)}; known: {', '.join(model_names())}")
        prompts.model = model
    checkpoint = top.get("checkpoint")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint):
        f.fail("checkpoint", f"expected the path of a checkpoint file, got {shown(checkpoint)}")
    prompts.checkpoint = checkpoint
    if top.get("image_size") is not None:
        size = f.integer(top["image_size"], "image_size", minimum=32, maximum=8192)
        if size % 32:
            f.fail("image_size", f"a model input size is a multiple of 32, got {size}")
        prompts.image_size = size
    axis = top.get("video_axis")
    if axis is not None:
        valid = (
            isinstance(axis, str) and len(axis) == 1 and axis.isascii() and axis.isalpha()
        ) or (isinstance(axis, int) and not isinstance(axis, bool) and 0 <= axis < 32)
        if not valid:
            f.fail("video_axis", f"expected an axis letter or index, got {shown(axis)}")
        prompts.video_axis = axis.upper() if isinstance(axis, str) else axis
    fixed = top.get("fixed")
    if fixed is not None:
        if not isinstance(fixed, list) or len(fixed) > 32:
            f.fail("fixed", "expected a list of axis indices")
        prompts.fixed = tuple(
            f.integer(v, f"fixed[{i}]", maximum=MAX_FRAME_PIXELS) for i, v in enumerate(fixed)
        )
    if top.get("num_frames") is not None:
        prompts.num_frames = f.integer(top["num_frames"], "num_frames", 1, MAX_FRAME_PIXELS)
    shape = top.get("frame_shape")
    if shape is not None:
        if not isinstance(shape, list) or len(shape) != 2:
            f.fail("frame_shape", "expected [height, width]")
        prompts.frame_shape = tuple(
            f.integer(v, f"frame_shape[{i}]", minimum=1, maximum=MAX_FRAME_SIDE)
            for i, v in enumerate(shape)
        )
        if prompts.frame_shape[0] * prompts.frame_shape[1] > MAX_FRAME_PIXELS:
            f.fail("frame_shape", f"{list(prompts.frame_shape)} is larger than any frame read")
    prompts.normalization = _parse_normalization(f, top.get("normalization"))
    for choice in SETTING_CHOICES:
        value = top.get(choice)
        if value is not None and not isinstance(value, bool):
            f.fail(choice, f"expected true or false, got {shown(value)}")
        setattr(prompts, choice, value)
    precision = top.get("precision")
    if precision is not None and precision not in SESSION_PRECISIONS:
        expected = ", ".join(SESSION_PRECISIONS)
        f.fail("precision", f"expected one of {expected}, got {shown(precision)}")
    prompts.precision = precision
    if "objects" not in top:
        f.fail("objects", "missing; expected a list of objects")
    if not isinstance(top["objects"], list):
        f.fail("objects", "expected a list of objects")
    seen = set()
    for i, entry in enumerate(top["objects"]):
        obj = _parse_object(f, entry, f"objects[{i}]", prompts.frame_shape)
        if obj.id in seen:
            f.fail(f"objects[{i}].id", f"{obj.id} is used by an earlier object")
        seen.add(obj.id)
        prompts.objects.append(obj)
    prompts.lineage = _parse_lineage(f, top.get("lineage"), prompts.objects)
    log = top.get("log")
    if log is not None and not isinstance(log, list):
        f.fail("log", "expected a list of operations")
    prompts.log = log
    digest = top.get("labels_sha256")
    if digest is not None and not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
        f.fail("labels_sha256", f"expected 64 hexadecimal digits, got {shown(digest)}")
    prompts.labels_sha256 = digest
    return prompts


def _parse_normalization(f: JsonFields, value) -> Normalization | None:
    if value is None:
        return None
    where = "normalization"
    entry = f.keys(value, where, ("contrast_limits", "percentiles"), "an object")
    given = [k for k in ("contrast_limits", "percentiles") if entry.get(k) is not None]
    if len(given) != 1:
        f.fail(where, "expected exactly one of contrast_limits, percentiles")
    key = given[0]
    low, high = f.pair(entry[key], f"{where}.{key}", "[low, high]")
    if not low < high:
        f.fail(f"{where}.{key}", f"expected low < high, got [{low:g}, {high:g}]")
    if key == "percentiles" and not 0 <= low < high <= 100:
        f.fail(f"{where}.{key}", "percentiles are between 0 and 100")
    return Normalization(**{key: (low, high)})


_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}", re.ASCII)


def _parse_object(f: JsonFields, value, where: str, frame_shape) -> ObjectPrompts:
    entry = f.keys(value, where, ("id", "name", "colour", "parent", "frames"), "an object")
    if "id" not in entry:
        f.fail(f"{where}.id", "missing; expected the object's label value (1, 2, ...)")
    obj = ObjectPrompts(f.integer(entry["id"], f"{where}.id", minimum=1, maximum=MAX_OBJECT_ID))
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        f.fail(f"{where}.name", f"expected a string, got {shown(name)}")
    obj.name = name or ""
    colour = entry.get("colour")
    if colour is not None and not (isinstance(colour, str) and _COLOUR.fullmatch(colour)):
        f.fail(f"{where}.colour", f'expected "#rrggbb", got {shown(colour)}')
    obj.colour = colour
    if entry.get("parent") is not None:
        obj.parent = f.integer(entry["parent"], f"{where}.parent", 1, MAX_OBJECT_ID)
    frames = entry.get("frames", {})
    if not isinstance(frames, dict):
        f.fail(f"{where}.frames", "expected an object of frame index: prompts")
    for key, frame in frames.items():
        here = f"{where}.frames[{key!r}]"
        obj.frames[f.frame_index(key, here)] = parse_frame(f, frame, here, frame_shape)
    return obj


def _parse_lineage(f: JsonFields, value, objects: list[ObjectPrompts]) -> dict[int, int]:
    """{"daughter": parent}, merged with the objects' `parent` fields; no object is its own
    ancestor."""
    lineage = {obj.id: obj.parent for obj in objects if obj.parent is not None}
    if value is not None:
        if not isinstance(value, dict):
            f.fail("lineage", 'expected {"daughter id": parent id, ...}')
        for key, parent in value.items():
            here = f"lineage[{key!r}]"
            daughter = f.frame_index(key, here)  # the same canonical digits as frame keys
            if not 1 <= daughter <= MAX_OBJECT_ID:
                f.fail(here, f"object ids are 1 to {MAX_OBJECT_ID}")
            parent = f.integer(parent, here, minimum=1, maximum=MAX_OBJECT_ID)
            if lineage.get(daughter, parent) != parent:
                f.fail(here, f"differs from object {daughter}'s parent {lineage[daughter]}")
            lineage[daughter] = parent
    for daughter in lineage:
        ancestor, steps = daughter, 0
        while ancestor in lineage:
            ancestor, steps = lineage[ancestor], steps + 1
            if ancestor == daughter or steps > len(lineage):
                f.fail("lineage", f"object {daughter} is its own ancestor")
    return lineage


def parse_frame(
    f: JsonFields,
    value: Any,
    where: str,
    frame_shape: Sequence[int] | None,
    allow_empty: bool = False,
) -> FramePrompts:
    """One frame's points, box or mask (`where` names it in errors); a mask is checked
    against `frame_shape` when known. An entry with none of them fails unless `allow_empty`."""
    entry = f.keys(value, where, ("points", "box", "mask"), "an object")
    prompts = FramePrompts()
    points = entry.get("points") or []
    if not isinstance(points, list):
        f.fail(f"{where}.points", "expected a list of [x, y, label]")
    for i, point in enumerate(points):
        here = f"{where}.points[{i}]"
        if not isinstance(point, list) or len(point) != 3:
            f.fail(here, "expected [x, y, label]")
        x, y = f.number(point[0], f"{here}[0]"), f.number(point[1], f"{here}[1]")
        if point[2] not in (0, 1) or isinstance(point[2], bool | float):
            f.fail(f"{here}[2]", f"a label is 1 (object) or 0 (background), got {shown(point[2])}")
        prompts.points.append((x, y, int(point[2])))
    box = entry.get("box")
    if box is not None:
        if not isinstance(box, list) or len(box) != 4:
            f.fail(f"{where}.box", "expected [x0, y0, x1, y1]")
        prompts.box = tuple(f.number(v, f"{where}.box[{i}]") for i, v in enumerate(box))
    mask = entry.get("mask")
    if mask is not None:
        if prompts.points or prompts.box is not None:
            f.fail(f"{where}.mask", "a mask replaces points and boxes; give it on its own")
        prompts.mask = parse_mask(f, mask, f"{where}.mask", frame_shape)
    if prompts.is_empty() and not allow_empty:
        f.fail(where, "no points, box or mask")
    return prompts


def parse_mask(
    f: JsonFields, value: Any, where: str, frame_shape: Sequence[int] | None
) -> np.ndarray:
    """A run-length encoded mask, its size checked against the frame shape and its runs'
    sum before anything is allocated."""
    entry = f.keys(value, where, ("size", "counts"), '{"size": [H, W], "counts": [...]}')
    height, width = checked_mask_size(f, entry.get("size"), f"{where}.size", frame_shape)
    counts = entry.get("counts")
    if not isinstance(counts, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts
    ):
        f.fail(f"{where}.counts", "expected a list of run lengths (integers >= 0)")
    if sum(counts) != height * width:
        f.fail(
            f"{where}.counts",
            f"runs cover {shown(sum(counts))} pixels, the mask has {height} x {width} = "
            f"{height * width}",
        )
    return decode_mask({"size": [height, width], "counts": counts})


def checked_mask_size(
    f: JsonFields, size: Any, where: str, frame_shape: Sequence[int] | None
) -> tuple[int, int]:
    """A mask's [height, width], within the limits of any frame and equal to `frame_shape`
    when that is known."""
    if not isinstance(size, list) or len(size) != 2:
        f.fail(where, "expected [height, width]")
    height, width = (
        f.integer(v, f"{where}[{i}]", minimum=1, maximum=MAX_FRAME_SIDE) for i, v in enumerate(size)
    )
    if frame_shape is not None and (height, width) != tuple(frame_shape):
        f.fail(where, f"[{height}, {width}] differs from frame_shape {list(frame_shape)}")
    if height * width > MAX_FRAME_PIXELS:
        f.fail(where, f"[{height}, {width}] is larger than any frame read")
    return height, width


def read_prompts(path: str | Path) -> Prompts:
    """Read and validate a prompts (or session) file."""
    path = Path(path)
    if not path.is_file():
        raise SAM2Error(f"prompts file not found: {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise SAM2Error(
            f"{path.name}: {path.stat().st_size / 2**30:.1f} GiB is too large for a prompts file"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte order mark is not JSON
    except UnicodeDecodeError as exc:
        raise SAM2Error(f"{path.name}: not a text file ({exc.reason})") from exc
    except OSError as exc:
        raise SAM2Error(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    return parse_prompts(loads_document(text, path.name), path.name)
