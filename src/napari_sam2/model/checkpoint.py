"""Loading checkpoints safely and strictly, with errors that say what the file is.

A checkpoint is a pickle, so it is only ever read with `weights_only=True`. Official files hold
`{"model": state_dict}` with our module names as keys; a mismatch is reported with the model
the file most likely belongs to, found by comparing parameter shapes on the meta device.
"""

import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import SAM2Error
from .assemble import parameter_shapes
from .config import CONFIGS, SAM2Config, config_from_dict


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict stored in `path` (`{"model": ...}` or a bare state dict), on the CPU."""
    return read_checkpoint(path)[0]


def checkpoint_path(value: object) -> Path:
    """A checkpoint argument as a Path, or a SAM2Error for anything that names no file."""
    if not isinstance(value, str | os.PathLike) or str(value) == "":
        raise SAM2Error(f"the checkpoint must be a file name, got {value!r}")
    path = Path(os.fsdecode(value)).expanduser()
    # most file systems hold 255 bytes per name: longer fails in os.stat with ENAMETOOLONG
    if max((len(part.encode()) for part in path.parts), default=0) > 255:
        raise SAM2Error(f"the checkpoint name {str(path)[:60]}... is too long for a file system")
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], SAM2Config | None]:
    """The state dict in `path` and the model configuration stored beside it, if any.

    Official files hold weights only (None); files written by training hold
    `{"model": state_dict, "config": plain data}`, and a `.json` of the same name may carry
    the configuration of a bare state dict.
    """
    path = checkpoint_path(path)
    if path.is_dir():
        raise SAM2Error(f"checkpoint {path} is a folder, not a file; give its .pt file")
    if not path.is_file():
        raise SAM2Error(f"checkpoint file not found: {path}")
    if path.stat().st_size == 0:
        raise SAM2Error(f"checkpoint file is empty: {path}; download it again")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise SAM2Error(
            f"checkpoint {path} is truncated or corrupt ({exc}); download it again"
        ) from exc
    except Exception as exc:  # torch raises several types for a non-checkpoint file
        text = str(exc)
        if "central directory" in text or "failed finding" in text or "truncated" in text:
            reason = "is truncated or corrupt; download it again"
        elif "Weights only load failed" in text:
            reason = "holds Python objects other than tensors and is refused for safety"
        else:
            reason = "is not a PyTorch checkpoint"
        raise SAM2Error(f"checkpoint {path} {reason} ({text.splitlines()[0]})") from exc
    state = ckpt.get("model", ckpt) if isinstance(ckpt, Mapping) else None
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise SAM2Error(
            f"checkpoint {path} holds no model weights (expected {{'model': state_dict}})"
        )
    data = ckpt.get("config") if isinstance(ckpt, Mapping) else None
    beside = path.with_suffix(".json")
    if data is None and beside.is_file():
        try:
            data = json.loads(beside.read_text())
        except (OSError, ValueError) as exc:
            raise SAM2Error(f"cannot read the model configuration {beside} ({exc})") from exc
    if data is not None and not isinstance(data, Mapping):
        raise SAM2Error(f"checkpoint {path} stores a model configuration that is not a table")
    config = None
    if data is not None:
        try:
            config = config_from_dict(data)
        except SAM2Error as exc:
            raise SAM2Error(f"checkpoint {path} stores an impossible {exc}") from exc
    return dict(state), config


def _shape_signature(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state.items()}


def likely_model(state: Mapping[str, torch.Tensor]) -> str | None:
    """The official model whose parameter names and shapes best match `state`."""
    found = _shape_signature(state)
    best, best_score = None, 0.0
    for name, config in CONFIGS.items():
        expected = parameter_shapes(config)
        same = sum(1 for k, shape in expected.items() if found.get(k) == shape)
        score = same / max(len(expected), len(found))
        if score > best_score:
            best, best_score = name, score
    return best if best_score > 0.5 else None


def load_checkpoint(
    model: torch.nn.Module, path: str | Path, state: Mapping[str, torch.Tensor] | None = None
) -> None:
    """Load `path` (or its `state` already read) into `model` strictly; a mismatch names the
    model the file fits."""
    state = read_state_dict(path) if state is None else state
    expected = _shape_signature(model.state_dict())
    found = _shape_signature(state)
    if expected != found:
        name = getattr(getattr(model, "config", None), "name", type(model).__name__)
        guess = likely_model(state)
        hint = (
            f"it looks like a {guess} checkpoint; build that model instead"
            if guess and guess != name
            else "it does not match any official SAM 2 model"
        )
        missing = sorted(set(expected) - set(found))
        unexpected = sorted(set(found) - set(expected))
        reshaped = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("other shape", reshaped),
            )
            if keys
        )
        raise SAM2Error(f"checkpoint {path} does not fit model {name}: {hint} ({detail})")
    check_finite(state, path)
    model.load_state_dict(state, strict=True)


def check_finite(state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Raise a SAM2Error if any weight is NaN or infinite: such a model returns NaN logits,
    which read as "no object anywhere" and would give an all-background label volume."""
    bad = [
        key
        for key, value in state.items()
        if value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise SAM2Error(
            f"checkpoint {path} holds NaN or infinite weights ({bad[0]}{more}); it is damaged "
            "or came from a diverged training run: use another file"
        )
