"""The number format the model runs in: float32, or bfloat16 autocast where it pays."""

import contextlib

import torch

from ..errors import SAM2Error

PRECISIONS = ("auto", "float32", "bfloat16")


def uses_bfloat16(precision: str, device: torch.device) -> bool:
    """ "auto" is bfloat16 autocast on CUDA (the reference's fast path) and float32
    elsewhere; "float32" and "bfloat16" are that on any device."""
    if precision not in PRECISIONS:
        raise SAM2Error(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision == "bfloat16" or (precision == "auto" and device.type == "cuda")


def autocast(device: torch.device, bfloat16: bool) -> contextlib.AbstractContextManager:
    """The context the model's steps run in."""
    if bfloat16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
