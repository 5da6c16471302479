"""How the generated cells are imaged: uneven illumination or staining, transmitted-light
contrasts (absorption, phase halos), and the camera's shot and read noise."""

import numpy as np
from scipy import ndimage

CONTRASTS = ("fluorescence", "absorption", "phase")


def smooth_field(rng, height, width, amplitude):
    """A smooth random multiplicative pattern around 1 (uneven illumination or staining)."""
    coarse = rng.normal(size=(height // 64 + 2, width // 64 + 2))
    field = ndimage.zoom(coarse, (height / coarse.shape[0], width / coarse.shape[1]), order=3)
    field = ndimage.gaussian_filter(field[:height, :width], 16)
    field /= max(np.abs(field).max(), 1e-6)
    return (1.0 + amplitude * field).astype(np.float32)


def transmitted_light(density, labels, contrast, psf_sigma):
    """Fraction of a bright field's light left where cells absorb it ("absorption"), plus the
    bright halo that rings cells in phase contrast ("phase")."""
    out = 1.0 - 0.6 * np.tanh(1.5 * density)
    if contrast == "phase":
        inside = (labels > 0).astype(np.float32)
        spread = ndimage.gaussian_filter(inside, (0, 2.0 + psf_sigma, 2.0 + psf_sigma))
        out = (
            out
            + 0.9 * np.clip(spread - inside, 0.0, None)
            - 0.15 * np.clip(inside - spread, 0.0, None)
        )
    return out


def camera(expected_photons, rng, read_noise, offset=100.0):
    """Photon shot noise, read noise and camera offset, clipped to uint16."""
    counts = rng.poisson(expected_photons)
    adu = offset + counts + rng.normal(0.0, read_noise, counts.shape)
    return np.clip(np.rint(adu), 0, np.iinfo(np.uint16).max).astype(np.uint16)
