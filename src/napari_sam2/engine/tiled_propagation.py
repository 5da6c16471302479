"""Propagation in tiles: each object tracked in the window that owns it, frames stitched from
the windows' next steps, and hand-overs when an object's centroid leaves its window's core.

A mix-in of `TiledTracker`, kept apart because it is the part that runs the windows' passes
together; it reads the tracker's windows, homes, prompted frames and label volume.
"""

from collections.abc import Iterable, Iterator

import numpy as np
from scipy import ndimage

from ..errors import SAM2Error
from .propagation_plan import DIRECTIONS, plan_passes
from .tiles import Window, touches_inner_edge, window_of


class TiledPropagation:
    """`propagate` and `propagation_length` of a `TiledTracker`."""

    def _selection(self, obj_ids: Iterable[int] | None) -> list[int]:
        """The objects to propagate (every prompted one for None); a clear error for an
        unknown object, an object without prompts, or nothing to propagate."""
        if obj_ids is None:
            selected = [obj for obj, frames in self.prompted.items() if frames]
            if not selected:
                raise SAM2Error(
                    "no object has a prompt to propagate from: add a click, box or mask"
                )
            return selected
        if isinstance(obj_ids, int | np.integer):
            obj_ids = [obj_ids]
        selected = list(dict.fromkeys(int(i) for i in obj_ids))
        if not selected:
            raise SAM2Error("no object was chosen to propagate; give object ids or None for all")
        unknown = [i for i in selected if i not in self.home]
        if unknown:
            raise SAM2Error(f"there is no object {unknown[0]}; objects: {sorted(self.home)}")
        unprompted = [i for i in selected if not self.prompted.get(i)]
        if unprompted:
            raise SAM2Error(
                f"objects {unprompted} have no prompts to propagate from: add a click, box or "
                "mask first"
            )
        return selected

    def _passes(self, direction: str, start_frame: int | None, objs: list[int]):
        if direction not in DIRECTIONS:
            raise SAM2Error(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if start_frame is not None and not (
            isinstance(start_frame, int | np.integer) and 0 <= start_frame < self.num_frames
        ):
            raise SAM2Error(
                f"frame {start_frame} does not exist: the stack has frames 0 to "
                f"{self.num_frames - 1}"
            )
        return plan_passes(
            direction, start_frame, [self.prompted[o] for o in objs], self.num_frames
        )

    def propagation_length(
        self,
        direction: str = "forward",
        start_frame: int | None = None,
        obj_ids: Iterable[int] | None = None,
    ) -> int:
        """How many frame steps `propagate` with these arguments yields."""
        passes = self._passes(direction, start_frame, self._selection(obj_ids))
        return sum(len(order) for order, _ in passes)

    def propagate(
        self,
        direction: str = "forward",
        start_frame: int | None = None,
        obj_ids: Iterable[int] | None = None,
    ) -> Iterator[tuple[int, list[int]]]:
        """Track prompted objects through the stack, as `Tracker.propagate`, in tiles.

        Yields (t, obj_ids) once frame t of the label volume is written (no logits: at
        native resolution they would be the size of the frame for every object). Objects
        not selected by `obj_ids` keep their pixels; the tracked ones take only background
        and their own.
        """
        objs = self._selection(obj_ids)
        passes = self._passes(direction, start_frame, objs)
        self._forget_handovers()
        self.handovers = 0
        return self._run_passes(objs, passes)

    def _run_passes(self, objs, passes) -> Iterator[tuple[int, list[int]]]:
        for order, reverse in passes:
            yield from self._run_pass(objs, order, reverse)

    def _forget_handovers(self) -> None:
        """Take back the prompts earlier hand-overs made, so that only the user's prompts
        (in each object's home window) start a propagation."""
        for index, obj_id, t in self._handovers:
            tracker = self._trackers[index]
            if obj_id not in tracker.object_ids:
                continue
            if index != self.home.get(obj_id):
                tracker.remove_object(obj_id)
            elif t not in self.prompted.get(obj_id, ()):
                tracker.clear_frame(t, obj_id)
        self._handovers.clear()

    def _run_pass(self, objs: list[int], order: range, reverse: bool):
        direction = "backward" if reverse else "forward"
        owner = {obj: self.home[obj] for obj in objs}
        running: dict[int, tuple[Iterator, tuple[int, ...]]] = {}
        try:
            for t in order:
                for obj in objs:  # on a frame the user prompted, the object is at home
                    if t in self.prompted[obj]:
                        owner[obj] = self.home[obj]
                groups: dict[int, list[int]] = {}
                for obj in objs:
                    groups.setdefault(owner[obj], []).append(obj)
                for index in list(running):
                    if tuple(groups.get(index, ())) != running[index][1]:
                        running.pop(index)[0].close()
                for index, ids in groups.items():
                    if index not in running:
                        steps = self.window_tracker(index).propagate(direction, t, ids)
                        running[index] = (steps, tuple(ids))
                masks = self._stitch(t, running, objs)
                if t != order[-1]:
                    self._hand_over(t, masks, owner)
                yield t, list(objs)
        finally:
            for steps, _ in running.values():
                steps.close()

    def _stitch(self, t: int, running, objs: list[int]) -> dict[int, tuple[Window, np.ndarray]]:
        """Frame t from every window's next step: each object from its owning window, the
        highest positive logit winning where two meet; objects not tracked (`objs` are)
        keep their pixels. Returns each tracked object's mask."""
        self.volume.make_room(objs)
        frame = self.array[t].copy()
        frame[np.isin(frame, objs)] = 0
        best = np.where(frame != 0, np.inf, 0.0).astype(np.float32)
        masks = {}
        for index, (steps, _) in running.items():
            step_t, ids, logits = next(steps)
            if step_t != t:
                raise SAM2Error(f"window {index} tracked frame {step_t} instead of {t}")
            window = self.windows[index]
            window_best = logits.max(axis=0)
            window_ids = np.asarray(ids, dtype=frame.dtype)[logits.argmax(axis=0)]
            region_best, region = window.crop(best), window.crop(frame)
            take = window_best > region_best
            region[take] = window_ids[take]
            region_best[take] = window_best[take]
            for obj, obj_logits in zip(ids, logits, strict=True):
                masks[obj] = (window, obj_logits > 0)
        self.volume.put_frame(t, frame)
        return masks

    def _hand_over(self, t: int, masks, owner: dict[int, int]) -> None:
        """Objects whose centroid left their window's core (or whose mask meets an inner edge
        of their window) on frame t move to the window whose core holds the centroid."""
        for obj, (window, mask) in masks.items():
            found = ndimage.find_objects(mask.view(np.uint8))
            if not found or found[0] is None:
                continue  # absent on this frame: it stays where it was
            rows, cols = found[0]
            ys, xs = np.nonzero(mask[rows, cols])
            cy, cx = ys.mean() + rows.start + window.y0, xs.mean() + cols.start + window.x0
            if window.core_holds(cy, cx, self.handover_margin) and not touches_inner_edge(
                window, mask, self.height, self.width
            ):
                continue
            target = window_of(self.windows, cy, cx)
            if target.index == window.index:
                continue
            full = np.zeros((self.height, self.width), dtype=bool)
            window.crop(full)[...] = mask
            self.window_tracker(target.index).add_mask(t, obj, target.crop(full))
            self._handovers.append((target.index, obj, t))
            owner[obj] = target.index
            self.handovers += 1
