"""The SAM 2 / SAM 2.1 network in pure PyTorch: configs, parts, and `build_model`.

Names are imported on first use, so that `napari_sam2.model.catalogue` (model names, weights
addresses) can be read without importing torch.
"""

import importlib

from .catalogue import CATALOGUE, DEMO_NAME, ModelEntry, model_entry, model_names

# public name -> the module (relative to this package) that defines it
_LAZY = {
    "CONFIGS": ".config",
    "MODEL_NAMES": ".config",
    "HieraConfig": ".config",
    "SAM2Config": ".config",
    "build_from_config": ".build",
    "build_model": ".build",
    "build_model_from_checkpoint": ".build",
    "model_config": ".build",
    "FrameMemory": ".memory_bank",
    "MemoryInputs": ".memory_bank",
    "select_memories": ".memory_bank",
    "SAM2": ".sam2",
    "FrameFeatures": ".sam2",
    "MaskPrediction": ".sam_heads",
}

__all__ = [
    "CATALOGUE",
    "CONFIGS",
    "DEMO_NAME",
    "MODEL_NAMES",
    "SAM2",
    "FrameFeatures",
    "FrameMemory",
    "HieraConfig",
    "MaskPrediction",
    "MemoryInputs",
    "ModelEntry",
    "SAM2Config",
    "build_from_config",
    "build_model",
    "build_model_from_checkpoint",
    "model_config",
    "model_entry",
    "model_names",
    "select_memories",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
