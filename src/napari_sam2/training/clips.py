"""Training clips: short runs of consecutive frames cut from labelled stacks (time or z), with
up to a few objects to track, as model inputs and ground-truth masks at the model's size.

Frames are normalized exactly as the Tracker normalizes them (`FrameSource.frame_tensor`), so
a model trained here sees at inference the inputs it was trained on.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.frames import IMAGENET_MEAN, IMAGENET_STD, FrameSource
from ..errors import SAM2Error
from .augment import NO_AUGMENTATION, Augmentation, augment_clip

_MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


@dataclass
class LabelledStack:
    """A stack and its proofread label volume, the unit of training data.

    frames: (T, H, W) or (T, H, W, C) array-like; labels: (T, H, W) integers, 0 background,
    one id per object across frames; lineage: daughter id -> mother id (a mother's masklet
    continues as the union of its descendants).
    """

    frames: object
    labels: np.ndarray
    lineage: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = tuple(getattr(self.frames, "shape", ()))
        self.labels = np.asarray(self.labels)
        if self.labels.ndim != 3 or shape[:3] != self.labels.shape:
            raise SAM2Error(
                f"labels of shape {self.labels.shape} do not match frames of shape {shape}; "
                "they need the same (T, H, W)"
            )
        if self.labels.dtype.kind not in "ui":
            raise SAM2Error(f"labels must be integers, got {self.labels.dtype}")

    @property
    def num_frames(self) -> int:
        return self.labels.shape[0]

    def descendants(self, obj_id: int) -> set[int]:
        """The object and every id that descends from it by division."""
        family, grew = {obj_id}, True
        while grew:
            new = {d for d, m in self.lineage.items() if m in family} - family
            family |= new
            grew = bool(new)
        return family


@dataclass
class Clip:
    """A clip ready for the model.

    images: (T, 3, S, S) normalized model inputs in tracking order; masks: (K, T, S, S) bool
    ground truth of the K objects; frames: the stack's frame index of each clip frame;
    object_ids: the K label ids.
    """

    images: torch.Tensor
    masks: torch.Tensor
    frames: list[int]
    object_ids: list[int]

    def to(self, device: torch.device | str) -> "Clip":
        """The same clip with its tensors on `device`."""
        return Clip(self.images.to(device), self.masks.to(device), self.frames, self.object_ids)

    def first(self, count: int) -> "Clip":
        """The clip cut to its first `count` frames (all of them when it has fewer)."""
        return Clip(
            self.images[:count], self.masks[:, :count], self.frames[:count], self.object_ids
        )

    @property
    def present(self) -> torch.Tensor:
        """(K, T) bool: where each object is visible."""
        return self.masks.flatten(2).any(-1)


def resize_mask(mask: np.ndarray, size: int) -> torch.Tensor:
    """A (H, W) bool mask at the model's (size, size), resized as the Tracker resizes masks."""
    resized = torch.from_numpy(np.ascontiguousarray(mask)).float()[None, None]
    if resized.shape[-2:] != (size, size):
        resized = F.interpolate(
            resized, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    return resized[0, 0] >= 0.5


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet standardization: model inputs (T, 3, S, S) -> [0, 1] intensities."""
    return images * _STD + _MEAN


def standardize(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] intensities (T, 3, S, S) -> model inputs."""
    return (images - _MEAN) / _STD


class ClipSampler:
    """Draws random clips from labelled stacks.

    length: frames per clip (shorter stacks give shorter clips); max_objects: objects per
    clip; reverse_prob: chance that a clip runs backwards; min_area: pixels (at the model
    size) an object needs on the first clip frame to be chosen.
    """

    def __init__(
        self,
        stacks: list[LabelledStack],
        image_size: int,
        length: int = 8,
        max_objects: int = 3,
        reverse_prob: float = 0.5,
        augmentation: Augmentation = NO_AUGMENTATION,
        min_area: int = 20,
        channel=None,
    ) -> None:
        if not stacks:
            raise SAM2Error("training needs at least one labelled stack")
        self.stacks = stacks
        self.image_size = image_size
        self.length = length
        self.max_objects = max_objects
        self.reverse_prob = reverse_prob
        self.augmentation = augmentation
        self.min_area = min_area
        # percentiles are computed once per stack, as a Tracker on the whole stack would
        self.sources = [FrameSource(s.frames, image_size, channel) for s in stacks]

    def frame_order(self, stack: LabelledStack, rng: np.random.Generator) -> list[int]:
        """Consecutive frame indices of one clip, reversed with probability reverse_prob."""
        length = min(self.length, stack.num_frames)
        start = int(rng.integers(0, stack.num_frames - length + 1))
        order = list(range(start, start + length))
        if rng.random() < self.reverse_prob:
            order.reverse()
        return order

    def masklet(self, stack: LabelledStack, obj_id: int, order: list[int]) -> np.ndarray:
        """(T, H, W) bool ground truth of one object (with its descendants) on the clip."""
        family = np.array(sorted(stack.descendants(obj_id)))
        return np.isin(stack.labels[order], family)

    def candidates(self, stack: LabelledStack, first_frame: int) -> list[int]:
        """Objects on the clip's first frame: each can be prompted there."""
        ids, counts = np.unique(stack.labels[first_frame], return_counts=True)
        scale = (self.image_size**2) / stack.labels[first_frame].size
        return [
            int(i) for i, n in zip(ids, counts, strict=True) if i and n * scale >= self.min_area
        ]

    def sample(self, rng: np.random.Generator, tries: int = 20) -> Clip:
        """A random clip with 1..max_objects objects visible on its first frame."""
        for _ in range(tries):
            index = int(rng.integers(len(self.stacks)))
            clip = self.clip(index, rng)
            if clip is not None:
                return clip
        raise SAM2Error(
            f"no clip with an object of at least {self.min_area} pixels found in {tries} "
            "tries; are the label volumes empty?"
        )

    def clip(self, index: int, rng: np.random.Generator, order: list[int] | None = None):
        """A clip of stack `index` (random frames unless `order` is given), or None when no
        object is visible on its first frame after augmentation."""
        stack, source = self.stacks[index], self.sources[index]
        order = self.frame_order(stack, rng) if order is None else order
        ids = self.candidates(stack, order[0])
        if not ids:
            return None
        picked = rng.permutation(ids)[: self.max_objects]
        size = self.image_size
        masks = torch.stack(
            [
                torch.stack([resize_mask(m, size) for m in self.masklet(stack, int(i), order)])
                for i in picked
            ]
        )
        images = torch.stack([source.frame_tensor(t) for t in order])
        if self.augmentation != NO_AUGMENTATION:
            unit, masks = augment_clip(to_unit_range(images), masks, self.augmentation, rng)
            images = standardize(unit)
        visible = masks[:, 0].flatten(1).sum(1) >= self.min_area
        if not visible.any():
            return None
        return Clip(images, masks[visible], order, [int(i) for i in picked[visible.numpy()]])
