"""The automatic mask generator: finds the cells of a demo-sample frame, runs on an official
architecture, keeps one object per pixel, and handles crops as the reference does."""

import numpy as np
import pytest
import torch

from napari_sam2 import synthetic
from napari_sam2.engine import Tracker
from napari_sam2.engine.automatic_masks import (
    GeneratedMask,
    MaskGeneratorSettings,
    box_nms,
    crop_boxes,
    generate_masks,
    mask_boxes,
    masks_to_labels,
    point_grid,
    remove_small_regions,
    settings_for_model,
    stability_scores,
)
from napari_sam2.errors import SAM2Error
from napari_sam2.model import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _recall(labels, truth, threshold=0.5):
    found = 0
    cells = np.unique(truth)[1:]
    for cell in cells:
        inside = truth == cell
        best = 0.0
        for obj in np.unique(labels[inside]):
            if obj:
                mask = labels == obj
                best = max(best, (mask & inside).sum() / (mask | inside).sum())
        found += best >= threshold
    return found / len(cells)


def test_demo_model_finds_most_cells_of_sample_frames():
    model = build_model("demo")
    stack = synthetic.timelapse(num_frames=12, seed=4)  # the sample's size, another seed
    tracker = Tracker(model, stack.frames)
    recalls = []
    for t in (0, 6, 11):
        masks = generate_masks(
            model,
            tracker.normalized_frame(t),
            settings_for_model("demo"),
            tracker.frame_features(t),
        )
        labels = masks_to_labels(masks, *stack.frames.shape[1:])
        recalls.append(_recall(labels, stack.labels[t]))
        # not by covering the frame with fragments
        assert labels.max() <= 2 * len(np.unique(stack.labels[t]))
    assert np.mean(recalls) >= 0.8


def test_seeds_corrected_with_classical_regions_find_the_cells_the_generator_misses():
    from napari_sam2.engine.cell_tracking import CellTracker

    model = build_model("demo")
    stack = synthetic.timelapse(num_frames=10, num_cells=12, seed=32)  # crowded frames
    tracker = Tracker(model, stack.frames)
    settings = settings_for_model("demo")
    corrected, raw = [], []
    for t in (0, 5):
        labels = CellTracker(tracker, mask_settings=settings).automatic_seed_labels(t)
        plain = CellTracker(tracker, mask_settings=settings, classical_cue=False)
        corrected.append(_recall(labels, stack.labels[t]))
        raw.append(_recall(plain.automatic_seed_labels(t), stack.labels[t]))
        assert labels.max() <= 1.5 * len(np.unique(stack.labels[t]))
    # measured with demo v2: generator alone 0.83 and 0.67, corrected 1.0 and 0.92; with v3
    # (a better generator alone): 0.92 and 0.75, corrected 0.92 and 0.83 (a cell is 0.083)
    assert all(c >= r for c, r in zip(corrected, raw, strict=True))
    assert np.mean(corrected) >= 0.85 and np.mean(corrected) > np.mean(raw)


def test_runs_on_an_official_architecture_with_crops():
    torch.manual_seed(0)
    model = build_model("sam2.1_hiera_tiny", image_size=128)
    image = np.random.default_rng(0).random((96, 80, 3)).astype(np.float32)
    settings = MaskGeneratorSettings(
        points_per_side=4,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        crop_n_layers=1,
        min_mask_region_area=10,
    )
    masks = generate_masks(model, image, settings)
    for m in masks:
        assert m.mask.shape == (96, 80) and m.mask.any()
        x0, y0, x1, y1 = m.box
        ys, xs = np.nonzero(m.mask)
        assert (x0, y0, x1, y1) == (xs.min(), ys.min(), xs.max(), ys.max())
    labels = masks_to_labels(masks, 96, 80)
    assert labels.shape == (96, 80)


def test_each_pixel_belongs_to_one_object_and_parts_are_dropped():
    def mask(y0, y1, x0, x1, iou, stability=0.95):
        m = np.zeros((20, 30), dtype=bool)
        m[y0:y1, x0:x1] = True
        return GeneratedMask(m, iou, stability, (0.0, 0.0), (x0, y0, x1 - 1, y1 - 1))

    cell_a, cell_b = mask(2, 10, 2, 10, 0.9), mask(2, 10, 14, 22, 0.85)
    part_of_a = mask(2, 6, 2, 6, 0.8)
    cluster = mask(1, 11, 1, 23, 0.7)
    touching = mask(8, 14, 8, 16, 0.88)  # overlaps a and b a little
    labels = masks_to_labels([part_of_a, cluster, cell_b, touching, cell_a], 20, 30)
    assert labels.max() == 3
    assert (labels[cell_a.mask] == labels[4, 4]).all()
    # the touching mask (better than b) keeps the pixels a did not take, b the rest of its own
    assert (labels[cell_b.mask & ~touching.mask] == labels[4, 18]).all()
    assert (labels[touching.mask & ~cell_a.mask] == labels[12, 12]).all()
    assert labels[12, 12] not in (0, labels[4, 4], labels[4, 18])


def test_grid_stability_boxes_nms_and_clean_up():
    grid = point_grid(2)
    assert np.allclose(grid, [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    logits = torch.full((1, 10, 10), -5.0)
    logits[0, 2:8, 2:8] = 5.0
    logits[0, 2:8, 8] = 0.5  # inside the outer threshold only
    assert float(stability_scores(logits, 0.0, 1.0)[0]) == pytest.approx(36 / 42)
    masks = torch.zeros(2, 10, 10, dtype=torch.bool)
    masks[0, 2:5, 3:9] = True
    assert mask_boxes(masks).tolist() == [[3, 2, 8, 4], [0, 0, 0, 0]]
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
    assert box_nms(boxes, torch.tensor([0.5, 0.9, 0.1]), 0.7).tolist() == [1, 2]
    mask = np.zeros((20, 20), dtype=bool)
    mask[2:12, 2:12] = True
    mask[5, 5] = False  # a hole
    mask[16:18, 16:18] = True  # an island
    cleaned, changed = remove_small_regions(mask, 5)
    assert changed and cleaned[5, 5] and not cleaned[16:18, 16:18].any()


def test_crops_and_edge_masks():
    boxes = crop_boxes(100, 200, 1, 512 / 1500)
    assert boxes[0] == ((0, 0, 200, 100), 0) and len(boxes) == 5
    assert all(x1 <= 200 and y1 <= 100 for (x0, y0, x1, y1), _ in boxes)
    # neighbouring crops overlap
    assert boxes[1][0][2] > boxes[2][0][0]


def test_settings_are_checked_and_per_model():
    with pytest.raises(SAM2Error, match="pred_iou_thresh"):
        MaskGeneratorSettings(pred_iou_thresh=2.0)
    assert settings_for_model("sam2.1_hiera_tiny") == MaskGeneratorSettings()
    assert settings_for_model("demo").pred_iou_thresh < 0.8
    assert settings_for_model("demo", points_per_side=8).points_per_side == 8
    with pytest.raises(SAM2Error, match="image"):
        generate_masks(build_model("demo"), np.zeros((4, 4)))
