"""The demo model: a small SAM 2 trained on synthetic microscopy, shipped with the package so
that a fresh install without internet segments something real.

Same architecture family as the official models, with narrow widths, few blocks and a
256-pixel input. Its weights are stored as float16 (about 2 MB) and load back as float32.
It is a demonstration model: official checkpoints are for real data.
"""

from dataclasses import replace
from importlib import resources
from pathlib import Path

import torch

from ..errors import SAM2Error
from .catalogue import DEMO_NAME
from .checkpoint import read_state_dict
from .config import HieraConfig, SAM2Config

DEMO_CONFIG = SAM2Config(
    name=DEMO_NAME,
    trunk=HieraConfig(
        embed_dim=16,
        num_heads=1,
        stages=(1, 1, 2, 1),
        # blocks 0 | 1 | 2 3 | 4: the last block of the third stage attends globally
        global_att_blocks=(3,),
        window_pos_embed_bkg_spatial_size=(7, 7),
        window_spec=(8, 4, 8, 4),
    ),
    image_size=256,
    d_model=64,
    decoder_mlp_dim=256,
    decoder_heads=4,
    iou_head_hidden_dim=64,
    mem_dim=32,
    memory_attention_layers=2,
    memory_attention_ffn_dim=256,
    # measured on held-out and independently generated time-lapses (docs/demo_model.md):
    # this small model lets a moving cell go where SAM 2's memory selection is kept
    prompt_memory_reach=6,
    remember_absent=False,
)


def with_demo_memory_selection(config: SAM2Config) -> SAM2Config:
    """`config` with the demo model's memory selection (checkpoints of its architecture
    written before 2026-12-03 store SAM 2's)."""
    return replace(
        config,
        prompt_memory_reach=DEMO_CONFIG.prompt_memory_reach,
        remember_absent=DEMO_CONFIG.remember_absent,
    )


_WEIGHTS_PACKAGE = "napari_sam2.model.weights_demo"
_WEIGHTS_FILE = "demo.pt"


def demo_weights_path() -> Path:
    """The shipped weights file (inside the installed package)."""
    path = Path(str(resources.files(_WEIGHTS_PACKAGE).joinpath(_WEIGHTS_FILE)))
    if not path.is_file():
        raise SAM2Error(
            f"the demo model's weights are missing from the installation ({path}); "
            "reinstall napari-sam2 or run scripts/train_demo.py"
        )
    return path


def load_demo_state() -> dict[str, torch.Tensor]:
    """The demo weights as float32 tensors."""
    state = read_state_dict(demo_weights_path())
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
