"""The prompts file: which objects to segment and the clicks, boxes and masks that define them,
so a segmentation can be rerun headless, resumed in napari, or shared. A session file is the
same document with the log of what the user did (see `napari_sam2.session`).

A JSON document, version 2, in the frames' own pixel coordinates (x to the right, y down):

    {"format": "napari-sam2 prompts", "version": 2,
     "model": "sam2.1_hiera_tiny", "video_axis": "T", "frame_shape": [128, 160],
     "normalization": {"percentiles": [1, 99.8]},
     "objects": [{"id": 1, "name": "cell 1", "frames": {
         "0": {"points": [[52.0, 30.0, 1], [60.5, 41.0, 0]], "box": [30, 12, 70, 50]},
         "7": {"mask": {"size": [128, 160], "counts": [2051, 12, 148, 14, ...]}}}}]}

Points are [x, y, label] with label 1 (object) or 0 (background); a box is [x0, y0, x1, y1];
a mask replaces the other prompts of its frame. Masks are run-length encoded like COCO's
uncompressed RLE but over the mask flattened row by row (C order, unlike COCO's column
order): `counts` alternate runs of 0 and 1 starting with 0, `size` is [H, W].
Everything but `objects` may be null or left out. Version 2 adds, all optional: `checkpoint`
(the model file a session used), `image_size`, `fixed` (the index of every other leading
axis), `num_frames`, `reappear`, per object `colour` ("#rrggbb") and `parent`, `lineage`
({"daughter id": parent id}), `log` (a session's operations, read by
`napari_sam2.session`) and `labels_sha256` (of the labels the session held when saved).
Version 1 files read as version 2 without these.
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
VERSION = 2
VERSIONS = (1, 2)
# the largest label a label file holds (uint32); ids beyond it would wrap around
MAX_OBJECT_ID = 2**32 - 1
# a frame (or mask) larger than this is a corrupt file, not a microscope image
MAX_FRAME_SIDE = 1 << 16
MAX_FRAME_PIXELS = 1 << 28
MAX_FILE_BYTES = 1 << 30


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
    colour: str | None = None
    parent: int | None = None


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
    checkpoint: str | None = None
    image_size: int | None = None
    fixed: tuple[int, ...] | None = None
    num_frames: int | None = None
    reappear: bool | None = None
    lineage: dict[int, int] = field(default_factory=dict)
    # SHA-256 of the label volume the session held when saved (C-order bytes, its dtype)
    labels_sha256: str | None = None
    # a session's operations as JSON values (checked by `napari_sam2.session.parse_log`);
    # None: no log, only the prompts above
    log: list | None = None

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
    height, width = (int(n) for n in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any() or int(counts.sum()) != height * width:
        raise SAM2Error(f"the mask's runs do not cover its {height} x {width} pixels exactly")
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
        try:
            # a huge JSON integer overflows float(): as absurd as inf
            number = None if isinstance(value, bool) else float(value)
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is None or not isinstance(value, int | float) or not math.isfinite(number):
            self.fail(where, f"expected a finite number, got {_shown(value)}")
        return number

    def integer(self, value, where: str, minimum: int = 0, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(where, f"expected an integer >= {minimum}, got {_shown(value)}")
        if maximum is not None and value > maximum:
            self.fail(where, f"{_shown(value)} is larger than the largest allowed, {maximum}")
        return value

    def frame_index(self, key, where: str) -> int:
        """A frame key: ASCII digits without leading zeros ("٣" or "03" would alias "3")."""
        if not (
            isinstance(key, str)
            and key.isascii()
            and key.isdigit()
            and (key == "0" or not key.startswith("0"))
            and len(key) <= 18
        ):
            self.fail(where, "frame keys are frame indices: '0', '1', ... (ASCII digits)")
        return int(key)

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


def _shown(value) -> str:
    """A JSON value for a message, cut short (a 4,000-digit number is not worth quoting)."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


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
    "reappear",
    "objects",
    "lineage",
    "log",
    "labels_sha256",
)
_V1_FIELDS = ("format", "version", "model", "video_axis", "frame_shape", "normalization", "objects")


def parse_prompts(document: Any, source: str = "prompts") -> Prompts:
    """Prompts from a decoded JSON document (version 1 or 2); a SAM2Error names the first
    bad field."""
    f = _Fields(source)
    if not isinstance(document, dict):
        f.fail("", f"expected a JSON object, got {type(document).__name__}")
    version = document.get("version")
    if "version" not in document:
        f.fail("version", f"missing; this reader knows versions {VERSIONS}")
    if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
        f.fail(
            "version", f"{_shown(version)} is newer than this napari-sam2 reads ({VERSION}); update"
        )
    if version not in VERSIONS or isinstance(version, bool):
        f.fail("version", f"expected one of {', '.join(map(str, VERSIONS))}, got {_shown(version)}")
    allowed = _TOP_FIELDS if version == 2 else _V1_FIELDS
    top = f.keys(document, "", allowed, "a JSON object")
    if top.get("format", FORMAT) != FORMAT:
        f.fail("format", f"expected {FORMAT!r}, got {_shown(top['format'])}")
    prompts = Prompts()
    model = top.get("model")
    if model is not None:
        from ..model.catalogue import is_known_model, model_names

        if not is_known_model(model):
            f.fail("model", f"unknown model {_shown(model)}; known: {', '.join(model_names())}")
        prompts.model = model
    checkpoint = top.get("checkpoint")
    if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint):
        f.fail("checkpoint", f"expected the path of a checkpoint file, got {_shown(checkpoint)}")
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
            f.fail("video_axis", f"expected an axis letter or index, got {_shown(axis)}")
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
    reappear = top.get("reappear")
    if reappear is not None and not isinstance(reappear, bool):
        f.fail("reappear", f"expected true or false, got {_shown(reappear)}")
    prompts.reappear = reappear
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
        f.fail("labels_sha256", f"expected 64 hexadecimal digits, got {_shown(digest)}")
    prompts.labels_sha256 = digest
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


_SHA256 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}", re.ASCII)


def _parse_object(f: _Fields, value, where: str, frame_shape) -> ObjectPrompts:
    entry = f.keys(value, where, ("id", "name", "colour", "parent", "frames"), "an object")
    if "id" not in entry:
        f.fail(f"{where}.id", "missing; expected the object's label value (1, 2, ...)")
    obj = ObjectPrompts(f.integer(entry["id"], f"{where}.id", minimum=1, maximum=MAX_OBJECT_ID))
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        f.fail(f"{where}.name", f"expected a string, got {_shown(name)}")
    obj.name = name or ""
    colour = entry.get("colour")
    if colour is not None and not (isinstance(colour, str) and _COLOUR.fullmatch(colour)):
        f.fail(f"{where}.colour", f'expected "#rrggbb", got {_shown(colour)}')
    obj.colour = colour
    if entry.get("parent") is not None:
        obj.parent = f.integer(entry["parent"], f"{where}.parent", 1, MAX_OBJECT_ID)
    frames = entry.get("frames", {})
    if not isinstance(frames, dict):
        f.fail(f"{where}.frames", "expected an object of frame index: prompts")
    for key, frame in frames.items():
        here = f"{where}.frames[{key!r}]"
        obj.frames[f.frame_index(key, here)] = _parse_frame(f, frame, here, frame_shape)
    return obj


def _parse_lineage(f: _Fields, value, objects: list[ObjectPrompts]) -> dict[int, int]:
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


def _parse_frame(
    f: _Fields, value, where: str, frame_shape, allow_empty: bool = False
) -> FramePrompts:
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
            f.fail(f"{here}[2]", f"a label is 1 (object) or 0 (background), got {_shown(point[2])}")
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


def parse_mask(f: _Fields, value, where: str, frame_shape) -> np.ndarray:
    """A run-length encoded mask, its size checked against the frame shape and its runs'
    sum before anything is allocated."""
    entry = f.keys(value, where, ("size", "counts"), '{"size": [H, W], "counts": [...]}')
    height, width = _checked_size(f, entry.get("size"), f"{where}.size", frame_shape)
    counts = entry.get("counts")
    if not isinstance(counts, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts
    ):
        f.fail(f"{where}.counts", "expected a list of run lengths (integers >= 0)")
    if sum(counts) != height * width:
        f.fail(
            f"{where}.counts",
            f"runs cover {_shown(sum(counts))} pixels, the mask has {height} x {width} = "
            f"{height * width}",
        )
    return decode_mask({"size": [height, width], "counts": counts})


def _checked_size(f: _Fields, size, where: str, frame_shape) -> tuple[int, int]:
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


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: a repeated key (the later would silently win)
    is an error."""
    document = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(key)
        document[key] = value
    return document


class _DuplicateKey(ValueError):
    pass


def loads_document(text: str, source: str) -> Any:
    """Decode a JSON document strictly: no repeated keys, no deep nesting, no NaN; every
    failure a SAM2Error naming `source`."""

    def constant(name: str):
        raise SAM2Error(f"{source}: {name} is not a number JSON allows")

    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=constant)
    except _DuplicateKey as exc:
        raise SAM2Error(f"{source}: the key {str(exc)!r} appears twice in one object") from exc
    except json.JSONDecodeError as exc:
        raise SAM2Error(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except RecursionError as exc:
        raise SAM2Error(f"{source}: JSON nested too deeply to be a prompts file") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise SAM2Error(f"{source}: not a usable JSON document ({exc})") from exc


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


# -- writing ---------------------------------------------------------------------------


def frame_document(frame: FramePrompts) -> dict[str, Any]:
    """One frame's prompts as a JSON-ready dictionary (points, box, mask; the empty ones left
    out)."""
    entry: dict[str, Any] = {}
    if frame.points:
        entry["points"] = [[x, y, int(label)] for x, y, label in frame.points]
    if frame.box is not None:
        entry["box"] = list(frame.box)
    if frame.mask is not None:
        entry["mask"] = encode_mask(frame.mask)
    return entry


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
            frames[str(t)] = frame_document(frame)
        objects.append(
            {
                "id": obj.id,
                "name": obj.name,
                "colour": obj.colour,
                "parent": obj.parent,
                "frames": frames,
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": prompts.model,
        "checkpoint": prompts.checkpoint,
        "image_size": prompts.image_size,
        "video_axis": prompts.video_axis,
        "fixed": None if prompts.fixed is None else list(prompts.fixed),
        "num_frames": prompts.num_frames,
        "frame_shape": None if prompts.frame_shape is None else list(prompts.frame_shape),
        "normalization": normalization,
        "reappear": prompts.reappear,
        "objects": objects,
        "lineage": {str(d): p for d, p in sorted(prompts.lineage.items())},
        "log": prompts.log,
        "labels_sha256": prompts.labels_sha256,
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
