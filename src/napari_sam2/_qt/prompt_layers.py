"""The napari layers the widget works through: clicks (Points), boxes (Shapes) and the
output Labels, created beside an image (same scale and translation) or adopted by name."""

import numpy as np
import pandas as pd
from napari.layers import Image, Labels, Points, Shapes

from ..engine.stack_view import VideoAxisView
from ..layer_prompts import FramePrompts, group_prompts

CLICKS = "SAM2 clicks"
BOXES = "SAM2 boxes"
LABELS = "SAM2 labels"
SIGN_COLORS = {1: "lime", 0: "magenta"}


def spatial_shape(image: Image) -> tuple[int, ...]:
    """The image's shape without the RGB channel."""
    shape = tuple(image.data.shape)
    return shape[:-1] if image.rgb else shape


def _placement(image: Image) -> dict:
    return {"scale": image.scale, "translate": image.translate}


def _features(**columns) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(values, dtype=int) for name, values in columns.items()})


def make_clicks(image: Image) -> Points:
    ndim = len(spatial_shape(image))
    return Points(
        np.empty((0, ndim)),
        ndim=ndim,
        name=CLICKS,
        features=_features(sign=[], object=[]),
        feature_defaults={"sign": 1, "object": 1},
        face_color="sign",
        face_color_cycle=SIGN_COLORS,
        border_color="black",
        size=max(4.0, min(spatial_shape(image)[-2:]) / 60),
        **_placement(image),
    )


def make_boxes(image: Image) -> Shapes:
    ndim = len(spatial_shape(image))
    return Shapes(
        ndim=ndim,
        name=BOXES,
        features=_features(object=[]),
        feature_defaults={"object": 1},
        edge_color="yellow",
        face_color="transparent",
        edge_width=max(1.0, min(spatial_shape(image)[-2:]) / 200),
        **_placement(image),
    )


def make_labels(image: Image) -> Labels:
    return Labels(
        np.zeros(spatial_shape(image), dtype=np.uint16),
        name=LABELS,
        opacity=0.5,
        **_placement(image),
    )


def fits(layer, image: Image, kind: type) -> bool:
    """Whether an existing layer can be adopted for this image."""
    if not isinstance(layer, kind):
        return False
    if isinstance(layer, Labels):
        return tuple(layer.data.shape) == spatial_shape(image)
    return layer.ndim == len(spatial_shape(image))


def label_frames(labels: Labels, view: VideoAxisView) -> np.ndarray:
    """The (T, H, W) view of the Labels data that the tracker writes into (no copy)."""
    index = tuple(
        slice(None) if axis == view.video_axis else view.fixed[axis] for axis in range(view.leading)
    )
    frames = labels.data[index]
    return frames[None] if view.video_axis is None else frames


def read_prompts(
    view: VideoAxisView, clicks: Points, boxes: Shapes
) -> dict[tuple[int, int], FramePrompts]:
    rectangles = [
        data for data, kind in zip(boxes.data, boxes.shape_type, strict=True) if kind == "rectangle"
    ]
    rect_objects = [
        obj
        for obj, kind in zip(boxes.features["object"], boxes.shape_type, strict=True)
        if kind == "rectangle"
    ]
    return group_prompts(
        view,
        clicks.data,
        clicks.features["sign"].to_numpy(),
        clicks.features["object"].to_numpy(),
        rectangles,
        rect_objects,
    )


def painted_frames(event, view: VideoAxisView) -> set[int]:
    """Frames touched by a Labels paint event (of the current slice of N-D data)."""
    frames: set[int] = set()
    axis = view.video_axis
    for atom in event.value:
        if hasattr(atom, "slice_key"):
            if axis is None:
                frames.add(0)
            else:
                key = atom.slice_key[axis]
                frames.update(range(key.start or 0, key.stop or view.shape[0]))
        else:
            indices = atom[0]
            if axis is None:
                frames.add(0)
            else:
                frames.update(int(i) for i in np.unique(np.asarray(indices[axis])))
    return frames
