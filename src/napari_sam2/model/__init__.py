"""The SAM 2 / SAM 2.1 network in pure PyTorch: configs, parts, and `build_model`."""

from .build import build_from_config, build_model, build_model_from_checkpoint
from .config import CONFIGS, MODEL_NAMES, HieraConfig, SAM2Config
from .memory_bank import FrameMemory, MemoryInputs, select_memories
from .sam2 import SAM2, FrameFeatures, MaskPrediction

__all__ = [
    "CONFIGS",
    "MODEL_NAMES",
    "SAM2",
    "FrameFeatures",
    "FrameMemory",
    "HieraConfig",
    "MaskPrediction",
    "MemoryInputs",
    "SAM2Config",
    "build_from_config",
    "build_model",
    "build_model_from_checkpoint",
    "select_memories",
]
