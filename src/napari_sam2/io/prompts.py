"""The prompts file: which objects to segment and the clicks, boxes and masks that define them,
so a segmentation can be rerun headless, resumed in napari, or shared.

A JSON document, version 1, in the frames' own pixel coordinates (x to the right, y down):

    {"format": "napari-sam2 prompts", "version": 1,
     "model": "sam2.1_hiera_tiny", "video_axis": "T", "frame_shape": [128, 160],
     "normalization": {"percentiles": [1, 99.8]},
     "objects": [{"id": 1, "name": "cell 1", "frames": {
         "0": {"points": [[52.0, 30.0, 1], [60.5, 41.0, 0]], "box": [30, 12, 70, 50]},
         "7": {"mask": {"size": [128, 160], "counts": [2051, 12, 148, 14, ...]}}}}]}

Points are [x, y, label] with label 1 (object) or 0 (background); a box is [x0, y0, x1, y1];
a mask replaces the other prompts of its frame. Masks are run-length encoded like COCO's
uncompressed RLE but over the mask flattened row by row (C order, unlike COCO's column
order): `counts` alternate runs of 0 and 1 starting with 0, `size` is [H, W].
Everything but `objects` may be null or left out.
"""

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ..errors import SAM2Error
from .atomic import atomic_output

FORMAT = "napari-sam2 prompts"
VERSION = 1


@dataclass
class FramePrompts:
    """One object's prompts on one frame, in frame pixels: points (x, y, label), a box
    (x0, y0, x1, y1), or a mask (H, W) bool that stands alone."""

    points: list[tuple[float, float, int]] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None

    def is_empty(self) -> bool:
        return not self.points and self.box is None and self.mask is None

    def __eq__(self, other) -> bool:
        if not isinstance(other, FramePrompts):
            return NotImplemented
        same_mask = (self.mask is None and other.mask is None) or (
            self.mask is not None
            and other.mask is not None
            and np.array_equal(self.mask, other.mask)
        )
        return self.points == other.points and self.box == other.box and same_mask


@dataclass
class ObjectPrompts:
    """One object: its label value (`id`), a name for people, and its prompts per frame."""

    id: int
    name: str = ""
    frames: dict[int, FramePrompts] = field(default_factory=dict)


@dataclass
class Normalization:
    """How intensities were mapped for the model: contrast limits, or percentiles of the
    stack (at most one of them)."""

    contrast_limits: tuple[float, float] | None = None
    percentiles: tuple[float, float] | None = None


@dataclass
class Prompts:
    """The content of a prompts file."""

    objects: list[ObjectPrompts] = field(default_factory=list)
    model: str | None = None
    video_axis: str | int | None = None
    frame_shape: tuple[int, int] | None = None
    normalization: Normalization | None = None

    def object(self, obj_id: int) -> ObjectPrompts:
        """The object with this id, added if new."""
        for obj in self.objects:
            if obj.id == obj_id:
                return obj
        self.objects.append(ObjectPrompts(obj_id))
        return self.objects[-1]


# -- run-length encoding ---------------------------------------------------------------


def encode_mask(mask: np.ndarray) -> dict[str, list[int]]:
    """A (H, W) mask as {"size": [H, W], "counts": [...]}, runs over the C-order pixels."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise SAM2Error(f"a mask is 2-D (H, W), got shape {mask.shape}")
    flat = mask.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]  # runs start with background
    return {"size": [int(n) for n in mask.shape], "counts": [int(c) for c in counts]}


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """The (H, W) bool mask of an `encode_mask` dictionary."""
    height, width = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    runs = np.arange(len(counts)) % 2 == 1
    return np.repeat(runs, counts).reshape(height, width)


# -- reading and validating -------------------------------------------------------------


class _Fields:
    """Raises SAM2Errors that name the file and the field, e.g.
    "prompts.json: objects[1].frames['3'].points[0]: expected [x, y, label]"."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, message: str) -> NoReturn:
        prefix = f"{self.source}: {where}: " if where else f"{self.source}: "
        raise SAM2Error(prefix + message)

    def number(self, value, where: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(where, f"expected a finite number, got {json.dumps(value)}")
        return float(value)

    def integer(self, value, where: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(where, f"expected an integer >= {minimum}, got {json.dumps(value)}")
        return value

    def pair(self, value, where: str, what: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            self.fail(where, f"expected {what}")
        low, high = (self.number(v, f"{where}[{i}]") for i, v in enumerate(value))
        return low, high

    def keys(self, value, where: str, allowed: tuple[str, ...], what: str) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"expected {what}, got {type(value).__name__}")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            self.fail(where, f"unknown field {unknown[0]!r}; known: {', '.join(allowed)}")
        return value


def parse_prompts(document: Any, source: str = "prompts") -> Prompts:
    """Prompts from a decoded JSON document; a SAM2Error names the first bad field."""
    f = _Fields(source)
    top = f.keys(
        document,
        "",
        (
            "format",
            "version",
            "model",
            "video_axis",
            "frame_shape",
            "normalization",
            "objects",
        ),
        "a JSON object",
    )
    if top.get("format", FORMAT) != FORMAT:
        f.fail("format", f"expected {FORMAT!r}, got {json.dumps(top['format'])}")
    if "version" not in top:
        f.fail("version", f"missing; this reader knows version {VERSION}")
    version = top["version"]
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        f.fail("version", f"{version} is newer than this napari-sam2 reads ({VERSION}); update")
    if version != VERSION:
        f.fail("version", f"expected {VERSION}, got {json.dumps(version)}")
    prompts = Prompts()
    model = top.get("model")
    if model is not None:
        from ..model import MODEL_NAMES

        if model not in MODEL_NAMES:
            f.fail("model", f"unknown model {json.dumps(model)}; known: {', '.join(MODEL_NAMES)}")
        prompts.model = model
    axis = top.get("video_axis")
    if axis is not None:
        valid = (isinstance(axis, str) and len(axis) == 1 and axis.isalpha()) or (
            isinstance(axis, int) and not isinstance(axis, bool) and axis >= 0
        )
        if not valid:
            f.fail("video_axis", f"expected an axis letter or index, got {json.dumps(axis)}")
        prompts.video_axis = axis.upper() if isinstance(axis, str) else axis
    shape = top.get("frame_shape")
    if shape is not None:
        if not isinstance(shape, list) or len(shape) != 2:
            f.fail("frame_shape", "expected [height, width]")
        prompts.frame_shape = tuple(
            f.integer(v, f"frame_shape[{i}]", minimum=1) for i, v in enumerate(shape)
        )
    prompts.normalization = _parse_normalization(f, top.get("normalization"))
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
    return prompts


def _parse_normalization(f: _Fields, value) -> Normalization | None:
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


def _parse_object(f: _Fields, value, where: str, frame_shape) -> ObjectPrompts:
    entry = f.keys(value, where, ("id", "name", "frames"), "an object")
    if "id" not in entry:
        f.fail(f"{where}.id", "missing; expected the object's label value (1, 2, ...)")
    obj = ObjectPrompts(f.integer(entry["id"], f"{where}.id", minimum=1))
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        f.fail(f"{where}.name", f"expected a string, got {json.dumps(name)}")
    obj.name = name or ""
    frames = entry.get("frames", {})
    if not isinstance(frames, dict):
        f.fail(f"{where}.frames", "expected an object of frame index: prompts")
    for key, frame in frames.items():
        here = f"{where}.frames[{key!r}]"
        if not (isinstance(key, str) and key.isdigit()):
            f.fail(here, "frame keys are frame indices: '0', '1', ...")
        obj.frames[int(key)] = _parse_frame(f, frame, here, frame_shape)
    return obj


def _parse_frame(f: _Fields, value, where: str, frame_shape) -> FramePrompts:
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
            f.fail(f"{here}[2]", f"a label is 1 (object) or 0 (background), got {point[2]}")
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
        prompts.mask = _parse_mask(f, mask, f"{where}.mask", frame_shape)
    if not prompts.points and prompts.box is None and prompts.mask is None:
        f.fail(where, "no points, box or mask")
    return prompts


def _parse_mask(f: _Fields, value, where: str, frame_shape) -> np.ndarray:
    entry = f.keys(value, where, ("size", "counts"), '{"size": [H, W], "counts": [...]}')
    size = entry.get("size")
    if not isinstance(size, list) or len(size) != 2:
        f.fail(f"{where}.size", "expected [height, width]")
    height, width = (f.integer(v, f"{where}.size[{i}]", minimum=1) for i, v in enumerate(size))
    if frame_shape is not None and (height, width) != tuple(frame_shape):
        f.fail(f"{where}.size", f"[{height}, {width}] differs from frame_shape {frame_shape}")
    counts = entry.get("counts")
    if not isinstance(counts, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts
    ):
        f.fail(f"{where}.counts", "expected a list of run lengths (integers >= 0)")
    if sum(counts) != height * width:
        f.fail(
            f"{where}.counts",
            f"runs cover {sum(counts)} pixels, the mask has {height} x {width} = {height * width}",
        )
    return decode_mask({"size": [height, width], "counts": counts})


def read_prompts(path: str | Path) -> Prompts:
    """Read and validate a prompts file."""
    path = Path(path)
    if not path.is_file():
        raise SAM2Error(f"prompts file not found: {path}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SAM2Error(f"{path.name}: not a text file ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise SAM2Error(
            f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    return parse_prompts(document, path.name)


# -- writing ---------------------------------------------------------------------------


def prompts_document(prompts: Prompts) -> dict[str, Any]:
    """Prompts as a JSON-ready dictionary (the inverse of `parse_prompts`)."""
    norm = prompts.normalization
    normalization = None
    if norm is not None:
        key = "contrast_limits" if norm.contrast_limits is not None else "percentiles"
        normalization = {key: list(getattr(norm, key))}
    objects = []
    for obj in prompts.objects:
        frames = {}
        for t, frame in sorted(obj.frames.items()):
            entry: dict[str, Any] = {}
            if frame.points:
                entry["points"] = [[x, y, int(label)] for x, y, label in frame.points]
            if frame.box is not None:
                entry["box"] = list(frame.box)
            if frame.mask is not None:
                entry["mask"] = encode_mask(frame.mask)
            frames[str(t)] = entry
        objects.append({"id": obj.id, "name": obj.name, "frames": frames})
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": prompts.model,
        "video_axis": prompts.video_axis,
        "frame_shape": None if prompts.frame_shape is None else list(prompts.frame_shape),
        "normalization": normalization,
        "objects": objects,
    }


def _compact_json(document: dict[str, Any]) -> str:
    text = json.dumps(document, indent=2)
    # keep short lists of numbers ([x, y, label], boxes, sizes, counts) on one line
    return re.sub(r"\[([^\[\]{}\"]*)\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)


def write_prompts(path: str | Path, prompts: Prompts, overwrite: bool = True) -> Path:
    """Write a prompts file (atomically); it replaces an existing one unless overwrite=False."""
    text = _compact_json(prompts_document(prompts)) + "\n"
    with atomic_output(path, overwrite) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)
