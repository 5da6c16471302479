"""SAM 2's automatic mask generator: a grid of single-click prompts decoded in batches on a
frame's image features, kept by predicted IoU and stability, de-duplicated by box NMS.

Parameters keep the reference `SAM2AutomaticMaskGenerator`'s names and defaults; the shipped
demo model, small and trained on synthetic cells, has lower confidence and gets its own
defaults (`settings_for_model`).
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..errors import SAM2Error
from ..model import SAM2, FrameFeatures
from .frames import IMAGENET_MEAN, IMAGENET_STD

# edges of a mask box this close (pixels) to a crop edge that is not the image's edge mean the
# crop cut the object, as in the reference
CROP_EDGE_TOLERANCE = 20.0


@dataclass(frozen=True)
class MaskGeneratorSettings:
    """What the automatic mask generator keeps (the reference's names and defaults).

    points_per_side: a points_per_side x points_per_side grid of clicks on the image (fewer
    per crop on deeper crop layers: divided by crop_n_points_downscale_factor ** layer);
    points_per_batch: clicks decoded at once; pred_iou_thresh: minimum predicted IoU;
    stability_score_thresh: minimum IoU between the mask thresholded at mask_threshold +/-
    stability_score_offset; box_nms_thresh: masks whose boxes overlap more are duplicates
    (the higher predicted IoU stays); crop_n_layers: extra layers of 2**i x 2**i overlapping
    crops (crop_overlap_ratio), merged by crop_nms_thresh preferring smaller crops;
    min_mask_region_area: islands and holes smaller than this are removed / filled (0: off).
    max_mask_fraction (ours): masks covering more of the frame are background, not objects.
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    min_mask_region_area: int = 0
    multimask_output: bool = True
    max_mask_fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.points_per_side < 1 or self.points_per_batch < 1:
            raise SAM2Error("points_per_side and points_per_batch must be 1 or more")
        if self.crop_n_layers < 0 or self.min_mask_region_area < 0:
            raise SAM2Error("crop_n_layers and min_mask_region_area must be 0 or more")
        for name in ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SAM2Error(f"{name} must be between 0 and 1")


# The demo model (0.9 M parameters, trained on synthetic cells) rarely predicts IoUs above
# 0.8 or masks that stable; measured on its sample stacks (docs/cells.md).
MODEL_SETTINGS = {
    "demo": MaskGeneratorSettings(
        pred_iou_thresh=0.5, stability_score_thresh=0.8, max_mask_fraction=0.25
    ),
}


def settings_for_model(name: str | None, **overrides) -> MaskGeneratorSettings:
    """The default settings for a model (by its name), with `overrides` applied."""
    return replace(MODEL_SETTINGS.get(name or "", MaskGeneratorSettings()), **overrides)


@dataclass
class GeneratedMask:
    """One mask the generator kept: (H, W) bool, its scores, the click and box (x0, y0, x1,
    y1, inclusive) in frame pixels."""

    mask: np.ndarray
    predicted_iou: float
    stability_score: float
    point_xy: tuple[float, float]
    box: tuple[int, int, int, int]

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def point_grid(n_per_side: int) -> np.ndarray:
    """(n*n, 2) click positions (x, y) in [0, 1]: cell centres of an n x n grid."""
    centres = (np.arange(n_per_side) + 0.5) / n_per_side
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.ravel(), ys.ravel()], axis=-1)


def crop_boxes(
    height: int, width: int, n_layers: int, overlap_ratio: float
) -> list[tuple[tuple[int, int, int, int], int]]:
    """The image itself (layer 0), then 2**i x 2**i overlapping crops per layer i >= 1:
    [((x0, y0, x1, y1), layer)] with exclusive ends."""
    boxes = [((0, 0, width, height), 0)]
    short = min(height, width)
    for layer in range(1, n_layers + 1):
        per_side = 2**layer
        overlap = int(overlap_ratio * short * 2 / per_side)
        crop_w = math.ceil((overlap * (per_side - 1) + width) / per_side)
        crop_h = math.ceil((overlap * (per_side - 1) + height) / per_side)
        for y0 in (int((crop_h - overlap) * i) for i in range(per_side)):
            for x0 in (int((crop_w - overlap) * i) for i in range(per_side)):
                boxes.append(((x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)), layer))
    return boxes


def stability_scores(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """(N, H, W) logits -> (N,): area above threshold + offset over area above threshold -
    offset (the first is inside the second)."""
    inner = (logits > threshold + offset).flatten(1).sum(1)
    outer = (logits > threshold - offset).flatten(1).sum(1)
    return inner / outer.clamp(min=1)


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool -> (N, 4) inclusive boxes (x0, y0, x1, y1); [0, 0, 0, 0] when empty."""
    n, h, w = masks.shape
    rows, cols = masks.any(2), masks.any(1)
    ys = torch.arange(h, device=masks.device)
    xs = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, ys, -1).amax(1)
    y0 = torch.where(rows, ys, h).amin(1)
    x1 = torch.where(cols, xs, -1).amax(1)
    x0 = torch.where(cols, xs, w).amin(1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    empty = ~rows.any(1)
    return torch.where(empty[:, None], torch.zeros_like(boxes), boxes)


def box_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of boxes kept by greedy non-maximum suppression, best score first."""
    boxes = boxes.float()
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = torch.argsort(scores, descending=True)
    keep = []
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        low = torch.maximum(boxes[i, :2], boxes[:, :2])
        high = torch.minimum(boxes[i, 2:], boxes[:, 2:])
        inter = (high - low).clamp(min=0).prod(1)
        iou = inter / (areas[i] + areas - inter).clamp(min=1e-9)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long)


def _near_crop_edge(boxes: torch.Tensor, crop, height: int, width: int) -> torch.Tensor:
    """Boxes (in frame pixels) touching an edge of the crop that is not an edge of the frame."""
    crop_t = torch.tensor(crop, dtype=torch.float32)
    frame_t = torch.tensor([0, 0, width, height], dtype=torch.float32)
    near_crop = torch.isclose(boxes.float(), crop_t[None], atol=CROP_EDGE_TOLERANCE, rtol=0)
    near_frame = torch.isclose(boxes.float(), frame_t[None], atol=CROP_EDGE_TOLERANCE, rtol=0)
    return (near_crop & ~near_frame).any(1)


def crop_features(model: SAM2, image: np.ndarray, crop) -> FrameFeatures:
    """Image features of one crop of a normalized (H, W, 3) [0, 1] image."""
    x0, y0, x1, y1 = crop
    pixels = torch.from_numpy(np.ascontiguousarray(image[y0:y1, x0:x1])).permute(2, 0, 1)
    size = (model.image_size, model.image_size)
    pixels = F.interpolate(
        pixels[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True
    )
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        return model.encode_image(((pixels - mean) / std).to(model.device))


@torch.inference_mode()
def decode_clicks(
    model: SAM2, features: FrameFeatures, clicks_xy: torch.Tensor, multimask: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode B single positive clicks (B, 2) in model-input pixels on one frame's features,
    as SAM 2's image predictor does (no memory): low-res mask logits (B, M, S/4, S/4) and
    predicted IoUs (B, M), M = 3 with multimask else 1."""
    batch = clicks_xy.shape[0]
    device = model.device
    pix_feat = model.condition_on_memory(features, None)  # adds the "no memory" embedding
    sparse, dense = model.sam_prompt_encoder(
        points=(
            clicks_xy[:, None].to(device),
            torch.ones(batch, 1, dtype=torch.int32, device=device),
        ),
        boxes=None,
        masks=None,
    )
    masks, ious, _, _ = model.decode(
        pix_feat, features.high_res, sparse, dense, multimask, repeat_image=True
    )
    return masks.float().clamp(-32.0, 32.0), ious.float()


def _crop_masks(
    model: SAM2,
    features: FrameFeatures,
    crop,
    layer: int,
    height: int,
    width: int,
    settings: MaskGeneratorSettings,
) -> list[GeneratedMask]:
    x0, y0, x1, y1 = crop
    crop_h, crop_w = y1 - y0, x1 - x0
    n = max(1, int(settings.points_per_side / settings.crop_n_points_downscale_factor**layer))
    points = point_grid(n) * np.array([crop_w, crop_h])  # crop pixels (x, y)
    scale = torch.tensor([model.image_size / crop_w, model.image_size / crop_h])
    kept_masks, kept_ious, kept_stability, kept_points = [], [], [], []
    for start in range(0, len(points), settings.points_per_batch):
        batch = torch.from_numpy(points[start : start + settings.points_per_batch]).float()
        low_res, ious = decode_clicks(model, features, batch * scale, settings.multimask_output)
        logits = F.interpolate(low_res, size=(crop_h, crop_w), mode="bilinear", align_corners=False)
        logits, ious = logits.flatten(0, 1).cpu(), ious.flatten(0, 1).cpu()
        clicks = batch.repeat_interleave(low_res.shape[1], dim=0)
        keep = ious > settings.pred_iou_thresh if settings.pred_iou_thresh > 0 else ious == ious
        stability = stability_scores(
            logits, settings.mask_threshold, settings.stability_score_offset
        )
        if settings.stability_score_thresh > 0:
            keep &= stability >= settings.stability_score_thresh
        masks = logits[keep] > settings.mask_threshold
        fraction = masks.flatten(1).float().mean(1) * (crop_h * crop_w) / (height * width)
        big = fraction > settings.max_mask_fraction
        masks, clicks_kept = masks[~big], clicks[keep][~big]
        kept_masks.append(masks)
        kept_ious.append(ious[keep][~big])
        kept_stability.append(stability[keep][~big])
        kept_points.append(clicks_kept)
    masks = torch.cat(kept_masks)
    ious, stability, clicks = (
        torch.cat(kept_ious),
        torch.cat(kept_stability),
        torch.cat(kept_points),
    )
    nonempty = masks.flatten(1).any(1)
    masks, ious, stability, clicks = (
        masks[nonempty],
        ious[nonempty],
        stability[nonempty],
        clicks[nonempty],
    )
    boxes = mask_boxes(masks) + torch.tensor([x0, y0, x0, y0])
    cut = _near_crop_edge(boxes, crop, height, width)
    masks, ious, stability, clicks, boxes = (
        masks[~cut],
        ious[~cut],
        stability[~cut],
        clicks[~cut],
        boxes[~cut],
    )
    if len(masks) == 0:
        return []
    keep = box_nms(boxes, ious, settings.box_nms_thresh)
    found = []
    for i in keep.tolist():
        full = np.zeros((height, width), dtype=bool)
        full[y0:y1, x0:x1] = masks[i].numpy()
        found.append(
            GeneratedMask(
                full,
                float(ious[i]),
                float(stability[i]),
                (float(clicks[i, 0]) + x0, float(clicks[i, 1]) + y0),
                tuple(int(v) for v in boxes[i]),
            )
        )
    return found


def remove_small_regions(mask: np.ndarray, min_area: int) -> tuple[np.ndarray, bool]:
    """Fill holes and drop islands smaller than min_area (8-connected; the largest island
    stays if all are small). Returns (mask, whether it changed)."""
    eight = np.ones((3, 3), dtype=bool)
    changed = False
    holes, count = ndimage.label(~mask, structure=eight)
    if count:
        small = np.bincount(holes.ravel()) < min_area
        small[0] = False
        if small.any():
            mask = mask | small[holes]
            changed = True
    islands, count = ndimage.label(mask, structure=eight)
    if count:
        sizes = np.bincount(islands.ravel())
        sizes[0] = 0
        small = sizes < min_area
        small[0] = False
        if small[1:].all():
            small[int(sizes.argmax())] = False
        if small.any():
            mask = mask & ~small[islands]
            changed = True
    return mask, changed


def generate_masks(
    model: SAM2,
    image: np.ndarray,
    settings: MaskGeneratorSettings | None = None,
    features: FrameFeatures | None = None,
) -> list[GeneratedMask]:
    """Every object SAM 2 finds in one normalized (H, W, 3) [0, 1] frame.

    features: the whole frame's image features if already computed (e.g. a Tracker's
    `frame_features(t)`); crops are encoded here. Masks may overlap; see `masks_to_labels`.
    """
    settings = settings or MaskGeneratorSettings()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise SAM2Error(f"automatic masks need an (H, W, 3) image, got shape {image.shape}")
    height, width = image.shape[:2]
    found: list[GeneratedMask] = []
    crop_of: list[tuple[int, int, int, int]] = []
    crops = crop_boxes(height, width, settings.crop_n_layers, settings.crop_overlap_ratio)
    for crop, layer in crops:
        crop_feat = features if (layer == 0 and features is not None) else None
        if crop_feat is None:
            crop_feat = crop_features(model, image, crop)
        masks = _crop_masks(model, crop_feat, crop, layer, height, width, settings)
        found += masks
        crop_of += [crop] * len(masks)
    if len(crops) > 1 and found:
        # duplicates between crops: the mask from the smaller crop stays
        boxes = torch.tensor([m.box for m in found])
        areas = torch.tensor([(c[2] - c[0]) * (c[3] - c[1]) for c in crop_of], dtype=torch.float)
        found = [found[i] for i in box_nms(boxes, 1.0 / areas, settings.crop_nms_thresh).tolist()]
    if settings.min_mask_region_area > 0 and found:
        cleaned = []
        for m in found:
            m.mask, changed = remove_small_regions(m.mask, settings.min_mask_region_area)
            if m.mask.any():
                cleaned.append((m, 0.0 if changed else 1.0))
        found = [m for m, _ in cleaned]
        if found:
            boxes = mask_boxes(torch.from_numpy(np.stack([m.mask for m in found])))
            for m, box in zip(found, boxes, strict=True):
                m.box = tuple(int(v) for v in box)
            # masks that needed clean-up lose to unchanged duplicates
            scores = torch.tensor([score for _, score in cleaned])
            keep = box_nms(boxes, scores, settings.box_nms_thresh).tolist()
            found = [found[i] for i in keep]
    return found


def masks_to_labels(
    masks: list[GeneratedMask], height: int, width: int, max_overlap: float = 0.3
) -> np.ndarray:
    """One (H, W) int32 label image from overlapping masks: 1..N, each pixel to one object.

    Masks are taken best first (predicted IoU x stability score); a mask whose pixels are
    already taken by better ones for more than `max_overlap` of its area is a part or a
    cluster of objects already found and is dropped; the others get their untaken pixels
    (the largest connected piece of them).
    """
    labels = np.zeros((height, width), dtype=np.int32)
    order = sorted(masks, key=lambda m: -m.predicted_iou * m.stability_score)
    next_id = 1
    for m in order:
        area = m.area
        free = m.mask & (labels == 0)
        if area == 0 or free.sum() < (1.0 - max_overlap) * area:
            continue
        parts, count = ndimage.label(free)
        if count > 1:
            free = parts == np.bincount(parts.ravel())[1:].argmax() + 1
        labels[free] = next_id
        next_id += 1
    return labels
