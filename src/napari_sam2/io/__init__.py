"""Files: image stacks in (TIFF, .npy, zarr), label volumes out (TIFF), prompts both ways
(JSON). Used by the CLI and the widget; the engine never touches a file."""

from .atomic import atomic_output, check_writable
from .label_files import read_labels, write_labels
from .prompts import (
    FramePrompts,
    Normalization,
    ObjectPrompts,
    Prompts,
    decode_mask,
    encode_mask,
    parse_prompts,
    prompts_document,
    read_prompts,
    write_prompts,
)
from .stacks import Stack, label_axes, open_stack, unchosen_axes, video_frames
from .tracker_prompts import apply_frame, apply_prompts, check_prompts_fit, prompts_from_tracker

__all__ = [
    "FramePrompts",
    "Normalization",
    "ObjectPrompts",
    "Prompts",
    "Stack",
    "apply_frame",
    "apply_prompts",
    "atomic_output",
    "check_prompts_fit",
    "check_writable",
    "decode_mask",
    "encode_mask",
    "label_axes",
    "open_stack",
    "parse_prompts",
    "prompts_document",
    "prompts_from_tracker",
    "read_labels",
    "read_prompts",
    "unchosen_axes",
    "video_frames",
    "write_labels",
    "write_prompts",
]
