"""Generated microscopy-like stacks with ground truth, from a seed.

Time-lapses of cells that move, deform, touch, divide and leave the field, and z-stacks of
nuclei, imaged with blur, shot noise, read noise and bleaching; used by the sample data and tests.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage


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
    is out of focus. Returns frames and labels of shape (num_frames, height, width), uint16,
    axes "TYX".
    """
    if num_frames < 1 or height < 8 or width < 8 or num_cells < 0:
        raise ValueError(
            f"timelapse needs num_frames >= 1, height and width >= 8 and num_cells >= 0; "
            f"got {num_frames}, {height}, {width}, {num_cells}"
        )
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast must be one of {CONTRASTS}, got {contrast!r}")
    # separate streams, so imaging settings never change the ground truth (the fourth, for
    # the optional imaging effects, leaves the default stacks as they always were)
    geometry_rng, texture_rng, noise_rng, effects_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    shape = _ShapeOptions(tuple(aspect), irregularity, leaving)
    tracks, lineage = _simulate_cells(
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
            _draw_cell(track, t, texture * cell_texture, half, nearest, labels[t], signal[t])

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
        vignette = vignette * _smooth_field(effects_rng, height, width, uneven)
    if contrast == "fluorescence":
        expected = brightness * blurred * bleach[:, None, None] + background * vignette
    else:
        expected = _transmitted(blurred * bleach[:, None, None], labels, contrast, psf_sigma)
        expected = (background + brightness) * vignette * expected
    frames = _camera(expected, noise_rng, read_noise)
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
    amplitude = geometry_rng.uniform(0.01, 0.05, (num_nuclei, len(_HARMONICS)))
    phase = geometry_rng.uniform(0, 2 * np.pi, (num_nuclei, len(_HARMONICS)))
    level = geometry_rng.uniform(0.6, 1.3, num_nuclei)
    # spread out in z-scaled space, so neighbours touch at most
    scale = np.array([z_radius, nucleus_radius, nucleus_radius])
    low = np.minimum([0.0, nucleus_radius, nucleus_radius], np.array([0, height, width]) / 2)
    high = np.array([depth, height, width]) - low
    centres = _scatter(geometry_rng, num_nuclei, low / scale, high / scale, 1.9) * scale
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
        in_plane = _blob_distance(dy, dx, a, b, theta[n], 0.0, amplitude[n], phase[n])
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
    frames = _camera(expected, noise_rng, read_noise)
    return SyntheticStack(frames=frames, labels=labels, lineage={}, axes="ZYX")


# Shape deformation modes (cos(k * angle)); k = 2 is left to the ellipse itself.
_HARMONICS = np.array([3, 4, 5])

CONTRASTS = ("fluorescence", "absorption", "phase")


@dataclass(frozen=True)
class _ShapeOptions:
    """Cell shape settings of a time-lapse: elongation range, deformation scale, and whether
    cell 1 is scripted to leave and come back."""

    aspect: tuple[float, float] = (1.05, 1.4)
    irregularity: float = 1.0
    leaving: bool = True


def _smooth_field(rng, height, width, amplitude):
    """A smooth random multiplicative pattern around 1 (uneven illumination or staining)."""
    coarse = rng.normal(size=(height // 64 + 2, width // 64 + 2))
    field = ndimage.zoom(coarse, (height / coarse.shape[0], width / coarse.shape[1]), order=3)
    field = ndimage.gaussian_filter(field[:height, :width], 16)
    field /= max(np.abs(field).max(), 1e-6)
    return (1.0 + amplitude * field).astype(np.float32)


def _transmitted(density, labels, contrast, psf_sigma):
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


@dataclass
class _CellTrack:
    """One simulated cell: its shape and position per frame (NaN where it does not exist)."""

    label: int
    radius: float
    aspect: float
    cytoplasm: float
    nucleus: float
    nucleus_offset: tuple[float, float]
    y: np.ndarray  # (T,) centre, pixels
    x: np.ndarray
    a: np.ndarray  # (T,) semi-axis along theta
    b: np.ndarray  # (T,) semi-axis across theta
    theta: np.ndarray  # (T,) orientation, radians
    waist: np.ndarray  # (T,) 0..1, how far a mother has pinched before dividing
    amplitude: np.ndarray  # (T, K) deformation amplitudes
    phase: np.ndarray  # (T, K)


def _simulate_cells(
    rng, num_frames, height, width, num_cells, radius, num_divisions, shape=_ShapeOptions()
):
    """Trajectories and shapes of all cells, including daughters; returns (tracks, lineage)."""
    T = num_frames
    tracks: list[_CellTrack] = []

    def new_track(label, cell_radius, aspect):
        nan = np.full(T, np.nan)
        return _CellTrack(
            label=label,
            radius=cell_radius,
            aspect=aspect,
            cytoplasm=rng.uniform(0.5, 0.9),
            nucleus=rng.uniform(0.8, 1.4),
            nucleus_offset=tuple(rng.uniform(-0.2, 0.2, 2)),
            y=nan.copy(),
            x=nan.copy(),
            a=nan.copy(),
            b=nan.copy(),
            theta=nan.copy(),
            waist=np.zeros(T),
            amplitude=np.zeros((T, len(_HARMONICS))),
            phase=np.zeros((T, len(_HARMONICS))),
        )

    # cells larger than the field still get a place (in its middle)
    margin = np.minimum(radius, np.array([height, width]) / 2)
    starts = _scatter(
        rng, num_cells, margin, np.array([height, width]) - margin, min_distance=2.2 * radius
    )
    alive = []  # simulation states (see _new_state) of the cells present now
    for i in range(num_cells):
        track = new_track(i + 1, radius * rng.uniform(0.85, 1.15), rng.uniform(*shape.aspect))
        tracks.append(track)
        alive.append(_new_state(rng, track, starts[i], rng.normal(0, 0.8, 2), birth=0))
        alive[-1]["amplitude"] *= shape.irregularity

    # Cell 1 is scripted to swim out through the left edge and come back, so every default
    # stack has an exit and a re-entry; short stacks have no room for it.
    exit_state = alive[0] if num_cells and T >= 10 and shape.leaving else None
    if exit_state is not None:
        home = np.array([starts[0][0], 1.8 * radius])
        t_out, t_back = 0.12 * (T - 1), 0.85 * (T - 1)
        reach = home[1] + 3.5 * radius

    # Divisions: mothers other than the scripted cell, at frames spread over the middle.
    candidates = list(range(1 if exit_state is not None else 0, num_cells))
    count = min(num_divisions, len(candidates)) if T >= 4 else 0
    mothers = rng.choice(candidates, size=count, replace=False) if count else []
    division_frames = {}
    for k, m in enumerate(mothers):
        fraction = 0.35 + 0.3 * k / max(count - 1, 1)
        division_frames[int(m) + 1] = int(np.clip(round(fraction * (T - 1)), 1, T - 1))

    lineage: dict[int, int] = {}
    next_label = num_cells + 1
    ramp_frames = 6
    for t in range(T):
        # divisions: the mother's last frame is t - 1, two daughters fill its halves at t
        for state in [s for s in alive if division_frames.get(s["track"].label) == t]:
            mother = state["track"]
            alive.remove(state)
            axis = np.array([np.sin(mother.theta[t - 1]), np.cos(mother.theta[t - 1])])
            half = 0.5 * mother.a[t - 1]
            centre = np.array([mother.y[t - 1], mother.x[t - 1]])
            for sign in (1.0, -1.0):
                track = new_track(next_label, mother.radius * 0.92, rng.uniform(*shape.aspect))
                track.nucleus, track.cytoplasm = mother.nucleus, mother.cytoplasm
                tracks.append(track)
                daughter = _new_state(
                    rng, track, centre + sign * half * axis, state["v"] * 0.5 + sign * 0.6 * axis, t
                )
                daughter["theta0"] = mother.theta[t - 1]
                daughter["amplitude"] *= shape.irregularity
                daughter["spin"] = 0.0
                daughter["mother_radius"] = mother.radius
                alive.append(daughter)
                lineage[next_label] = mother.label
                next_label += 1

        for state in alive:
            track = state["track"]
            if t > state["birth"]:
                # persistent random walk: velocity keeps most of its direction frame to frame
                state["v"] = 0.85 * state["v"] + rng.normal(0, 0.45, 2)
                if track.label in division_frames:
                    state["v"] *= 0.5 if t >= division_frames[track.label] - ramp_frames else 1
                state["p"] = state["p"] + state["v"]
            if state is exit_state:
                s = np.clip((t - t_out) / (t_back - t_out), 0, 1)
                out = 0.5 * (1 - np.cos(2 * np.pi * s))
                state["p"] = home + np.array([0.25 * radius * np.sin(0.3 * t), -reach * out])
            _shape_at(state, t, ramp_frames, division_frames.get(track.label))

        # contact without overlap: pairs closer than their radii are pushed apart, but only
        # to 0.95 of the sum, so neighbours keep touching
        for _ in range(2):
            for i, si in enumerate(alive):
                for sj in alive[i + 1 :]:
                    gap = si["p"] - sj["p"]
                    distance = max(np.linalg.norm(gap), 1e-6)
                    overlap = 0.95 * (si["r"] + sj["r"]) - distance
                    if overlap > 0:
                        push = 0.5 * overlap * gap / distance
                        movable = [cell for cell in (si, sj) if cell is not exit_state]
                        for cell, sign in ((si, 1.0), (sj, -1.0)):
                            if cell in movable:
                                cell["p"] = cell["p"] + sign * push * (2.0 / len(movable))

        # only the scripted cell leaves: the others bounce back at the edges
        for state in alive:
            if state is exit_state:
                continue
            low = 0.6 * state["r"]
            high = np.array([height - 1, width - 1]) - low
            for axis in (0, 1):
                if state["p"][axis] < low or state["p"][axis] > high[axis]:
                    state["v"][axis] = -state["v"][axis]
            state["p"] = np.clip(state["p"], low, high)

        for state in alive:
            track = state["track"]
            track.y[t], track.x[t] = state["p"]
    return tracks, lineage


def _new_state(rng, track, position, velocity, birth):
    """Mutable simulation state of one cell: position, velocity and deformation rhythm."""
    k = len(_HARMONICS)
    return {
        "track": track,
        "p": np.asarray(position, dtype=float),
        "v": np.asarray(velocity, dtype=float),
        "birth": birth,
        "theta0": rng.uniform(0, np.pi),
        "spin": rng.normal(0, 0.03),
        "breath": (rng.uniform(0.1, 0.3), rng.uniform(0, 2 * np.pi)),
        "amplitude": rng.uniform(0.02, 0.06, k) / np.arange(1, k + 1) ** 0.5,
        "rhythm": rng.uniform(0.05, 0.2, k),
        "phase0": rng.uniform(0, 2 * np.pi, k),
        "drift": rng.normal(0, 0.08, k),
        "mother_radius": None,
        "r": track.radius,
    }


def _shape_at(state, t, ramp_frames, division_frame):
    """Ellipse axes, orientation and deformation of one cell at frame t."""
    track = state["track"]
    age = t - state["birth"]
    radius, aspect = track.radius, track.aspect
    settle = 1.0
    if state["mother_radius"] is not None:
        # daughters start round and small, then grow and take on their own shape
        settle = min(1.0, age / 8)
        radius = state["mother_radius"] * (0.78 + (0.92 - 0.78) * settle)
        aspect = 1.0 + (aspect - 1.0) * settle
    omega, offset = state["breath"]
    aspect *= 1.0 + 0.08 * np.sin(omega * t + offset)
    a, b = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    theta = state["theta0"] + state["spin"] * age
    amplitude = state["amplitude"] * np.abs(np.cos(state["rhythm"] * t)) * settle
    waist = 0.0
    if division_frame is not None and t >= division_frame - ramp_frames:
        # the mother stops rotating, elongates and pinches in the frames before it splits
        s = (t - (division_frame - ramp_frames) + 1) / ramp_frames
        if "locked_theta" not in state:
            state["locked_theta"] = theta
        theta = state["locked_theta"]
        a = a ** (1 - s) * (1.45 * radius) ** s
        b = b ** (1 - s) * (0.8 * radius) ** s
        amplitude = amplitude * (1 - s)
        waist = s
    track.a[t], track.b[t], track.theta[t], track.waist[t] = a, b, theta, waist
    track.amplitude[t] = amplitude
    track.phase[t] = state["phase0"] + state["drift"] * t
    state["r"] = np.sqrt(a * b)


def _draw_cell(track, t, texture, half, nearest, labels, signal):
    """Rasterize one cell of frame t where it is the nearest blob (normalized distance)."""
    height, width = labels.shape
    cy, cx = track.y[t], track.x[t]
    iy, ix = int(round(cy)), int(round(cx))
    y0, y1 = max(iy - half, 0), min(iy + half + 1, height)
    x0, x1 = max(ix - half, 0), min(ix + half + 1, width)
    if y0 >= y1 or x0 >= x1:
        return
    dy = np.arange(y0, y1)[:, None] - cy
    dx = np.arange(x0, x1)[None, :] - cx
    a, b, theta = track.a[t], track.b[t], track.theta[t]
    distance = _blob_distance(
        dy, dx, a, b, theta, track.waist[t], track.amplitude[t], track.phase[t]
    )
    box = (slice(y0, y1), slice(x0, x1))
    win = (distance < 1.0) & (distance < nearest[box])
    if not win.any():
        return
    # texture moves with the cell: it is indexed relative to the cell's rounded centre
    patch = (slice(y0 - iy + half, y1 - iy + half), slice(x0 - ix + half, x1 - ix + half))
    drift = 0.1 * t
    tex = np.cos(drift) * texture[0][patch] + np.sin(drift) * texture[1][patch]
    # a nucleus-like brighter, textured region off the cell's centre
    u = dx * np.cos(theta) + dy * np.sin(theta) - track.nucleus_offset[0] * a
    v = -dx * np.sin(theta) + dy * np.cos(theta) - track.nucleus_offset[1] * b
    nucleus_distance = np.hypot(u / (0.55 * a), v / (0.5 * b))
    nucleus = 1.0 / (1.0 + np.exp((nucleus_distance - 1.0) / 0.12))
    light = track.cytoplasm * (0.9 + 0.2 * tex) * (1.0 - 0.25 * distance**2)
    light = light + track.nucleus * nucleus * (1.0 + 0.3 * tex)
    nearest[box][win] = distance[win]
    labels[box][win] = track.label
    signal[box][win] = np.maximum(light[win], 0.0)


def _blob_distance(dy, dx, a, b, theta, waist, amplitude, phase):
    """Distance from the centre in units of the blob's radius at that angle: < 1 is inside."""
    angle = np.arctan2(dy, dx) - theta
    cos, sin = np.cos(angle), np.sin(angle)
    ellipse = a * b / np.sqrt((b * cos) ** 2 + (a * sin) ** 2)
    deform = 1.0
    for k, amp, ph in zip(_HARMONICS, amplitude, phase, strict=True):
        deform = deform + amp * np.cos(k * angle - ph)
    # a narrow dip across the long axis pinches a dividing cell into a dumbbell
    pinch = 1.0 - 0.4 * waist * np.abs(sin) ** 6
    return np.hypot(dy, dx) / (ellipse * deform * pinch)


def _scatter(rng, n, low, high, min_distance, tries=200):
    """n points uniformly in the box [low, high), kept apart by min_distance where possible."""
    points = []
    for _ in range(n):
        for attempt in range(tries):
            candidate = rng.uniform(low, high)
            distances = [np.linalg.norm(candidate - p) for p in points]
            # crowded fields relax the spacing rather than loop forever
            if not points or min(distances) >= min_distance * (1 - attempt / tries):
                break
        points.append(candidate)
    return np.array(points).reshape(n, len(low))


def _camera(expected_photons, rng, read_noise, offset=100.0):
    """Photon shot noise, read noise and camera offset, clipped to uint16."""
    counts = rng.poisson(expected_photons)
    adu = offset + counts + rng.normal(0.0, read_noise, counts.shape)
    return np.clip(np.rint(adu), 0, np.iinfo(np.uint16).max).astype(np.uint16)
