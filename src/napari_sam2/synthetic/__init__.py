"""Generated microscopy-like stacks with ground truth, from a seed.

Time-lapses of cells that move, deform, touch, divide and leave the field, and z-stacks of
nuclei, imaged with blur, shot noise, read noise and bleaching; used by the sample data and tests.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .cells import (
    HARMONICS,
    SIZES,
    ShapeOptions,
    blob_distance,
    draw_cell,
    scatter,
    simulate_cells,
)
from .optics import CONTRASTS, camera, smooth_field, transmitted_light


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


@dataclass(frozen=True)
class SyntheticStack:
    """A generated stack and its ground truth.

    frames: (N, H, W) uint16 images; labels: (N, H, W) uint16, 0 = background, one id per cell
    or nucleus over the whole stack (a cell that leaves and comes back keeps its id); lineage:
    daughter id -> mother id; axes: "TYX" for time-lapses, "ZYX" for z-stacks.
    """

    frames: np.ndarray
    labels: np.ndarray
    lineage: dict[int, int] = field(default_factory=dict)
    axes: str = "TYX"


def timelapse(
    num_frames: int = 40,
    height: int = 256,
    width: int = 256,
    num_cells: int = 8,
    seed: int = 0,
    *,
    cell_radius: float = 14.0,
    num_divisions: int = 2,
    brightness: float = 250.0,
    background: float = 30.0,
    bleaching: float = 0.015,
    psf_sigma: float = 1.2,
    read_noise: float = 4.0,
    contrast: str = "fluorescence",
    aspect: tuple[float, float] = (1.05, 1.4),
    irregularity: float = 1.0,
    texture: float = 1.0,
    leaving: bool = True,
    drift: tuple[float, float] = (0.0, 0.0),
    uneven: float = 0.0,
    defocus: float = 0.0,
    speed: float = 1.0,
    flat: bool = False,
    sizes: tuple[float, float] = SIZES,
) -> SyntheticStack:
    """A microscopy time-lapse of moving, deforming, touching and dividing cells.

    Cell ids are 1..num_cells at the start; each division ends the mother and gives its two
    daughters new ids (lineage[daughter] = mother). With num_frames >= 10 and `leaving`, cell 1
    leaves the field through the left edge and comes back under the same id. brightness and
    background are photons per pixel; bleaching is the signal's exponential decay rate per frame.
    contrast: "fluorescence" (bright cells on dark), "absorption" (dark cells on a bright field)
    or "phase" (dark cells with a bright halo, as in phase contrast); aspect: range of the
    cells' elongation (long / short axis); irregularity and texture scale the shape
    deformations and the intensity texture; drift: stage drift (dy, dx) in pixels per frame;
    uneven: amplitude of a smooth random illumination pattern; defocus: chance that a frame
    is out of focus; speed: scale of the cells' random walk (1: about 1 px per frame);
    flat: cells evenly bright, without the nucleus-like centre; sizes: the range of each
    cell's radius as a multiple of cell_radius ((0.5, 1.5) mixes small cells among cells three
    times their size; daughters take their mother's). Returns frames and labels
    of shape (num_frames, height, width), uint16, axes "TYX".
    """
    if num_frames < 1 or height < 8 or width < 8 or num_cells < 0:
        raise ValueError(
            f"timelapse needs num_frames >= 1, height and width >= 8 and num_cells >= 0; "
            f"got {num_frames}, {height}, {width}, {num_cells}"
        )
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {CONTRASTS}, got {contrast!r}")
    if not 0 < sizes[0] <= sizes[1]:
        raise ValueError(f"sizes must be (low, high) with 0 < low <= high, got {sizes!r}")
    # separate streams, so imaging settings never change the ground truth (the fourth, for
    # the optional imaging effects, leaves the default stacks as they always were)
    geometry_rng, texture_rng, noise_rng, effects_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    shape = ShapeOptions(tuple(aspect), irregularity, leaving, speed, tuple(sizes))
    tracks, lineage = simulate_cells(
        geometry_rng, num_frames, height, width, num_cells, cell_radius, num_divisions, shape
    )
    if any(drift):
        # the stage drifts: every cell moves with the field, and may drift out of it
        steps = np.arange(num_frames)
        for track in tracks:
            track.y = track.y + drift[0] * steps
            track.x = track.x + drift[1] * steps

    labels = np.zeros((num_frames, height, width), dtype=np.uint16)
    signal = np.zeros((num_frames, height, width), dtype=np.float32)
    reach = [np.nanmax(tr.a * (1 + tr.amplitude.sum(1))) for tr in tracks]
    half = int(np.ceil(max(reach, default=1.0))) + 2
    # each cell carries its own texture, which drifts slowly between two patterns
    textures = ndimage.gaussian_filter(
        texture_rng.normal(size=(len(tracks), 2, 2 * half + 1, 2 * half + 1)), (0, 0, 1.5, 1.5)
    )
    textures /= textures.std(axis=(2, 3), keepdims=True)
    for t in range(num_frames):
        nearest = np.full((height, width), np.inf)
        for track, cell_texture in zip(tracks, textures, strict=True):
            if np.isnan(track.y[t]):
                continue
            draw_cell(track, t, texture * cell_texture, half, nearest, labels[t], signal[t], flat)

    # the PSF blurs the light, not the ground truth; bleaching dims the cells, not the camera
    blurred = ndimage.gaussian_filter(signal, (0, psf_sigma, psf_sigma))
    if defocus > 0:
        for t in np.flatnonzero(effects_rng.random(num_frames) < defocus):
            blurred[t] = ndimage.gaussian_filter(signal[t], psf_sigma * effects_rng.uniform(2, 4))
    bleach = np.exp(-bleaching * np.arange(num_frames, dtype=np.float32))
    yy, xx = np.ogrid[:height, :width]
    # uneven illumination: a little brighter in the middle, as under most objectives
    vignette = 1.0 - 0.3 * (((yy - height / 2) / height) ** 2 + ((xx - width / 2) / width) ** 2)
    if uneven > 0:
        vignette = vignette * smooth_field(effects_rng, height, width, uneven)
    if contrast == "fluorescence":
        expected = brightness * blurred * bleach[:, None, None] + background * vignette
    else:
        expected = transmitted_light(blurred * bleach[:, None, None], labels, contrast, psf_sigma)
        expected = (background + brightness) * vignette * expected
    frames = camera(expected, noise_rng, read_noise)
    return SyntheticStack(frames=frames, labels=labels, lineage=lineage, axes="TYX")


def zstack(
    depth: int = 32,
    height: int = 256,
    width: int = 256,
    num_nuclei: int = 12,
    seed: int = 0,
    *,
    nucleus_radius: float = 14.0,
    z_radius: float = 5.0,
    brightness: float = 400.0,
    background: float = 30.0,
    attenuation: float = 0.5,
    psf_sigma: tuple[float, float, float] = (2.0, 1.0, 1.0),
    read_noise: float = 4.0,
) -> SyntheticStack:
    """A fluorescence z-stack of ellipsoidal, textured nuclei at different depths.

    Each nucleus spans about 2 * z_radius slices, its cross-section growing then shrinking;
    nuclei may touch but labels never overlap. The PSF is longer along z (psf_sigma is in
    (z, y, x) pixels) and deeper slices are dimmer (attenuation: fraction lost over the stack).
    Returns frames and labels of shape (depth, height, width), uint16, axes "ZYX".
    """
    if depth < 1 or height < 8 or width < 8 or num_nuclei < 0:
        raise ValueError(
            f"zstack needs depth >= 1, height and width >= 8 and num_nuclei >= 0; "
            f"got {depth}, {height}, {width}, {num_nuclei}"
        )
    geometry_rng, texture_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)
    )
    # nuclei sit wholly inside the stack when it is deep enough, so each one rises and falls
    rz = np.minimum(z_radius * geometry_rng.uniform(0.8, 1.2, num_nuclei), max(depth / 2 - 1, 1.0))
    radius = nucleus_radius * geometry_rng.uniform(0.8, 1.2, num_nuclei)
    aspect = geometry_rng.uniform(1.0, 1.5, num_nuclei)
    theta = geometry_rng.uniform(0, np.pi, num_nuclei)
    tilt = geometry_rng.normal(0, 0.6, (num_nuclei, 2))
    amplitude = geometry_rng.uniform(0.01, 0.05, (num_nuclei, len(HARMONICS)))
    phase = geometry_rng.uniform(0, 2 * np.pi, (num_nuclei, len(HARMONICS)))
    level = geometry_rng.uniform(0.6, 1.3, num_nuclei)
    # spread out in z-scaled space, so neighbours touch at most
    scale = np.array([z_radius, nucleus_radius, nucleus_radius])
    low = np.minimum([0.0, nucleus_radius, nucleus_radius], np.array([0, height, width]) / 2)
    high = np.array([depth, height, width]) - low
    centres = scatter(geometry_rng, num_nuclei, low / scale, high / scale, 1.9) * scale
    lowest = np.minimum(rz, (depth - 1) / 2)
    centres[:, 0] = np.clip(centres[:, 0], lowest, np.maximum(depth - 1 - rz, lowest))

    labels = np.zeros((depth, height, width), dtype=np.uint16)
    signal = np.zeros((depth, height, width), dtype=np.float32)
    nearest = np.full((depth, height, width), np.inf)
    # chromatin-like texture, shared by all nuclei (they do not move)
    texture = ndimage.gaussian_filter(
        texture_rng.normal(size=(depth, height, width)).astype(np.float32), (0.7, 1.2, 1.2)
    )
    texture /= texture.std()
    for n in range(num_nuclei):
        cz, cy, cx = centres[n]
        a, b = radius[n] * np.sqrt(aspect[n]), radius[n] / np.sqrt(aspect[n])
        half = int(np.ceil(a * (1 + amplitude[n].sum()) + np.abs(tilt[n]).max() * rz[n])) + 2
        z0, z1 = max(int(np.floor(cz - rz[n])), 0), min(int(np.ceil(cz + rz[n])) + 1, depth)
        y0, y1 = max(int(cy) - half, 0), min(int(cy) + half + 1, height)
        x0, x1 = max(int(cx) - half, 0), min(int(cx) + half + 1, width)
        dz = (np.arange(z0, z1) - cz)[:, None, None]
        # tilt shifts the cross-section with depth, so nuclei are not all upright
        dy = np.arange(y0, y1)[None, :, None] - cy - tilt[n, 0] * dz
        dx = np.arange(x0, x1)[None, None, :] - cx - tilt[n, 1] * dz
        in_plane = blob_distance(dy, dx, a, b, theta[n], 0.0, amplitude[n], phase[n])
        distance = np.sqrt(in_plane**2 + (dz / rz[n]) ** 2)
        box = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
        win = (distance < 1.0) & (distance < nearest[box])
        # heterochromatin is denser at the nuclear periphery: a slightly brighter rim
        light = level[n] * (0.8 + 0.25 * texture[box]) * (0.85 + 0.2 * distance**2)
        nearest[box][win] = distance[win]
        labels[box][win] = n + 1
        signal[box][win] = np.maximum(light[win], 0.0)

    blurred = ndimage.gaussian_filter(signal, psf_sigma)
    dimming = np.exp(np.log1p(-min(attenuation, 0.99)) * np.arange(depth) / max(depth - 1, 1))
    expected = brightness * blurred * dimming[:, None, None].astype(np.float32) + background
    frames = camera(expected, noise_rng, read_noise)
    return SyntheticStack(frames=frames, labels=labels, lineage={}, axes="ZYX")
