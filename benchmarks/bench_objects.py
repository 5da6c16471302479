"""Many objects: seconds per tracked frame for 1, 8, 32 ... objects, ours (all objects of a
frame in batches) against the reference video predictor (one object at a time), with the
same weights, frame tensors and clicks; the masks must agree.

Every object is clicked on frame 0 (a point on a grid over the frame); then both propagate
forward through the stack, and only the propagation is timed (the clicks encode frame 0 in
both). Each object count runs in turn, ours then the reference, so a change of load falls on
both. `--ours-only` gives our cost per frame for counts the reference would take too long on,
against one object.
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

from bench_propagation import CellStack, build_pair, iou_floor, mask_iou, reference_frames
from napari_sam2.engine import Tracker


def grid_clicks(count: int, height: int, width: int) -> list[list[float]]:
    """(x, y) of `count` clicks spread over the frame on a regular grid."""
    side = int(np.ceil(np.sqrt(count)))
    xs = (np.arange(side) + 0.5) * width / side
    ys = (np.arange(side) + 0.5) * height / side
    return [[float(xs[i % side]), float(ys[i // side])] for i in range(count)]


def run_ours(model, stack, clicks, batch_size, precision):
    tracker = Tracker(model, stack, fill_hole_area=0, batch_size=batch_size, precision=precision)
    for obj_id, xy in enumerate(clicks, 1):
        tracker.add_points(0, obj_id, [xy], [1])
    start = time.perf_counter()
    masks = {t: logits > 0 for t, _, logits in tracker.propagate("forward")}
    return time.perf_counter() - start, masks, tracker


def run_reference(reference, tracker, clicks):
    images = torch.stack([tracker.frame_tensor(t) for t in range(tracker.num_frames)])
    with reference_frames(images, tracker.height, tracker.width):
        state = reference.init_state(video_path="frames given by the benchmark")
        for obj_id, xy in enumerate(clicks, 1):
            reference.add_new_points_or_box(state, 0, obj_id, np.array([xy]), np.array([1]))
        start = time.perf_counter()
        masks = {
            t: (logits[:, 0] > 0).numpy() for t, _, logits in reference.propagate_in_video(state)
        }
    return time.perf_counter() - start, masks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="sam2.1_hiera_tiny")
    parser.add_argument("--image-size", type=int, default=512, help="model input size S")
    parser.add_argument("--frames", type=int, default=4, help="stack length T")
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--objects", default="1,8,32", help="object counts, comma-separated")
    parser.add_argument("--batch-size", type=int, default=None, help="ours (default: automatic)")
    parser.add_argument("--ours-only", action="store_true", help="skip the reference")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision", default="auto", help="our Tracker's (the reference runs float32)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    counts = [int(c) for c in args.objects.split(",")]
    reference, model = build_pair(args.model, args.image_size, args.seed)
    stack = CellStack(args.frames, args.height, args.width, args.seed)
    tracked = args.frames - 1  # frame 0 is the prompted frame
    print(
        f"{args.model} at {args.image_size}, {args.frames} frames of {args.height} x "
        f"{args.width}, {torch.get_num_threads()} torch threads, load at start "
        f"{os.getloadavg()[0]:.1f}; seconds per tracked frame (propagation only)"
    )
    print(
        "| objects | reference s/frame | ours s/frame | reference / ours | ours / ours at 1 "
        "object | min mask IoU |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    ok, ours_one = True, None
    for count in counts:
        clicks = grid_clicks(count, args.height, args.width)
        ours_s, ours_masks, tracker = run_ours(
            model, stack, clicks, args.batch_size, args.precision
        )
        ours_per_frame = ours_s / tracked
        if count == 1 or ours_one is None:
            ours_one = ours_per_frame if count == 1 else None
        relative = "" if ours_one is None else f"{ours_per_frame / ours_one:.1f}"
        if args.ours_only:
            print(f"| {count} | | {ours_per_frame:.2f} | | {relative} | |")
            continue
        theirs_s, theirs_masks = run_reference(reference, tracker, clicks)
        iou = min(
            mask_iou(ours_masks[t][k], theirs_masks[t][k]) for t in ours_masks for k in range(count)
        )
        ok &= iou >= iou_floor(tracker.precision)
        print(
            f"| {count} | {theirs_s / tracked:.2f} | {ours_per_frame:.2f} | "
            f"{theirs_s / ours_s:.2f} | {relative} | {iou:.4f} |"
        )
    print(f"ours ran in {tracker.precision}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
