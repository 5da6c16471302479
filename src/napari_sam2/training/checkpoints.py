"""Checkpoints a trained model ships in: `{"model": state_dict, "config": plain data}`, with
the configuration also written beside it as JSON, and the training state used to resume.

Everything stored is tensors, dicts, lists, strings and numbers, so `torch.load(...,
weights_only=True)` reads it and `build_model` loads it like an official checkpoint.
"""

import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import SAM2Error
from ..model import SAM2, SAM2Config, build_model_from_checkpoint
from ..model.checkpoint import read_checkpoint
from ..model.config import config_to_dict


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
    _, config = read_checkpoint(path)
    if config is None:
        raise SAM2Error(
            f"checkpoint {path} stores no model configuration; build it with "
            "build_model(<model name>, checkpoint=...) instead"
        )
    return config


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> SAM2:
    """A model built from the configuration stored in `path`, with its weights, in eval mode
    (an official checkpoint, which stores none, loads as the model it fits)."""
    return build_model_from_checkpoint(path, device=device)


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
