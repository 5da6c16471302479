"""Prompts documents and a `Tracker`: check that prompts fit a stack, give them to a
tracker, and read a tracker's prompts back in frame pixels (to save a session)."""

import numpy as np

from .json_fields import JsonFields
from .prompts import FramePrompts, Prompts


def check_prompts_fit(
    prompts: Prompts, num_frames: int, height: int, width: int, source: str = "prompts"
) -> None:
    """Raise a SAM2Error naming the field of the first prompt outside the stack."""
    f = JsonFields(source)
    if prompts.frame_shape is not None and tuple(prompts.frame_shape) != (height, width):
        f.fail(
            "frame_shape",
            f"the prompts were made on {prompts.frame_shape[0]} x {prompts.frame_shape[1]} "
            f"(H x W) frames, the stack's frames are {height} x {width}",
        )
    for i, obj in enumerate(prompts.objects):
        for t, frame in obj.frames.items():
            where = f"objects[{i}].frames['{t}']"
            if t >= num_frames:
                f.fail(where, f"frame {t} is outside the stack of {num_frames} frames")
            for j, (x, y, _) in enumerate(frame.points):
                if not (0 <= x <= width and 0 <= y <= height):
                    f.fail(
                        f"{where}.points[{j}]",
                        f"(x={x:g}, y={y:g}) is outside the {width} x {height} (W x H) frame",
                    )
            if frame.box is not None:
                x0, y0, x1, y1 = frame.box
                if not all(0 <= x <= width for x in (x0, x1)) or not all(
                    0 <= y <= height for y in (y0, y1)
                ):
                    f.fail(
                        f"{where}.box",
                        f"[{x0:g}, {y0:g}, {x1:g}, {y1:g}] reaches outside the {width} x "
                        f"{height} (W x H) frame",
                    )
            if frame.mask is not None and frame.mask.shape != (height, width):
                f.fail(
                    f"{where}.mask",
                    f"size {list(frame.mask.shape)} differs from the frames' [{height}, {width}]",
                )


def apply_prompts(tracker, prompts: Prompts, source: str = "prompts") -> None:
    """Give every prompt to a `Tracker`, frame by frame in order; checked against the stack
    first, so a bad prompt changes nothing."""
    check_prompts_fit(prompts, tracker.num_frames, tracker.height, tracker.width, source)
    for obj in prompts.objects:
        for t, frame in sorted(obj.frames.items()):
            apply_frame(tracker, t, obj.id, frame)


def apply_frame(tracker, t: int, obj_id: int, frame: FramePrompts) -> None:
    """Make `frame` the prompts of one object on frame t (empty prompts clear it)."""
    if frame.mask is not None:
        tracker.add_mask(t, obj_id, frame.mask)
        return
    # clicks and box in one call, as one interaction: the model sees them together
    xy = [(x, y) for x, y, _ in frame.points]
    labels = [label for _, _, label in frame.points]
    tracker.set_prompts(t, obj_id, xy, labels, box=frame.box)


def prompts_from_tracker(tracker, **fields) -> Prompts:
    """The prompts a `Tracker` holds, back in frame pixels.

    Points and boxes come back exactly (to float rounding); masks come back from the
    model's input size, so a mask prompt is only as fine as that grid. fields: the
    optional `Prompts` fields to set (model, video_axis, normalization).
    """
    import torch

    height, width, size = tracker.height, tracker.width, tracker.model.image_size
    scale = np.array([width / size, height / size])
    prompts = Prompts(frame_shape=(height, width), **fields)
    for obj_id, state in sorted(tracker.objects.items()):
        obj = prompts.object(obj_id)
        for t, prompt in sorted(state.prompts.items()):
            frame = FramePrompts()
            if prompt.mask is not None:
                mask = torch.nn.functional.interpolate(
                    prompt.mask.float().cpu(), size=(height, width), mode="nearest"
                )
                frame.mask = mask[0, 0].numpy() > 0.5
            if prompt.box is not None:
                corners = prompt.box.cpu().numpy().reshape(2, 2) * scale
                frame.box = tuple(round(float(v), 3) for v in corners.reshape(4))
            if prompt.point_coords is not None:
                coords = prompt.point_coords.cpu().numpy().reshape(-1, 2) * scale
                labels = prompt.point_labels.cpu().numpy().reshape(-1)
                frame.points = [
                    (round(float(x), 3), round(float(y), 3), int(label))
                    for (x, y), label in zip(coords, labels, strict=True)
                ]
            obj.frames[t] = frame
    return prompts
