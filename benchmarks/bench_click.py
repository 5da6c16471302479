"""Speed of a further click on an already-encoded frame: ours against the reference video
predictor, with the same weights, frame tensors and clicks.

After a first click on frame 0 (which encodes the frame in both), each repeat replaces the
object's clicks there with a positive and a negative click, as a user refining a mask does;
both return logits at the frames' resolution. Prints the median milliseconds, the ratio
reference / ours (> 1: ours is faster), and where our click spends its time.
"""

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict
from unittest import mock

import numpy as np
import torch

from bench_propagation import CellStack, StepClock, build_pair, iou_floor, reference_frames
from napari_sam2.engine import Tracker, compositing
from napari_sam2.engine import tracker as tracker_module
from napari_sam2.engine.labels import LabelVolume

# our click's parts: model methods, and the engine functions the tracker calls
MODEL_STEPS = {
    "memory attention": "condition_on_memory",
    "prompt encoder + mask decoder": "predict_masks",
}
ENGINE_STEPS = {
    "hole filling": (tracker_module, "fill_holes"),
    "resize to the frame": (compositing, "to_frame_resolution"),
    "label compositing": (LabelVolume, "write_object"),
}


class EngineClock:
    """Seconds spent in engine functions, patched in place while the clock is open."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._patches = [
            mock.patch.object(owner, name, self._timed(step, getattr(owner, name)))
            for step, (owner, name) in ENGINE_STEPS.items()
        ]

    def _timed(self, step, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[step] += time.perf_counter() - start

        return timed

    def __enter__(self) -> "EngineClock":
        for patch in self._patches:
            patch.start()
        return self

    def __exit__(self, *exc) -> None:
        for patch in self._patches:
            patch.stop()


def clicks(stack: CellStack, repeat: int) -> tuple[np.ndarray, np.ndarray]:
    """A positive click near the first cell's centre and a negative one beside it, moved a
    little on each repeat so that no two clicks are the same."""
    x, y = stack.click(0)
    shift = float(repeat % 5)
    points = np.array([[x + shift, y - shift], [x + 40.0 + shift, y + 30.0]], dtype=np.float32)
    return points, np.array([1, 0], dtype=np.int32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="sam2.1_hiera_tiny")
    parser.add_argument("--image-size", type=int, default=1024, help="model input size S")
    parser.add_argument("--height", type=int, default=512, help="frame height H in pixels")
    parser.add_argument("--width", type=int, default=512, help="frame width W in pixels")
    parser.add_argument("--repeats", type=int, default=21, help="timed clicks per implementation")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--objects", type=int, default=1, help="objects already on the frame")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--precision", default="auto", help="our Tracker's (the reference runs float32)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    reference, model = build_pair(args.model, args.image_size, args.seed)
    stack = CellStack(2, args.height, args.width, args.seed)
    tracker = Tracker(model, stack, precision=args.precision)  # hole filling on, as by default
    unfilled = Tracker(model, stack, fill_hole_area=0, precision=args.precision)
    unfilled.features = tracker.features  # one encoding of frame 0 for both
    images = torch.stack([tracker.frame_tensor(t) for t in range(2)])
    with reference_frames(images, args.height, args.width):
        state = reference.init_state(video_path="synthetic")

    points, labels = clicks(stack, 0)
    with torch.inference_mode():
        for extra in range(2, args.objects + 1):  # other objects already on the frame
            for target in (tracker, unfilled):
                target.add_points(0, extra, [[30.0 * extra, 20.0]], [1])
            reference.add_new_points_or_box(state, 0, extra, [[30.0 * extra, 20.0]], [1])
        tracker.add_points(0, 1, points, labels)  # the first click encodes the frame
        unfilled.add_points(0, 1, points, labels)
        reference.add_new_points_or_box(state, 0, 1, points, labels)

    seconds = {"reference": [], "ours": [], "ours, no hole filling": []}
    # CPU time of this thread: with one torch thread, what the click costs whatever the load
    cpu = {name: [] for name in seconds}
    model_clock = StepClock(model, MODEL_STEPS)
    with EngineClock() as engine_clock:
        for repeat in range(args.repeats):
            points, labels = clicks(stack, repeat + 1)
            # alternate, so that a change of load hits all alike
            start, start_cpu = time.perf_counter(), time.thread_time()
            with torch.inference_mode():
                _, _, theirs = reference.add_new_points_or_box(state, 0, 1, points, labels)
            seconds["reference"].append(time.perf_counter() - start)
            cpu["reference"].append(time.thread_time() - start_cpu)
            start, start_cpu = time.perf_counter(), time.thread_time()
            unfilled_logits = unfilled.add_points(0, 1, points, labels)
            seconds["ours, no hole filling"].append(time.perf_counter() - start)
            cpu["ours, no hole filling"].append(time.thread_time() - start_cpu)
            before = dict(model_clock.seconds), dict(engine_clock.seconds)
            start, start_cpu = time.perf_counter(), time.thread_time()
            tracker.add_points(0, 1, points, labels)
            seconds["ours"].append(time.perf_counter() - start)
            cpu["ours"].append(time.thread_time() - start_cpu)
        parts = {
            **{k: model_clock.seconds[k] - before[0].get(k, 0.0) for k in MODEL_STEPS},
            **{k: engine_clock.seconds[k] - before[1].get(k, 0.0) for k in ENGINE_STEPS},
        }
    theirs = theirs[list(state["obj_ids"]).index(1), 0].numpy()
    union = ((theirs > 0) | (unfilled_logits > 0)).sum()
    iou = 1.0 if union == 0 else ((theirs > 0) & (unfilled_logits > 0)).sum() / union
    diff = float(np.abs(theirs - unfilled_logits).max())

    load = os.getloadavg()[0]
    print(
        f"{args.model} at {args.image_size}, {args.height} x {args.width} frames, "
        f"{args.objects} object(s) on the frame, {torch.get_num_threads()} torch threads, "
        f"load {load:.1f}, {args.repeats} clicks each; ours in {tracker.precision}"
    )
    reference_ms = 1000 * statistics.median(seconds["reference"])
    reference_cpu = statistics.median(cpu["reference"])
    print(
        "| implementation | median ms | min ms | reference / ours "
        "| CPU ms of this thread (median) | reference / ours, CPU |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, times in seconds.items():
        median = 1000 * statistics.median(times)
        cpu_median = statistics.median(cpu[name])
        print(
            f"| {name} | {median:.1f} | {1000 * min(times):.1f} | {reference_ms / median:.2f} "
            f"| {1000 * cpu_median:.1f} | {reference_cpu / cpu_median:.2f} |"
        )
    print(
        f"\nlast click, ours (no hole filling) against the reference: IoU {iou:.4f}, "
        f"max abs logit difference {diff:.2e}"
    )
    print("\nwhere our last click went (ms):")
    for name, value in parts.items():
        print(f"  {name}: {1000 * value:.1f}")
    print(f"  total: {1000 * seconds['ours'][-1]:.1f}")
    return 0 if iou >= iou_floor(tracker.precision) else 1


if __name__ == "__main__":
    sys.exit(main())
