"""Clip sampling: lengths, time reversal, objects visible on the first frame, ground truth
and model inputs equal to what the Tracker sees, lineage, and augmentation."""

import numpy as np
import pytest
import torch

from napari_sam2.engine import FrameSource
from napari_sam2.errors import SAM2Error
from napari_sam2.training import NO_AUGMENTATION, Augmentation, ClipSampler, LabelledStack
from napari_sam2.training.augment import augment_clip
from training_helpers import drifting_discs


def test_clips_are_consecutive_frames_of_the_requested_length_reversed_half_the_time():
    stack = drifting_discs(12)
    sampler = ClipSampler([stack], 64, length=8, max_objects=3)
    directions = []
    for seed in range(40):
        clip = sampler.sample(np.random.default_rng(seed))
        steps = np.diff(clip.frames)
        assert len(clip.frames) == 8
        assert set(steps) in ({1}, {-1})
        directions.append(steps[0])
        assert clip.images.shape == (8, 3, 64, 64)
        assert clip.masks.shape == (len(clip.object_ids), 8, 64, 64)
    assert 10 < directions.count(-1) < 30  # reverse_prob 0.5

    forward = ClipSampler([stack], 64, reverse_prob=0.0)
    backward = ClipSampler([stack], 64, reverse_prob=1.0)
    assert all(np.diff(forward.sample(np.random.default_rng(s)).frames)[0] == 1 for s in range(5))
    assert all(np.diff(backward.sample(np.random.default_rng(s)).frames)[0] == -1 for s in range(5))


def test_short_stacks_give_short_clips():
    clip = ClipSampler([drifting_discs(5)], 64).sample(np.random.default_rng(0))
    assert sorted(clip.frames) == [0, 1, 2, 3, 4]


def test_objects_are_at_most_max_objects_and_visible_on_the_first_frame():
    stack = drifting_discs(12)
    for max_objects in (1, 3):
        sampler = ClipSampler([stack], 64, max_objects=max_objects)
        for seed in range(20):
            clip = sampler.sample(np.random.default_rng(seed))
            assert 1 <= len(clip.object_ids) <= max_objects
            assert len(set(clip.object_ids)) == len(clip.object_ids)
            assert clip.present[:, 0].all()
            first = stack.labels[clip.frames[0]]
            assert all((first == i).any() for i in clip.object_ids)


def test_masks_and_images_are_the_ground_truth_and_the_trackers_input():
    stack = drifting_discs(12)
    sampler = ClipSampler([stack], 64, max_objects=4)
    clip = sampler.sample(np.random.default_rng(3))
    source = FrameSource(stack.frames, 64)
    for i, t in enumerate(clip.frames):
        torch.testing.assert_close(clip.images[i], source.frame_tensor(t), rtol=0, atol=0)
        for k, obj in enumerate(clip.object_ids):
            assert torch.equal(clip.masks[k, i], torch.from_numpy(stack.labels[t] == obj))
    # object 3 leaves after frame 8: absent frames are empty masks, not errors
    clip = sampler.clip(0, np.random.default_rng(0), order=list(range(4, 12)))
    k = clip.object_ids.index(3)
    assert clip.present[k].tolist() == [True] * 5 + [False] * 3


def test_masks_are_resized_to_the_model_input():
    stack = drifting_discs(8, size=64)
    clip = ClipSampler([stack], 32, min_area=5).sample(np.random.default_rng(0))
    assert clip.images.shape[-2:] == (32, 32) and clip.masks.shape[-2:] == (32, 32)
    k, t = 0, clip.frames[0]
    expected = stack.labels[t, ::2, ::2] == clip.object_ids[k]
    assert (clip.masks[k, 0].numpy() != expected).mean() < 0.03


def test_a_mothers_masklet_continues_as_its_daughters():
    labels = np.zeros((4, 32, 32), np.uint16)
    labels[:2, 8:24, 8:24] = 1
    labels[2:, 8:24, 8:15] = 2
    labels[2:, 8:24, 17:24] = 3
    stack = LabelledStack(labels * 100, labels, lineage={2: 1, 3: 1})
    sampler = ClipSampler([stack], 32, length=4, reverse_prob=0.0, max_objects=1)
    clip = sampler.clip(0, np.random.default_rng(0), order=[0, 1, 2, 3])
    assert clip.object_ids == [1]
    assert clip.present[0].all()
    assert torch.equal(clip.masks[0, 3], torch.from_numpy(labels[3] > 0))


def test_augmentation_moves_images_and_masks_together():
    size = 64
    masks = torch.zeros(1, 2, size, size, dtype=torch.bool)
    masks[0, :, 10:30, 20:44] = True
    images = masks[0].float()[:, None].expand(2, 3, size, size).clone()
    geometric = Augmentation(
        gamma=(1, 1), contrast=(1, 1), brightness=0, frame_brightness=0, noise=0
    )
    for seed in range(5):
        out_images, out_masks = augment_clip(images, masks, geometric, np.random.default_rng(seed))
        bright = out_images[:, 0] > 0.5
        overlap = (bright & out_masks[0]).sum() / (bright | out_masks[0]).sum()
        assert overlap > 0.9
        assert out_images.min() >= 0 and out_images.max() <= 1
    same_images, same_masks = augment_clip(images, masks, NO_AUGMENTATION, np.random.default_rng(0))
    assert same_images is images and same_masks is masks


def test_mismatched_labels_are_a_user_error():
    with pytest.raises(SAM2Error, match="do not match"):
        LabelledStack(np.zeros((3, 8, 8)), np.zeros((3, 8, 9), np.uint8))
    with pytest.raises(SAM2Error, match="at least one"):
        ClipSampler([], 64)
