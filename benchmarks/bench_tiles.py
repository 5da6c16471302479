"""Tiles against one whole frame: mask J and cost of tracking small cells on frames much larger
than the model input, with tiles at native resolution and without (the frame shrunk into the
input).

A synthetic time-lapse (napari_sam2.synthetic.timelapse, 300 cells of ~15 pixels by default on
2048 x 2048) is written once; each mode then runs in a fresh process (so its peak memory is its
own): `--objects` cells spread over the frame are prompted with their ground-truth mask on
frame 0, or clicked at their centroid (`--prompt click`), and tracked forward. J is the mean
IoU with the ground truth over those cells and frames 1..T-1 (a cell absent from the truth on a
frame is skipped there).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_stack(args, folder: Path) -> Path:
    from napari_sam2.synthetic import timelapse

    stack = timelapse(
        num_frames=args.frames,
        height=args.size,
        width=args.size,
        num_cells=args.cells,
        seed=args.seed,
        cell_radius=args.cell_diameter / 2,
        num_divisions=0,
        leaving=False,
        drift=(0.0, args.drift),
    )
    np.save(folder / "frames.npy", stack.frames)
    np.save(folder / "labels.npy", stack.labels)
    return folder


def run_mode(args) -> dict:
    """One mode in this process: build, prompt, track; J, seconds, peak RSS."""
    import torch

    from napari_sam2.engine import Tracker
    from napari_sam2.engine.tiled_tracking import TiledTracker
    from napari_sam2.model import build_model

    torch.set_num_threads(args.threads)
    folder = Path(args.folder)
    frames = np.load(folder / "frames.npy", mmap_mode="r")
    truth = np.load(folder / "labels.npy", mmap_mode="r")
    model = build_model(args.model)
    start = time.perf_counter()
    if args.mode == "tiles":
        tracker = TiledTracker(model, frames, tile=args.tile or model.image_size)
    else:
        tracker = Tracker(model, frames)
    present = [int(i) for i in np.unique(truth[0]) if i]
    # cells spread over the frame: every k-th id (ids are placed at random)
    ids = present[:: max(1, len(present) // args.objects)][: args.objects]
    for obj_id in ids:
        mask = truth[0] == obj_id
        if args.prompt == "mask":
            tracker.add_mask(0, obj_id, mask)
        else:
            ys, xs = np.nonzero(mask)
            tracker.add_points(0, obj_id, [[xs.mean(), ys.mean()]], [1])
    for _ in tracker.propagate("forward"):
        pass
    seconds = time.perf_counter() - start
    labels = tracker.labels()
    scores = []
    for t in range(1, len(frames)):
        for obj_id in ids:
            cell = truth[t] == obj_id
            if not cell.any():
                continue
            found = labels[t] == obj_id
            scores.append((cell & found).sum() / (cell | found).sum())
    # VmHWM: this process's own peak (ru_maxrss may carry the parent's over fork and exec)
    status = Path("/proc/self/status").read_text().split("VmHWM:")[1]
    peak_kib = int(status.split()[0])
    windows = len(tracker.windows) if args.mode == "tiles" else 1
    return {
        "mode": args.mode,
        "objects": len(ids),
        "J": float(np.mean(scores)) if scores else 0.0,
        "seconds": seconds,
        "peak_rss_mib": peak_kib / 1024,
        "windows": windows,
        "handovers": getattr(tracker, "handovers", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo")
    parser.add_argument("--size", type=int, default=2048, help="frame height and width")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--cells", type=int, default=300, help="cells in the stack")
    parser.add_argument("--objects", type=int, default=24, help="cells prompted and tracked")
    parser.add_argument("--cell-diameter", type=float, default=15.0)
    parser.add_argument("--tile", type=int, help="tile size (default: the model input size)")
    parser.add_argument(
        "--drift", type=float, default=0.0, help="stage drift in x, pixels per frame"
    )
    parser.add_argument("--prompt", choices=("mask", "click"), default="mask")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--modes", default="whole,tiles", help="whole, tiles or both, comma-separated"
    )
    parser.add_argument("--mode", choices=("tiles", "whole"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:  # a child process: one mode, its result as JSON on the last line
        print(json.dumps(run_mode(args)))
        return
    modes = args.modes.split(",")
    if not modes or not set(modes) <= {"whole", "tiles"}:
        parser.error(f"--modes takes whole, tiles or whole,tiles; got {args.modes!r}")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        make_stack(args, Path(folder))
        results = []
        for mode in modes:
            command = [sys.executable, __file__, *sys.argv[1:], "--mode", mode, "--folder", folder]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
    load_after = os.getloadavg()
    print(
        f"{args.model}, {args.frames} frames of {args.size} x {args.size}, {args.cells} cells of "
        f"~{args.cell_diameter:g} px ({args.objects} tracked), drift {args.drift:g} px/frame, "
        f"{args.prompt} prompts on frame 0, "
        f"{args.threads} thread(s)"
    )
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    print("| mode | windows | objects | J (frames 1..T-1) | seconds | peak RSS MiB | hand-overs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['mode']} | {r['windows']} | {r['objects']} | {r['J']:.3f} | "
            f"{r['seconds']:.1f} | {r['peak_rss_mib']:.0f} | {r['handovers']} |"
        )
    by_mode = {r["mode"]: r for r in results}
    if set(by_mode) != {"whole", "tiles"}:
        return
    whole, tiles = by_mode["whole"], by_mode["tiles"]
    print(
        f"tiles / whole: J {tiles['J'] - whole['J']:+.3f}, seconds x"
        f"{tiles['seconds'] / whole['seconds']:.2f}, peak RSS x"
        f"{tiles['peak_rss_mib'] / whole['peak_rss_mib']:.2f}"
    )


if __name__ == "__main__":
    main()
