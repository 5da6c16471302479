"""The frame on view encoded while the model loads.

A user who loads a model has been looking at a frame all along; its first click there should
not wait for the image encoder. Encoded in the background only once the session exists, the
first frame at tiny@1024 took 2.9-3.5 s on a 2-core CPU (the process's first encode is the
slowest, and it shares the cores with the layers' first draw), so a click 3 s after loading
still waited for it (docs/performance.md). So the loading worker encodes that frame right
after building the model, exactly as the new session's tracker would, and the session's
feature cache starts with it, unless the view changed meanwhile.
"""

from dataclasses import dataclass

import numpy as np

from ..engine import VideoAxisView
from ..engine.frame_encoding import encode_frame
from ..engine.frames import FrameSource
from ..engine.precision import resolve_precision
from ..errors import SAM2Error
from ..model import SAM2, FrameFeatures
from . import prompt_layers


@dataclass(frozen=True)
class ViewedFrame:
    """What a new session would track, read from the widget when loading starts: the image
    data, its video axis view, the contrast limits, the frame on view and the precision
    chosen (unresolved)."""

    data: object
    view: VideoAxisView
    limits: tuple[float, float] | None
    frame: int
    precision: str


@dataclass(frozen=True)
class EncodedAhead:
    viewed: ViewedFrame
    frames: FrameSource
    precision: str  # resolved
    features: FrameFeatures


def viewed_frame(host) -> ViewedFrame | None:
    """The frame the user looks at, as the session `host.start_session()` would make (None
    without an image or when its view cannot be made)."""
    image, engine = host.image, getattr(host, "engine_panel", None)
    if image is None or engine is None:
        return None
    leading = len(prompt_layers.spatial_shape(image)) - 2
    axis = host.data_panel.video_axis if leading else None
    fixed = [int(i) for i in host.viewer.dims.current_step[:leading]]
    try:
        view = VideoAxisView(image.data, axis, fixed, rgb=image.rgb)
    except SAM2Error:  # start_session reports it
        return None
    limits = None if image.rgb else tuple(float(v) for v in image.contrast_limits)
    frame = 0 if axis is None else int(host.viewer.dims.current_step[axis])
    precision = engine.precision.currentText()
    return ViewedFrame(image.data, view, limits, frame, precision)


def encode_ahead(model: SAM2, viewed: ViewedFrame | None) -> EncodedAhead | None:
    """In the loading worker: the viewed frame's features, or None (nothing viewed, or the
    encode failed: the session then encodes it as usual)."""
    if viewed is None:
        return None
    try:
        frames = FrameSource(viewed.view, model.image_size, None, viewed.limits)
        precision = resolve_precision(viewed.precision, model.device, model.image_size)
        features = encode_frame(model, frames, viewed.frame, precision)
    except Exception:  # a head start only: whatever failed, the session encodes it later
        return None
    return EncodedAhead(viewed, frames, precision, features)


def use_ahead(host, ahead: EncodedAhead | None) -> bool:
    """Put the features encoded while loading into the new session's feature cache when the
    session tracks what they were encoded for (same image data, view, contrast limits and
    precision). Whether they were used."""
    session, view = host.session, host.view
    if ahead is None or session is None or view is None or host.image is None:
        return False
    tracker, viewed = session.tracker, ahead.viewed
    same = (
        host.image.data is viewed.data
        and view.video_axis == viewed.view.video_axis
        # the same plane for that frame (the user may have moved along the video axis)
        and view.index(viewed.frame) == viewed.view.index(viewed.frame)
        and tracker.precision == ahead.precision
        and tracker.frames.image_size == ahead.frames.image_size
        and np.array_equal(tracker.frames.limits, ahead.frames.limits)
        and viewed.frame < tracker.num_frames
    )
    if same:
        tracker.features.get(viewed.frame, lambda _: ahead.features)
    return same
