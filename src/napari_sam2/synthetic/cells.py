"""The generated cells themselves: where each one is on every frame (moving, deforming,
dividing, leaving and coming back) and how its shape and texture are drawn."""

from dataclasses import dataclass

import numpy as np

# Shape deformation modes (cos(k * angle)); k = 2 is left to the ellipse itself.
HARMONICS = np.array([3, 4, 5])
# the default range of each first cell's radius, as a multiple of the stack's cell radius
SIZES = (0.85, 1.15)


@dataclass(frozen=True)
class ShapeOptions:
    """Cell shape and motion settings of a time-lapse: elongation range, deformation scale,
    whether cell 1 is scripted to leave and come back, how fast cells wander (the random
    walk's step, 1 by default), and the range of each first cell's radius as a multiple of
    the stack's cell radius."""

    aspect: tuple[float, float] = (1.05, 1.4)
    irregularity: float = 1.0
    leaving: bool = True
    speed: float = 1.0
    sizes: tuple[float, float] = SIZES


@dataclass
class CellTrack:
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


def simulate_cells(
    rng, num_frames, height, width, num_cells, radius, num_divisions, shape=ShapeOptions()
):
    """Trajectories and shapes of all cells, including daughters; returns (tracks, lineage)."""
    T = num_frames
    tracks: list[CellTrack] = []

    def new_track(label, cell_radius, aspect):
        nan = np.full(T, np.nan)
        return CellTrack(
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
            amplitude=np.zeros((T, len(HARMONICS))),
            phase=np.zeros((T, len(HARMONICS))),
        )

    # cells larger than the field still get a place (in its middle)
    margin = np.minimum(radius, np.array([height, width]) / 2)
    # the largest cells still start apart (the factor is 1 for the default sizes)
    spacing = 2.2 * radius * max(shape.sizes[1] / SIZES[1], 1.0)
    starts = scatter(rng, num_cells, margin, np.array([height, width]) - margin, spacing)
    alive = []  # simulation states (see new_state) of the cells present now
    for i in range(num_cells):
        track = new_track(i + 1, radius * rng.uniform(*shape.sizes), rng.uniform(*shape.aspect))
        tracks.append(track)
        alive.append(new_state(rng, track, starts[i], rng.normal(0, 0.8, 2), birth=0))
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
                daughter = new_state(
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
                state["v"] = 0.85 * state["v"] + rng.normal(0, 0.45 * shape.speed, 2)
                if track.label in division_frames:
                    state["v"] *= 0.5 if t >= division_frames[track.label] - ramp_frames else 1
                state["p"] = state["p"] + state["v"]
            if state is exit_state:
                s = np.clip((t - t_out) / (t_back - t_out), 0, 1)
                out = 0.5 * (1 - np.cos(2 * np.pi * s))
                state["p"] = home + np.array([0.25 * radius * np.sin(0.3 * t), -reach * out])
            shape_at(state, t, ramp_frames, division_frames.get(track.label))

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


def new_state(rng, track, position, velocity, birth):
    """Mutable simulation state of one cell: position, velocity and deformation rhythm."""
    k = len(HARMONICS)
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


def shape_at(state, t, ramp_frames, division_frame):
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


def draw_cell(track, t, texture, half, nearest, labels, signal, flat=False):
    """Rasterize one cell of frame t where it is the nearest blob (normalized distance);
    `flat`: evenly bright, no nucleus (as a stained cytoplasm or a bead)."""
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
    distance = blob_distance(
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
    if flat:
        light = (track.cytoplasm + 0.5 * track.nucleus) * (1.0 + 0.1 * tex)
    else:
        light = track.cytoplasm * (0.9 + 0.2 * tex) * (1.0 - 0.25 * distance**2)
        light = light + track.nucleus * nucleus * (1.0 + 0.3 * tex)
    nearest[box][win] = distance[win]
    labels[box][win] = track.label
    signal[box][win] = np.maximum(light[win], 0.0)


def blob_distance(dy, dx, a, b, theta, waist, amplitude, phase):
    """Distance from the centre in units of the blob's radius at that angle: < 1 is inside."""
    angle = np.arctan2(dy, dx) - theta
    cos, sin = np.cos(angle), np.sin(angle)
    ellipse = a * b / np.sqrt((b * cos) ** 2 + (a * sin) ** 2)
    deform = 1.0
    for k, amp, ph in zip(HARMONICS, amplitude, phase, strict=True):
        deform = deform + amp * np.cos(k * angle - ph)
    # a narrow dip across the long axis pinches a dividing cell into a dumbbell
    pinch = 1.0 - 0.4 * waist * np.abs(sin) ** 6
    return np.hypot(dy, dx) / (ellipse * deform * pinch)


def scatter(rng, n, low, high, min_distance, tries=200):
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
