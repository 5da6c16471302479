"""napari sample data: a synthetic cell time-lapse and a synthetic nuclei z-stack."""

from . import synthetic


def timelapse() -> list[tuple]:
    stack = synthetic.timelapse()
    return [
        (stack.frames, {"name": "synthetic time-lapse", "axis_labels": tuple(stack.axes)}, "image"),
    ]


def zstack() -> list[tuple]:
    stack = synthetic.zstack()
    return [
        (stack.frames, {"name": "synthetic z-stack", "axis_labels": tuple(stack.axes)}, "image"),
    ]
