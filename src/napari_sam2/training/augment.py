"""Clip augmentation: one random flip and affine warp for all frames of a clip, and intensity
jitter, so the model sees each object at new orientations, scales and contrasts.

Images are (T, 3, S, S) in [0, 1] (the frames' normalized intensities); masks are (K, T, S, S)
booleans warped with the same transform by nearest-neighbour sampling.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random transforms; each is drawn once per clip.

    rotation, shear: degrees either way; scale: zoom factor range (> 1 enlarges objects);
    translation: fraction of the side either way; gamma, contrast: factor ranges;
    brightness: offset either way; frame_brightness: extra per-frame offset either way (flicker);
    noise: maximum standard deviation of added Gaussian noise.
    """

    flips: bool = True
    rotation: float = 180.0
    scale: tuple[float, float] = (0.8, 1.25)
    shear: float = 5.0
    translation: float = 0.1
    gamma: tuple[float, float] = (0.7, 1.4)
    contrast: tuple[float, float] = (0.75, 1.3)
    brightness: float = 0.1
    frame_brightness: float = 0.02
    noise: float = 0.03


NO_AUGMENTATION = Augmentation(
    flips=False,
    rotation=0.0,
    scale=(1.0, 1.0),
    shear=0.0,
    translation=0.0,
    gamma=(1.0, 1.0),
    contrast=(1.0, 1.0),
    brightness=0.0,
    frame_brightness=0.0,
    noise=0.0,
)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def random_affine(aug: Augmentation, rng: np.random.Generator) -> torch.Tensor:
    """A (2, 3) matrix mapping output to input coordinates in [-1, 1] (as `affine_grid` wants)."""
    angle = math.radians(rng.uniform(-aug.rotation, aug.rotation))
    shear = math.radians(rng.uniform(-aug.shear, aug.shear))
    zoom = _log_uniform(rng, *aug.scale)
    rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    linear = rotate @ np.array([[1.0, math.tan(shear)], [0.0, 1.0]]) / zoom
    if aug.flips:
        linear = linear @ np.diag([rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0])])
    shift = rng.uniform(-aug.translation, aug.translation, 2) * 2.0
    return torch.tensor(np.concatenate([linear, shift[:, None]], axis=1), dtype=torch.float32)


def warp(images: torch.Tensor, masks: torch.Tensor, theta: torch.Tensor):
    """Apply one affine transform to (T, 3, S, S) images and (K, T, S, S) masks.

    Pixels that come from outside the frame are black, and background in the masks.
    """
    t, _, h, w = images.shape
    grid = F.affine_grid(theta.expand(t, 2, 3), [t, 3, h, w], align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if masks.shape[0]:
        stacked = masks.transpose(0, 1).float()  # frames as the batch, objects as channels
        stacked = F.grid_sample(
            stacked, grid, mode="nearest", padding_mode="zeros", align_corners=False
        )
        masks = stacked.transpose(0, 1) > 0.5
    return images, masks


def jitter_intensity(
    images: torch.Tensor, aug: Augmentation, rng: np.random.Generator
) -> torch.Tensor:
    """Gamma, contrast, brightness (with per-frame flicker) and noise on [0, 1] images."""
    if aug == NO_AUGMENTATION:
        return images
    gamma = _log_uniform(rng, *aug.gamma)
    contrast = _log_uniform(rng, *aug.contrast)
    brightness = rng.uniform(-aug.brightness, aug.brightness)
    flicker = rng.uniform(-aug.frame_brightness, aug.frame_brightness, images.shape[0])
    images = images.clamp(0.0, 1.0) ** gamma
    mean = images.mean()
    images = (images - mean) * contrast + mean + brightness
    images = images + torch.tensor(flicker, dtype=torch.float32).view(-1, 1, 1, 1)
    sigma = rng.uniform(0.0, aug.noise)
    if sigma > 0:
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        # the same noise on the three (replicated gray) channels
        noise = torch.randn(images[:, :1].shape, generator=generator) * sigma
        images = images + noise
    return images.clamp(0.0, 1.0)


def augment_clip(
    images: torch.Tensor, masks: torch.Tensor, aug: Augmentation, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly warp and jitter a clip: (T, 3, S, S) in [0, 1] and (K, T, S, S) masks."""
    if aug == NO_AUGMENTATION:
        return images, masks
    images, masks = warp(images, masks, random_affine(aug, rng))
    return jitter_intensity(images, aug, rng), masks
