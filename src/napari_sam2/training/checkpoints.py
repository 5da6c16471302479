"""Checkpoints a trained model ships in: `{"model": state_dict, "config": plain data}`, with
the configuration also written beside it as JSON, and the training state used to resume.

Everything stored is tensors, dicts, lists, strings and numbers, so `torch.load(...,
weights_only=True)` reads it and `build_model` loads it like an official checkpoint.
"""

import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from ..errors import SAM2Error
from ..model import SAM2, HieraConfig, SAM2Config, build_model


def config_to_dict(config: SAM2Config) -> dict[str, Any]:
    """The configuration as JSON-ready data (tuples become lists)."""

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        return value

    return plain(asdict(config))


def config_from_dict(data: dict[str, Any]) -> SAM2Config:
    """Inverse of `config_to_dict`; unknown keys are an error (a newer file format)."""

    def build(cls, values: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise SAM2Error(f"unknown model configuration fields: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    values = dict(data)
    values["trunk"] = build(HieraConfig, values["trunk"])
    return build(SAM2Config, values)


def _atomic_save(obj: Any, path: Path) -> None:
    """Write the whole file or nothing: an interrupted save keeps the previous checkpoint."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_model(model: SAM2, path: str | Path, half: bool = False) -> Path:
    """Save `{"model", "config"}` to `path` and the configuration to `path` with `.json`.

    half stores floating-point weights as float16 (half the size; they load back as float32).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu()
        for k, v in model.state_dict().items()
    }
    config = config_to_dict(model.config)
    _atomic_save({"model": state, "config": config}, path)
    path.with_suffix(".json").write_text(json.dumps(config, indent=2) + "\n")
    return path


def read_config(path: str | Path) -> SAM2Config:
    """The configuration stored in a checkpoint written by `save_model` (or in its JSON)."""
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SAM2Error(f"cannot read checkpoint {path}: {exc}") from exc
    data = ckpt.get("config") if isinstance(ckpt, dict) else None
    if data is None and path.with_suffix(".json").is_file():
        data = json.loads(path.with_suffix(".json").read_text())
    if data is None:
        raise SAM2Error(
            f"checkpoint {path} stores no model configuration; build it with "
            "build_model(<model name>, checkpoint=...) instead"
        )
    return config_from_dict(data)


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> SAM2:
    """A model built from the configuration stored in `path`, with its weights, in eval mode."""
    return build_model(read_config(path), checkpoint=path, device=device)


def save_training_state(path: Path, model: SAM2, optimizer, step: int, history: list) -> None:
    """Everything needed to resume training after `step` steps."""
    _atomic_save(
        {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "config": config_to_dict(model.config),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "history": history,
        },
        path,
    )


def load_training_state(path: Path) -> dict[str, Any]:
    """The dict written by `save_training_state`."""
    return torch.load(path, map_location="cpu", weights_only=True)
