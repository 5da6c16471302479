"""Test helpers: ground truth of synthetic dividing cells in CTC format, and scoring a result
folder against it with py-ctcmetrics."""

import contextlib
import io
from pathlib import Path

import numpy as np
import tifffile

from napari_sam2.io.ctc import ctc_tracks


def write_ground_truth(folder: Path, labels: np.ndarray, lineage: dict[int, int]) -> Path:
    """TRA/man_track.txt + man_trackNNN.tif and SEG/man_segNNN.tif (every frame) for labels."""
    relabelled, tracks = ctc_tracks(labels, lineage)
    (folder / "TRA").mkdir(parents=True)
    (folder / "SEG").mkdir()
    for t, plane in enumerate(relabelled):
        tifffile.imwrite(folder / "TRA" / f"man_track{t:03d}.tif", plane)
        tifffile.imwrite(folder / "SEG" / f"man_seg{t:03d}.tif", plane)
    lines = "".join(f"{k.label} {k.begin} {k.end} {k.parent}\n" for k in tracks)
    (folder / "TRA" / "man_track.txt").write_text(lines)
    return folder


def score(result: Path, ground_truth: Path) -> dict:
    """py-ctcmetrics' Valid, DET, SEG, TRA and BC(i) of a result folder (its stdout hidden)."""
    from ctc_metrics import evaluate_sequence

    with contextlib.redirect_stdout(io.StringIO()):
        return evaluate_sequence(
            str(result), str(ground_truth), metrics=["Valid", "DET", "SEG", "TRA", "BC"], threads=1
        )
