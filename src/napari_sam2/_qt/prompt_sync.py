"""The clicks, boxes and labels layers kept in step with the session: the layers made or
adopted for an image, prompt edits sent to the session (in a worker, or at once for a quick
click), paint recorded, and the session's or a file's prompts shown in the layers."""

from collections.abc import Iterable
from typing import TYPE_CHECKING

import napari
import numpy as np
import pandas as pd
from qtpy.QtCore import QTimer

from ..errors import SAM2Error
from ..io.prompts import FramePrompts, Prompts
from ..layer_prompts import changed_prompts
from . import prompt_layers, quick_clicks
from .plane_refresh import show_frames
from .shortcuts import SHORTCUTS

if TYPE_CHECKING:
    from .widget import SAM2Widget


class PromptSync:
    """The layers <-> session link of one dock widget (`host`), which holds the layers
    (`clicks`, `boxes`, `labels`) and the session; `applied` is what was last sent."""

    def __init__(self, host: "SAM2Widget") -> None:
        self.host = host
        # the layer prompts last sent to the session, per (frame, object)
        self.applied: dict[tuple[int, int], FramePrompts] = {}
        self.again = False  # prompts changed while a job ran: sync once it is done

    def after_job(self) -> None:
        """A job finished: send what changed meanwhile."""
        if self.again:
            self.again = False
            self.sync()

    def adopt_layers(self, image: napari.layers.Image) -> None:
        """Use the viewer's clicks, boxes and labels layers where they fit `image`, else make
        new ones (replacing ones that do not fit), and connect them to the session."""
        layers = self.host.viewer.layers
        wanted = (
            ("clicks", prompt_layers.CLICKS, napari.layers.Points, prompt_layers.make_clicks),
            ("boxes", prompt_layers.BOXES, napari.layers.Shapes, prompt_layers.make_boxes),
            ("labels", prompt_layers.LABELS, napari.layers.Labels, prompt_layers.make_labels),
        )
        for attribute, name, kind, make in wanted:
            layer = layers[name] if name in layers else None
            if layer is None or not prompt_layers.fits(layer, image, kind):
                if layer is not None:
                    layers.remove(layer)
                layer = make(image)
                layers.append(layer)
                self.connect(attribute, layer)
            elif getattr(self.host, attribute) is not layer:
                self.connect(attribute, layer)
            setattr(self.host, attribute, layer)
        self.host.viewer.layers.selection.active = self.host.clicks
        self.host.clicks.mode = "add"

    def connect(self, attribute: str, layer: napari.layers.Layer) -> None:
        """Listen to the layer that becomes the host's `attribute` (edits, keys, paint)."""
        if attribute in ("clicks", "boxes"):
            layer.events.data.connect(self.edited)
        if attribute == "clicks":
            layer.bind_key(
                SHORTCUTS["toggle_sign"], lambda _: self.host.toggle_sign(), overwrite=True
            )
            layer.bind_key(
                SHORTCUTS["next_candidate"], lambda _: self.host.next_candidate(), overwrite=True
            )
        if attribute == "labels":
            layer.events.paint.connect(self.painted)

    def edited(self, event: object) -> None:
        """A clicks or boxes layer changed: sync once the edit is complete."""
        action = str(getattr(event, "action", "")).lower()
        if action.endswith("ing"):  # adding / removing / changing: wait for the result
            return
        QTimer.singleShot(0, self.sync)

    def sync(self) -> None:
        """Send the prompts that changed in the layers to the session (in a worker)."""
        session = self.host.session
        if session is None or self.host.clicks is None:
            return
        if self.host.busy:
            self.again = True
            return
        current = prompt_layers.read_prompts(self.host.view, self.host.clicks, self.host.boxes)
        changes = changed_prompts(self.applied, current)
        if not changes:
            return
        try:
            for _, obj in changes:
                session.object(obj)
        except SAM2Error as error:
            self.host.failed(error)
            return
        self.host.session_changed()

        def apply():
            for (t, obj), prompts in changes.items():
                session.set_prompts(t, obj, prompts)
            return changes

        def applied(done):
            for key, prompts in done.items():
                if prompts.is_empty():
                    self.applied.pop(key, None)
                else:
                    self.applied[key] = prompts
            single = [k for k, v in done.items() if len(v.points) == 1 and v.box is None]
            self.host.objects_panel.clicked(single[-1] if single else None)
            frames = sorted({t for t, _ in done})
            show_frames(self.host.labels, self.host.view, frames)  # the displayed plane only
            self.host.say(f"Segmented frame {', '.join(map(str, frames))}.")

        self.host.say("Segmenting…")
        from .workers import job

        if quick_clicks.run_here(self.host, changes, apply, applied):  # under a frame: no worker
            return
        frames = {t for t, _ in changes}
        worker = job(quick_clicks.timed(self.host.model, self.host.tracker, frames, apply))
        worker.returned.connect(applied)
        self.host.run_job(worker)

    def painted(self, event: object) -> None:
        """Paint in the labels layer is recorded in the session's log."""
        if self.host.session is not None:
            self.host.session.record_paint(prompt_layers.painted_frames(event, self.host.view))

    def layer_coords(self, t: int, y: float, x: float) -> list[float]:
        """Layer coordinates (leading axes..., y, x) of a point on frame t."""
        leading = [float(i) for i in self.host.view.fixed]
        if self.host.view.video_axis is not None:
            leading[self.host.view.video_axis] = float(t)
        return [*leading, float(y), float(x)]

    def set_layer_prompts(self, items: Iterable[tuple[int, int, FramePrompts]]) -> None:
        """Put (frame, object, FramePrompts) clicks and boxes in the layers without sending
        them; what they hold then counts as sent."""
        rows, signs, owners, rectangles, rect_owners = [], [], [], [], []
        for t, obj, frame in items:
            for x, y, label in frame.points:
                rows.append(self.layer_coords(t, y, x))
                signs.append(label)
                owners.append(obj)
            if frame.box is not None:
                x0, y0, x1, y1 = frame.box
                corners = ((y0, x0), (y0, x1), (y1, x1), (y1, x0))
                rectangles.append([self.layer_coords(t, y, x) for y, x in corners])
                rect_owners.append(obj)
        with self.host.clicks.events.data.blocker(), self.host.boxes.events.data.blocker():
            self.host.clicks.data = np.array(rows, dtype=float).reshape(-1, self.host.clicks.ndim)
            self.host.clicks.features = pd.DataFrame({"sign": signs, "object": owners}, dtype=int)
            self.host.boxes.data = []
            if rectangles:
                self.host.boxes.add_rectangles(np.array(rectangles, dtype=float))
                self.host.boxes.features = pd.DataFrame({"object": rect_owners}, dtype=int)
        self.host.clicks.refresh()
        self.host.boxes.refresh()

    def show_session(self) -> None:
        """Show the session's clicks and boxes in the layers (after a replay)."""
        items = [
            (t, obj, frame)
            for (t, obj), frame in sorted(self.host.session.prompts.items())
            if frame.mask is None
        ]
        self.set_layer_prompts(items)
        self.applied = prompt_layers.read_prompts(self.host.view, self.host.clicks, self.host.boxes)
        self.host.labels.refresh()
        self.host.objects_panel.session_started(self.host.session)

    def show_file(self, prompts: Prompts) -> None:
        """A prompts file without a log: clicks and boxes go to the layers (and are segmented
        from there), masks straight to the session."""
        session = self.host.session
        items = []
        for obj in prompts.objects:
            session.object(obj.id).name = obj.name or f"object {obj.id}"
            for t, frame in sorted(obj.frames.items()):
                if frame.mask is not None:
                    session.add_mask(t, obj.id, frame.mask)
                else:
                    items.append((t, obj.id, frame))
        self.set_layer_prompts(items)
        self.host.labels.refresh()
        self.host.objects_panel.session_started(session)
        self.sync()

    def remove_object(self, obj: int) -> None:
        """Delete one object's clicks and boxes from the layers, without sending anything."""
        if self.host.clicks is None:
            return
        for layer in (self.host.clicks, self.host.boxes):
            keep = layer.features["object"].to_numpy() != obj
            with layer.events.data.blocker():
                layer.selected_data = set(np.flatnonzero(~keep).tolist())
                layer.remove_selected()
        self.applied = {k: v for k, v in self.applied.items() if k[1] != obj}
