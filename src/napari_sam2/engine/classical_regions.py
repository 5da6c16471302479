"""Cells found without a neural network on one frame: smoothing, an Otsu threshold and a
watershed of the distance transform (the classical baseline's segmentation, and an independent
cue the cell tracker checks SAM 2's masklets against)."""

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.filters import gaussian, threshold_otsu
from skimage.segmentation import watershed


def segment_frame(
    frame: np.ndarray, sigma: float = 2.0, min_area: int = 30, min_distance: int = 7
) -> np.ndarray:
    """Label the cells of one (H, W) frame: int32, 0 = background, 1..N in no set order.

    sigma: smoothing before thresholding (pixels); min_area: smaller regions are noise;
    min_distance: the closest two cell centres may be (pixels), which sets how eagerly the
    watershed splits a blob.
    """
    image = gaussian(np.asarray(frame, dtype=np.float32), sigma=sigma, preserve_range=True)
    if not np.isfinite(image).all() or image.max() == image.min():
        return np.zeros(image.shape, dtype=np.int32)
    level = threshold_otsu(image)
    foreground = image > level
    # cells are the minority class: dark cells on a bright field flip the comparison
    if foreground.mean() > 0.5:
        foreground = ~foreground
    foreground = ndimage.binary_fill_holes(ndimage.binary_opening(foreground, iterations=1))
    regions, _ = ndimage.label(foreground)
    sizes = np.bincount(regions.ravel())
    foreground &= sizes[regions] >= min_area
    distance = ndimage.gaussian_filter(ndimage.distance_transform_edt(foreground), 1.0)
    peaks = peak_local_max(
        distance,
        min_distance=min_distance,
        threshold_abs=2.0,
        labels=ndimage.label(foreground)[0],
        exclude_border=False,
    )
    markers = np.zeros(foreground.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, markers, mask=foreground).astype(np.int32)
    # a region with no peak (too thin for one) is still a cell
    unlabelled, count = ndimage.label(foreground & (labels == 0))
    labels[unlabelled > 0] = unlabelled[unlabelled > 0] + labels.max()
    sizes = np.bincount(labels.ravel())
    labels[sizes[labels] < min_area] = 0
    return labels
