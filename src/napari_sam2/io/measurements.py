"""Per object and frame region properties (scikit-image `regionprops_table`) of a label
volume over the raw stack, in physical units when the stack has a pixel size."""

import csv
from pathlib import Path

import numpy as np

from .atomic import atomic_output

PROPERTIES = (
    "label",
    "area",
    "centroid",
    "bbox",
    "intensity_mean",
    "intensity_max",
    "eccentricity",
    "solidity",
)


def measure(
    labels: np.ndarray,
    frames,
    spacing: dict[str, float] | None = None,
    unit: str | None = None,
) -> dict[str, list]:
    """Columns (name -> values) with one row per object and frame.

    labels: (T, H, W) integers; frames: the raw (T, H, W) or (T, H, W, C) stack (any
    array-like, read a frame at a time); spacing: pixel size per axis letter ("Y", "X"),
    applied to area, centroid and bounding box when both are given, with `unit`.
    """
    from skimage.measure import regionprops_table

    spacing = spacing or {}
    sy, sx = spacing.get("Y"), spacing.get("X")
    physical = sy is not None and sx is not None
    scale = (sy, sx) if physical else (1.0, 1.0)
    table: dict[str, list] = {}
    for t in range(labels.shape[0]):
        plane = np.asarray(labels[t])
        if not plane.any():
            continue
        intensity = np.asarray(frames[t])
        props = regionprops_table(
            plane.astype(np.int32),
            intensity_image=intensity,
            properties=PROPERTIES,
            spacing=scale,
        )
        count = len(props["label"])
        columns = {"frame": [t] * count, "object": list(props.pop("label"))}
        for name, values in props.items():
            name = _column_name(name)
            if name.startswith("bbox_"):  # regionprops leaves the box in pixel indices
                values = np.asarray(values) * (scale[0] if name.endswith("y") else scale[1])
            columns[name] = list(values)
        columns["unit"] = [unit if physical and unit else "pixel"] * count
        for name, values in columns.items():
            table.setdefault(name, []).extend(values)
    return table


def _column_name(name: str) -> str:
    """regionprops names made readable: centroid-0 -> centroid_y, bbox-2 -> bbox_max_y."""
    axes = {"centroid": ("y", "x"), "bbox": ("min_y", "min_x", "max_y", "max_x")}
    base, _, index = name.partition("-")
    if base in axes and index.isdigit():
        return f"{base}_{axes[base][int(index)]}"
    return name.replace("-", "_channel")


def write_measurements_csv(
    path: str | Path, table: dict[str, list], overwrite: bool = False
) -> Path:
    """Write `measure`'s columns as CSV (a header, one row per object and frame)."""
    names = list(table)
    rows = zip(*(table[name] for name in names), strict=True)
    with atomic_output(path, overwrite) as temporary, temporary.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(names)
        for row in rows:
            writer.writerow(f"{v:.6g}" if isinstance(v, float | np.floating) else v for v in row)
    return Path(path)
