"""Showing what the engine wrote into the labels layer: only the displayed plane of a frame
that changed is re-coloured, and only its changed box goes to the canvas (not the whole
volume, as `Layer.refresh` would re-slice it and redo the thumbnail).

The engine writes into the layer's numpy data in place; this module tells napari which part
of the screen that changed. It uses the Labels layer's partial-update path (the one napari's
own painting uses); where that does not apply (3-D display, transposed axes, data that is
not numpy) it falls back to a full refresh.
"""

import weakref

import numpy as np
from napari.layers import Labels

from ..engine.stack_view import VideoAxisView


def displayed_frame(layer: Labels, view: VideoAxisView) -> int | None:
    """The frame (index along the propagated axis) whose plane the layer shows now; None
    when it shows a plane of another slice of the fixed axes. Raises AttributeError /
    ValueError where the partial path does not apply."""
    slice_input = layer._slice.slice_input
    ndim = layer.ndim
    if list(slice_input.displayed) != [ndim - 2, ndim - 1]:
        raise ValueError("not the last two axes displayed in 2-D")
    point = layer._get_pt_not_disp()
    frame = 0
    for axis in range(view.leading):
        if axis == view.video_axis:
            frame = int(point[axis])
        elif int(point[axis]) != int(view.fixed[axis]):
            return None
    return frame


class _Shown:
    """What the canvas shows of one layer's displayed plane: (plane index, a copy of the
    plane), as this module last sent it or napari last drew it all (a full refresh);
    forgotten after painting."""

    def __init__(self, layer: Labels) -> None:
        self.key: tuple | None = None
        self.plane: np.ndarray | None = None
        self._layer = weakref.ref(layer)
        layer.events.set_data.connect(self.drawn)
        layer.events.paint.connect(self.forget)

    def drawn(self, event=None) -> None:
        layer = self._layer()
        try:
            point = layer._get_pt_not_disp()
            self.key = tuple(int(point[axis]) for axis in range(layer.ndim - 2))
            self.plane = np.array(layer._slice.image.raw)
        except (AttributeError, KeyError, TypeError):
            self.forget()

    def forget(self, event=None) -> None:
        self.key = self.plane = None


_shown: "weakref.WeakKeyDictionary[Labels, _Shown]" = weakref.WeakKeyDictionary()


def watch(layer: Labels) -> None:
    """Follow what the canvas shows of `layer` from now on (call after it was drawn in
    full, e.g. when a session starts), so that the first change sends only its box."""
    state = _shown.get(layer)
    if state is None:
        state = _shown[layer] = _Shown(layer)
    state.drawn()


def show_frames(layer: Labels, view: VideoAxisView, frames) -> str:
    """Show frames the engine wrote: "plane" (the displayed plane's changed box was sent),
    "none" (none of them is displayed: nothing to draw) or "full" (a full refresh)."""
    try:
        if not layer.visible or not isinstance(layer.data, np.ndarray):
            raise ValueError("hidden, or data that is not numpy")
        shown = displayed_frame(layer, view)
    except (AttributeError, ValueError, KeyError):
        layer.refresh()
        return "full"
    if shown is None or shown not in {int(t) for t in frames}:
        return "none"
    image = layer._slice.image
    index = view.index(shown)
    raw = layer.data[index]
    if image.raw.shape != raw.shape or image.view.shape != raw.shape:
        layer.refresh()
        return "full"
    if not np.shares_memory(image.raw, raw):
        image.raw[...] = raw
    state = _shown.get(layer)
    if state is None:
        state = _shown[layer] = _Shown(layer)
    # napari's slice of numpy labels is a view of the data: the engine's writes are already
    # in it, so what changed is found against the plane as last sent
    box = (slice(0, raw.shape[0]), slice(0, raw.shape[1]))
    if state.key == index and state.plane is not None:
        changed = raw != state.plane
        if not changed.any():
            return "plane"
        rows = np.flatnonzero(changed.any(axis=1))
        cols = np.flatnonzero(changed.any(axis=0))
        box = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
    state.key, state.plane = index, raw.copy()
    colors = layer._raw_to_displayed(raw, data_slice=box)
    if not np.shares_memory(image.view, raw):
        image.view[box] = colors
    layer.events.labels_update(data=colors, offset=(box[0].start, box[1].start))
    return "plane"
