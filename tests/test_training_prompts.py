"""Prompt simulation: clicks inside the object, boxes around it, the 50/25/25 mix of first
prompts, and corrective clicks in the error region."""

import numpy as np
import torch

from napari_sam2.training.prompts import box_around, click_inside, corrective_click, first_prompt


def _mask() -> torch.Tensor:
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[10:30, 20:50] = True
    mask[30:40, 20:25] = True  # an L shape: its box holds background too
    return mask


def test_clicks_fall_inside_the_object():
    mask = _mask()
    for seed in range(50):
        prompt = click_inside(mask, np.random.default_rng(seed))
        (x, y), label = prompt.points[0].tolist(), int(prompt.labels[0])
        assert mask[int(y), int(x)] and label == 1


def test_a_box_without_noise_is_the_bounding_box_as_two_corner_points():
    prompt = box_around(_mask(), np.random.default_rng(0), noise=0.0)
    assert prompt.points.tolist() == [[20.0, 10.0], [49.0, 39.0]]
    assert prompt.labels.tolist() == [2, 3]


def test_noisy_boxes_stay_ordered_inside_the_image_and_near_the_object():
    for seed in range(30):
        (x0, y0), (x1, y1) = box_around(_mask(), np.random.default_rng(seed)).points.tolist()
        assert 0 <= x0 <= x1 <= 63 and 0 <= y0 <= y1 <= 63
        assert abs(x0 - 20) <= 20 and abs(y1 - 39) <= 20


def test_first_prompts_are_masks_half_the_time_clicks_and_boxes_a_quarter_each():
    rng = np.random.default_rng(0)
    kinds = [first_prompt(_mask(), rng).kind for _ in range(800)]
    share = {k: kinds.count(k) / len(kinds) for k in ("mask", "click", "box")}
    assert abs(share["mask"] - 0.5) < 0.06
    assert abs(share["click"] - 0.25) < 0.05 and abs(share["box"] - 0.25) < 0.05
    mask_prompt = next(
        p for p in (first_prompt(_mask(), rng) for _ in range(10)) if p.mask is not None
    )
    assert torch.equal(mask_prompt.mask, _mask())


def test_corrective_clicks_are_positive_on_misses_and_negative_on_false_pixels():
    target = _mask()
    missed_half = target.clone()
    missed_half[:, 35:] = False  # the prediction misses the right part
    extra = target.clone()
    extra[50:60, 50:60] = True  # the prediction takes background
    for seed in range(30):
        (x, y), label = corrective_click(missed_half, target, np.random.default_rng(seed), 0.0)
        assert label == 1 and target[int(y), int(x)] and not missed_half[int(y), int(x)]
        (x, y), label = corrective_click(extra, target, np.random.default_rng(seed), 0.0)
        assert label == 0 and extra[int(y), int(x)] and not target[int(y), int(x)]
    assert corrective_click(target, target, np.random.default_rng(0), 0.0) is None


def test_some_corrective_clicks_ignore_the_prediction_and_click_the_target():
    target = _mask()
    wrong = target.clone()
    wrong[50:60, 50:60] = True  # every click from the error region would be negative
    labels = [corrective_click(wrong, target, np.random.default_rng(s), 0.1)[1] for s in range(400)]
    assert 0.05 < labels.count(1) / len(labels) < 0.16
    (x, y), label = corrective_click(wrong, target, np.random.default_rng(0), 1.0)
    assert label == 1 and target[int(y), int(x)]


def test_adding_clicks_accumulates_points():
    prompt = box_around(_mask(), np.random.default_rng(0), noise=0.0)
    more = prompt.add_click((3.0, 4.0), 0).add_click((5.0, 6.0), 1)
    assert more.num_points == 4 and more.labels.tolist() == [2, 3, 0, 1]
    assert prompt.num_points == 2
