"""Losses on hand-made tensors: focal and dice values, IoU regression, the multimask
minimum-loss candidate, and frames without the object supervising only the object score."""

import math

import torch

from napari_sam2.training.losses import LossWeights, dice_loss, focal_loss, frame_loss, mask_iou


def test_focal_loss_of_an_undecided_pixel():
    logits = torch.zeros(1, 2)
    target = torch.tensor([[1.0, 0.0]])
    # p = 0.5: bce = ln 2, modulating factor (1 - 0.5)^2, alpha 0.25 for object, 0.75 else
    expected = (0.25 + 0.75) * 0.25 * math.log(2) / 2
    assert math.isclose(float(focal_loss(logits, target)), expected, rel_tol=1e-6)


def test_focal_loss_down_weights_easy_pixels():
    target = torch.ones(1, 1)
    easy = focal_loss(torch.full((1, 1), 4.0), target)
    hard = focal_loss(torch.full((1, 1), -4.0), target)
    bce_ratio = math.log1p(math.exp(4.0)) / math.log1p(math.exp(-4.0))
    assert float(hard / easy) > 100 * bce_ratio


def test_dice_loss_values():
    target = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    # sigmoid(0) = 0.5 everywhere: overlap 0.5, sums 2 and 1, smooth 1
    assert math.isclose(float(dice_loss(torch.zeros(2, 2), target)), 1 - 2 / 4, rel_tol=1e-6)
    perfect = torch.where(target > 0, 50.0, -50.0)
    assert float(dice_loss(perfect, target)) < 1e-6
    assert float(dice_loss(-perfect, target)) > 0.6


def test_mask_iou_counts_two_empty_masks_as_equal():
    target = torch.zeros(2, 4, 4, dtype=torch.bool)
    target[0, :2] = True
    logits = torch.full((2, 4, 4), -1.0)
    logits[0, :1] = 1.0
    assert mask_iou(logits, target).tolist() == [0.5, 1.0]


def _target() -> torch.Tensor:
    target = torch.zeros(1, 8, 8, dtype=torch.bool)
    target[0, 2:6, 2:6] = True
    return target


def test_only_the_candidate_with_the_lowest_loss_is_supervised():
    target = _target()
    right = torch.where(target[0], 8.0, -8.0)
    candidates = torch.stack([-right, right, torch.zeros(8, 8)])[None].requires_grad_()
    ious = torch.tensor([[0.0, 1.0, 0.25]])
    loss = frame_loss(candidates, ious, torch.tensor([[5.0]]), target)
    assert loss.best.tolist() == [1]
    assert torch.allclose(loss.focal, focal_loss(right, target[0])[None])
    assert torch.allclose(loss.dice, dice_loss(right, target[0])[None])
    loss.total(LossWeights()).sum().backward()
    grad = candidates.grad[0].flatten(1).abs().sum(1)
    assert grad[1] > 0 and grad[0] == 0 and grad[2] == 0


def test_iou_head_learns_every_candidates_real_iou_by_l1():
    target = _target()
    right = torch.where(target[0], 8.0, -8.0)
    candidates = torch.stack([right, -right, right])[None]
    exact = frame_loss(candidates, torch.tensor([[1.0, 0.0, 1.0]]), torch.ones(1, 1), target)
    assert float(exact.iou) == 0.0
    off = frame_loss(candidates, torch.tensor([[0.7, 0.3, 1.0]]), torch.ones(1, 1), target)
    assert math.isclose(float(off.iou), (0.3 + 0.3 + 0.0) / 3, rel_tol=1e-6)


def test_object_score_is_cross_entropy_with_presence():
    target = _target()
    candidates = torch.zeros(1, 1, 8, 8)
    for score, present, expected in (
        (2.0, True, math.log1p(math.exp(-2.0))),
        (2.0, False, math.log1p(math.exp(2.0))),
    ):
        t = target if present else torch.zeros_like(target)
        loss = frame_loss(candidates, torch.ones(1, 1), torch.tensor([[score]]), t)
        assert math.isclose(float(loss.object_score), expected, rel_tol=1e-6)


def test_frames_without_the_object_supervise_only_the_object_score():
    absent = torch.zeros(2, 8, 8, dtype=torch.bool)
    candidates = torch.randn(2, 3, 8, 8, requires_grad=True)
    ious = torch.rand(2, 3, requires_grad=True)
    scores = torch.tensor([[1.5], [-0.5]], requires_grad=True)
    loss = frame_loss(candidates, ious, scores, absent)
    assert loss.focal.abs().sum() == 0 and loss.dice.abs().sum() == 0 and loss.iou.abs().sum() == 0
    loss.total(LossWeights()).sum().backward()
    assert candidates.grad.abs().sum() == 0 and ious.grad.abs().sum() == 0
    assert scores.grad.abs().sum() > 0


def test_a_mix_of_present_and_absent_objects_in_one_batch():
    target = torch.cat([_target(), torch.zeros(1, 8, 8, dtype=torch.bool)])
    candidates = torch.randn(2, 3, 8, 8)
    loss = frame_loss(candidates, torch.rand(2, 3), torch.zeros(2, 1), target)
    assert loss.focal[0] > 0 and loss.focal[1] == 0
    assert (loss.object_score > 0).all()


def test_absent_focal_pushes_a_wrongly_present_mask_towards_empty():
    absent = torch.zeros(2, 8, 8, dtype=torch.bool)
    blob = torch.full((2, 3, 8, 8), 2.0, requires_grad=True)  # a mask where nothing is
    ious, scores = torch.rand(2, 3), torch.tensor([[1.5], [1.5]])
    weights = LossWeights(absent_focal=0.5)
    loss = frame_loss(blob, ious, scores, absent, weights)
    expected = 0.5 * focal_loss(blob[:, :1].detach(), absent[:, None])[:, 0]
    torch.testing.assert_close(loss.focal, expected)
    assert loss.dice.abs().sum() == 0
    loss.total(weights).sum().backward()
    assert (blob.grad[:, 0] > 0).all()  # lowering the logits lowers the loss
    # masks the object score already gated (logits -1024) cost nothing
    gated = frame_loss(torch.full((2, 3, 8, 8), -1024.0), ious, scores, absent, weights)
    assert gated.focal.max() < 1e-12
