"""Small stacks and a tiny model configuration shared by the training tests."""

import numpy as np

from napari_sam2.model import HieraConfig, SAM2Config
from napari_sam2.training import LabelledStack

TINY = SAM2Config(
    "tiny-test",
    HieraConfig(
        embed_dim=8,
        num_heads=1,
        stages=(1, 1, 1, 1),
        global_att_blocks=(2,),
        window_spec=(4, 4, 4, 2),
    ),
    image_size=64,
    d_model=32,
    decoder_mlp_dim=64,
    decoder_heads=2,
    iou_head_hidden_dim=32,
    mem_dim=16,
    memory_attention_layers=1,
    memory_attention_ffn_dim=64,
)


def disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def drifting_discs(num_frames: int = 12, size: int = 64, seed: int = 0) -> LabelledStack:
    """Four bright discs drifting right; disc 4 appears only from frame 6, disc 3 leaves
    after frame 8."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((num_frames, size, size), np.uint16)
    starts = [(16, 12), (46, 14), (30, 30), (14, 44)]
    for t in range(num_frames):
        for i, (cy, cx) in enumerate(starts):
            if (i == 3 and t < 6) or (i == 2 and t > 8):
                continue
            labels[t][disc((size, size), cy, cx + t, 6)] = i + 1
    frames = (labels > 0) * 800.0 + rng.normal(100, 10, labels.shape)
    return LabelledStack(frames.astype(np.uint16), labels)
