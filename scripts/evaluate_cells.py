"""Score every-cell tracking against the classical baseline with py-ctcmetrics on generated
time-lapses of dividing cells (the figures in docs/cells.md).

    python scripts/evaluate_cells.py [--model demo] [--seeds truth|auto] [--set sample]
        [--stacks 4] [--errors]

For each stack: ground truth written in CTC format, the classical baseline
(`napari_sam2.baseline`), and SAM 2 seeded on frame 0 (from the true labels, or automatic
masks) with divisions; prints Valid, DET, SEG, TRA and BC(0..2) per stack and the mean, and
with --errors the TRA graph's error counts (AOGM: split nodes, false negatives and positives,
redundant, missing and wrong edges) and the division TP/FP/FN at one frame's tolerance.
Sets: `sample` (the six stacks of docs/cells.md's first table), `tuning` (what the tracker's
rules were chosen on), `held-out` (never looked at while choosing).
"""

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_sam2 import synthetic
from napari_sam2.baseline import classical_tracking
from napari_sam2.engine import Tracker
from napari_sam2.engine.automatic_masks import settings_for_model
from napari_sam2.engine.cell_tracking import track_cells
from napari_sam2.io.ctc import write_ctc, write_ctc_ground_truth
from napari_sam2.model import build_model

METRICS = ("Valid", "DET", "SEG", "TRA", "BC(0)", "BC(1)", "BC(2)")
ERRORS = ("AOGM_NS", "AOGM_FN", "AOGM_FP", "AOGM_ED", "AOGM_EA", "AOGM_EC")
DIVISIONS = ("tp_div(1)", "fp_div(1)", "fn_div(1)")
STACK_SETS = {  # (seed, generator options): the sample's size, crowded, dimmer and noisier...
    "sample": (
        (101, {}),
        (102, {"num_cells": 12, "num_divisions": 4}),
        (103, {"brightness": 120.0, "read_noise": 8.0}),
        (104, {"num_cells": 6, "num_divisions": 3, "height": 192, "width": 192}),
        (105, {"num_frames": 30}),
        (106, {"num_cells": 10, "num_divisions": 3, "bleaching": 0.03}),
    ),
    "tuning": (
        (201, {}),
        (202, {"num_cells": 12, "num_divisions": 4}),
        (203, {"brightness": 120.0, "read_noise": 8.0}),
        (204, {"num_cells": 6, "num_divisions": 3, "height": 192, "width": 192}),
        (205, {"cell_radius": 11.0, "num_cells": 12, "num_divisions": 3}),
        (206, {"num_cells": 10, "num_divisions": 3, "bleaching": 0.03}),
    ),
    "held-out": (
        (301, {}),
        (302, {"num_cells": 14, "num_divisions": 4}),
        (303, {"brightness": 150.0, "read_noise": 6.0}),
        (304, {"num_cells": 5, "num_divisions": 3, "height": 192, "width": 192}),
        (305, {"cell_radius": 12.0, "num_cells": 10, "num_divisions": 4}),
        (306, {"num_cells": 9, "num_divisions": 3, "bleaching": 0.025}),
    ),
}
STACKS = STACK_SETS["sample"]


def score(result: Path, truth: Path) -> dict:
    from ctc_metrics import evaluate_sequence

    with contextlib.redirect_stdout(io.StringIO()):
        return evaluate_sequence(
            str(result), str(truth), metrics=list(METRICS[:4]) + ["BC"], threads=1
        )


def _cell(value) -> str:
    if value is None:
        return "  None"
    return f"{value:6d}" if isinstance(value, int) else f"{value:6.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--seeds", default="truth", choices=("truth", "auto"))
    parser.add_argument("--set", default="sample", choices=tuple(STACK_SETS))
    parser.add_argument("--stacks", type=int, default=len(STACKS))
    parser.add_argument("--errors", action="store_true", help="also print AOGM error counts")
    parser.add_argument(
        "--non-overlap",
        default="auto",
        choices=("auto", "yes", "no"),
        help="keep tracked cells apart (auto: the model's catalogue default, yes for demo)",
    )
    args = parser.parse_args()
    columns = METRICS + (ERRORS + DIVISIONS if args.errors else ())
    torch.set_num_threads(1)
    model = build_model(args.model)
    header = f"{'stack':>6} {'method':>9} " + " ".join(f"{m[-6:]:>6}" for m in columns)
    header += "  seconds"
    print(header)
    totals: dict[str, list] = {"baseline": [], "sam2": []}
    non_overlap = None if args.non_overlap == "auto" else args.non_overlap == "yes"
    for seed, options in STACK_SETS[args.set][: args.stacks]:
        options = {"num_frames": 40, "height": 256, "width": 256, "num_cells": 8, **options}
        stack = synthetic.timelapse(seed=seed, **options)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_ctc_ground_truth(folder / "gt", stack.labels, stack.lineage)
            start = time.perf_counter()
            write_ctc(folder / "baseline", *classical_tracking(stack.frames))
            runs = {"baseline": time.perf_counter() - start}
            start = time.perf_counter()
            seeds = stack.labels[0].astype(np.int32) if args.seeds == "truth" else "auto"
            result, _ = track_cells(
                Tracker(model, stack.frames, non_overlap=non_overlap),
                0,
                seeds,
                mask_settings=settings_for_model(model.config.name),
            )
            write_ctc(folder / "sam2", result.labels, result.lineage)
            runs["sam2"] = time.perf_counter() - start
            for method, seconds in runs.items():
                metrics = score(folder / method, folder / "gt")
                values = [metrics.get(m) for m in columns]
                totals[method].append(values)
                cells = " ".join(_cell(v) for v in values)
                print(f"{seed:>6} {method:>9} {cells}  {seconds:7.1f}", flush=True)
    for method, rows in totals.items():
        means = np.array([[np.nan if v is None else v for v in row] for row in rows]).mean(0)
        print(f"{'mean':>6} {method:>9} " + " ".join(f"{v:6.3f}" for v in means), flush=True)


if __name__ == "__main__":
    main()
