"""Test helpers: ground truth of synthetic dividing cells in CTC format (from io.ctc), and
scoring a result folder against it with py-ctcmetrics."""

import contextlib
import io
from pathlib import Path


def score(result: Path, ground_truth: Path) -> dict:
    """py-ctcmetrics' Valid, DET, SEG, TRA and BC(i) of a result folder (its stdout hidden)."""
    from ctc_metrics import evaluate_sequence

    with contextlib.redirect_stdout(io.StringIO()):
        return evaluate_sequence(
            str(result), str(ground_truth), metrics=["Valid", "DET", "SEG", "TRA", "BC"], threads=1
        )
