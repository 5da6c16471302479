"""Where a stack's results go in the output folder (`<stem>.labels.tif`, `<stem>.ctc/`) and
whether the ones already there are complete, so that a rerun can skip that stack."""

from pathlib import Path

import numpy as np

from ..errors import SAM2Error

# longest first, so "cells.ome.tif" has the stem "cells", not "cells.ome"
STACK_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".btf", ".tf8")
STACK_SUFFIXES += (".npy", ".zarr")
LABELS_SUFFIX = ".labels.tif"
CTC_SUFFIX = ".ctc"
CTC_TRACKS = "res_track.txt"


def stack_stem(stack: str | Path) -> str:
    """The name that a stack's outputs and per-stack inputs share: the file name without its
    image suffix ("run1/cells.ome.tif" -> "cells")."""
    name = Path(stack).name
    for suffix in STACK_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(name).stem or name


def labels_path(folder: Path, stem: str) -> Path:
    return folder / f"{stem}{LABELS_SUFFIX}"


def ctc_path(folder: Path, stem: str) -> Path:
    return folder / f"{stem}{CTC_SUFFIX}"


def read_back(labels: Path, ctc: Path | None = None) -> tuple[tuple[int, int, int], int]:
    """The shape (frames, height, width) and number of objects of a finished stack's label
    TIFF, after checking that it reads back whole and, with `ctc`, that the CTC folder has one
    mask file per frame and its track file. Raises SAM2Error saying what is missing."""
    from ..io import read_labels

    volume, _ = read_labels(labels)
    if volume.ndim != 3:
        raise SAM2Error(f"{labels.name} holds {volume.ndim} axes, not (frames, height, width)")
    frames = int(volume.shape[0])
    if ctc is not None:
        masks = list(ctc.glob("mask*.tif")) if ctc.is_dir() else []
        if len(masks) != frames or not (ctc / CTC_TRACKS).is_file():
            raise SAM2Error(
                f"{ctc.name} is incomplete: {len(masks)} mask files for {frames} frames"
            )
    shape = (frames, int(volume.shape[1]), int(volume.shape[2]))
    return shape, int(np.count_nonzero(np.unique(volume)))


def finished_outputs(
    labels: Path, ctc: Path | None, expected_shape: tuple[int, int, int]
) -> int | None:
    """The number of objects if the outputs already there are complete for a video of
    `expected_shape` (T, H, W), else None (missing, unreadable, or of another shape)."""
    if not labels.is_file():
        return None
    try:
        shape, objects = read_back(labels, ctc)
    except SAM2Error:
        return None
    return objects if shape == tuple(expected_shape) else None
