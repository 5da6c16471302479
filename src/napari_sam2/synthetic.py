"""Generated microscopy-like stacks with ground truth, from a seed.

Bright round cells move over a noisy, slowly bleaching background. Used by the example, the
tests, and (later) the sample data; real data needs no such thing.
"""

import numpy as np


def moving_cells(
    num_frames: int = 6,
    height: int = 96,
    width: int = 128,
    centers=((30, 40), (60, 90)),
    radius: float = 12.0,
    velocity=(2.0, 3.0),
    dtype=np.uint16,
    bleaching: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(frames (T, H, W), ground-truth labels (T, H, W)); cell i has label i + 1.

    Cell i starts at centers[i] (y, x) and moves by velocity (dy, dx) per frame, with dx
    mirrored for odd i, so cells cross paths. bleaching: fraction of signal lost per frame.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    frames = np.zeros((num_frames, height, width), dtype=np.float64)
    labels = np.zeros((num_frames, height, width), dtype=np.uint16)
    for t in range(num_frames):
        signal = 1000.0 * (1.0 - bleaching) ** t
        for i, (cy, cx) in enumerate(centers):
            y, x = cy + velocity[0] * t, cx + velocity[1] * t * (-1) ** i
            inside = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
            frames[t][inside] += signal
            labels[t][inside] = i + 1
    frames += rng.normal(200.0, 30.0, frames.shape)
    if np.dtype(dtype).kind in "ui":
        frames = np.clip(frames, 0, np.iinfo(dtype).max)
    return frames.astype(dtype), labels
