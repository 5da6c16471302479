"""Writing a prompts (or session) file: the dataclasses as a JSON document (the inverse of
`prompts_reader.parse_prompts`), short number lists on one line, written atomically."""

import json
import re
from pathlib import Path
from typing import Any

from .atomic import atomic_output
from .mask_runs import encode_mask
from .prompt_data import FORMAT, VERSION, FramePrompts, Prompts


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
        "size_cue": prompts.size_cue,
        "non_overlap": prompts.non_overlap,
        "snap_outlines": prompts.snap_outlines,
        "clicked_region": prompts.clicked_region,
        "exclusive_clicks": prompts.exclusive_clicks,
        "precision": prompts.precision,
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
