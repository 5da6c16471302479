"""The number format the model runs in: float32, bfloat16 autocast, bfloat16 autocast for all
but the SAM heads (the click's part), or for the image encoder alone, where each pays."""

import contextlib

import torch

from ..errors import SAM2Error

PRECISIONS = ("auto", "fast", "float32", "bfloat16", "bfloat16-encoder", "bfloat16-heavy")
RESOLVED = PRECISIONS[2:]

# Below this input size the image encoder is fast in float32 already (the demo model's at
# 256 px: 14 ms either way); from 512 px on a CPU with bfloat16 instructions it is 1.5-1.9x
# faster in bfloat16 (docs/performance.md).
ENCODER_BFLOAT16_FROM = 512


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): elsewhere autocast
    emulates it and is slower than float32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        check = getattr(torch.cpu, name, None)
        if check is not None and check():
            return True
    return False


def resolve_precision(precision: str, device: torch.device, image_size: int) -> str:
    """The precision "auto" or "fast" stands for on this device, or the one asked for.

    "auto" (the `Tracker`'s default) is bfloat16 autocast on CUDA (the reference's fast path)
    and float32 elsewhere, so on a CPU the reference's numbers. "fast" (the widget's default)
    is the same except on a CPU with bfloat16 instructions and an input of at least 512 px:
    there the heavy parts (image encoder, memory attention, memory encoder) run under bfloat16
    autocast and the SAM heads (prompt encoder and mask decoder, all a click on an encoded
    frame runs) in float32, where they are faster on a CPU ("bfloat16-heavy").
    """
    if precision not in PRECISIONS:
        raise SAM2Error(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision not in ("auto", "fast"):
        return precision
    if device.type == "cuda":
        return "bfloat16"
    heavy = image_size >= ENCODER_BFLOAT16_FROM
    if precision == "fast" and device.type == "cpu" and heavy and cpu_has_bfloat16():
        return "bfloat16-heavy"
    return "float32"


# What each resolved precision runs in bfloat16, in one place: (the per-frame steps under
# autocast, the SAM heads leaving it, the encoder's features kept in float32). The feature
# disk cache keys on the encoder's part alone, so precisions that encode alike share it.
_PARTS = {
    "float32": (False, False, False),
    "bfloat16": (True, False, False),
    "bfloat16-encoder": (False, False, True),
    "bfloat16-heavy": (True, True, True),
}


def steps_under_autocast(precision: str) -> bool:
    """Whether a resolved precision runs the per-frame steps under bfloat16 autocast (in
    "bfloat16-heavy" the SAM heads leave it again)."""
    return _PARTS[precision][0]


def float32_heads(precision: str) -> bool:
    """Whether the prompt encoder and mask decoder leave the steps' autocast."""
    return _PARTS[precision][1]


def float32_features(precision: str) -> bool:
    """Whether the image encoder runs under bfloat16 autocast on its own and its features
    are kept in float32 (else it runs as the steps do)."""
    return _PARTS[precision][2]


def feature_cache_suffix(precision: str) -> str:
    """What the feature disk cache adds to its keys for features encoded in `precision`."""
    if float32_features(precision):
        return "-bf16-encoder"
    return "-bf16" if steps_under_autocast(precision) else ""


def autocast(device: torch.device, bfloat16: bool) -> contextlib.AbstractContextManager:
    """The context the model's steps run in."""
    if bfloat16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
