"""Test helpers: ground truth of synthetic dividing cells in CTC format (from io.ctc), and
scoring a result folder against it with py-ctcmetrics; a small dividing label volume."""

import contextlib
import io
from pathlib import Path

import numpy as np


def score(result: Path, ground_truth: Path) -> dict:
    """py-ctcmetrics' Valid, DET, SEG, TRA and BC(i) of a result folder (its stdout hidden)."""
    from ctc_metrics import evaluate_sequence

    with contextlib.redirect_stdout(io.StringIO()):
        return evaluate_sequence(
            str(result), str(ground_truth), metrics=["Valid", "DET", "SEG", "TRA", "BC"], threads=1
        )


def dividing_volume() -> np.ndarray:
    """(6, 16, 16) labels: object 1 divides into 5 and 6 at frame 3; object 2 is gone on
    frames 2-3 and back on 4-5."""
    labels = np.zeros((6, 16, 16), dtype=np.int32)
    labels[0:3, 2:6, 2:6] = 1
    labels[3:6, 1:4, 1:4] = 5
    labels[3:6, 8:12, 8:12] = 6
    labels[0:2, 10:14, 2:6] = 2
    labels[4:6, 10:14, 2:6] = 2
    return labels
