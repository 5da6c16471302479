"""Time-lapses from a second, deliberately plain generator, written apart from
`napari_sam2.synthetic` so that the demo model can be scored on cells it was not trained to
look like: evenly bright ellipses (or ellipses a little brighter inside) with a blurred edge,
Gaussian noise, a persistent random walk without contact forces (cells may cross), one
division half-way. Used by `evaluate_demo.py --sections independent`.
"""

import numpy as np
from scipy import ndimage

from napari_sam2.training import LabelledStack


def independent_timelapse(
    seed: int,
    kind: str = "ellipse",
    num_frames: int = 30,
    size: int = 256,
    num_cells: int = 8,
    radius: tuple[float, float] = (7.0, 16.0),
    speed: float = 1.5,
    noise: float = 0.06,
) -> LabelledStack:
    """kind "ellipse": a soft gradient inside each cell; "flat": evenly bright. Intensities
    in [0, 1] before noise, background 0.1, scaled to uint16."""
    if kind not in ("ellipse", "flat"):
        raise ValueError(f"kind must be ellipse or flat, got {kind!r}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    cells: list[dict] = []
    for _ in range(2000):  # non-overlapping starts
        if len(cells) == num_cells:
            break
        r = rng.uniform(*radius)
        c = rng.uniform(r + 4, size - r - 4, 2)
        if all(np.hypot(*(c - d["c"])) > r + d["r"] + 3 for d in cells):
            cells.append(
                {"id": len(cells) + 1, "c": c, "r": r, "aspect": rng.uniform(1.0, 1.6),
                 "theta": rng.uniform(0, np.pi), "level": rng.uniform(0.5, 1.0),
                 "v": rng.normal(0, speed, 2)}
            )  # fmt: skip
    lineage: dict[int, int] = {}
    next_id = len(cells) + 1
    frames = np.zeros((num_frames, size, size), np.float32)
    labels = np.zeros((num_frames, size, size), np.uint16)
    for t in range(num_frames):
        if t == num_frames // 2 and cells:
            mother = max(cells, key=lambda d: d["r"])
            cells.remove(mother)
            angle = rng.uniform(0, np.pi)
            offset = np.array([np.sin(angle), np.cos(angle)]) * mother["r"] * 0.55
            for sign in (1, -1):
                cells.append(
                    {"id": next_id, "c": mother["c"] + sign * offset, "r": mother["r"] * 0.72,
                     "aspect": 1.1, "theta": angle, "level": mother["level"],
                     "v": sign * offset / 4}
                )  # fmt: skip
                lineage[next_id] = mother["id"]
                next_id += 1
        image = np.full((size, size), 0.1, np.float32)
        for d in cells:
            d["v"] = 0.8 * d["v"] + rng.normal(0, speed * 0.5, 2)
            d["c"] = np.clip(d["c"] + d["v"], d["r"], size - d["r"])
            d["theta"] += rng.normal(0, 0.05)
            a, b = d["r"] * np.sqrt(d["aspect"]), d["r"] / np.sqrt(d["aspect"])
            dy, dx = yy - d["c"][0], xx - d["c"][1]
            u = dx * np.cos(d["theta"]) + dy * np.sin(d["theta"])
            w = -dx * np.sin(d["theta"]) + dy * np.cos(d["theta"])
            q = (u / a) ** 2 + (w / b) ** 2
            inside = q <= 1
            if kind == "flat":
                image[inside] = 0.1 + d["level"]
            else:
                shade = 0.1 + d["level"] * (0.75 + 0.25 * (1 - q[inside]))
                image[inside] = np.maximum(image[inside], shade)
            labels[t][inside] = d["id"]  # a cell drawn later covers an earlier one
        frames[t] = ndimage.gaussian_filter(image, 1.0) + rng.normal(0, noise, image.shape)
    frames = np.clip(frames, 0, None)
    return LabelledStack((frames / frames.max() * 4000).astype(np.uint16), labels, lineage)
