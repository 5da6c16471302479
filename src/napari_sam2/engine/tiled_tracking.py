"""Tracking in tiles: frames larger than the model input, tracked at native resolution in
overlapping windows, each object in the window that holds it, stitched into one label volume.

Every window has its own `Tracker` on a lazy crop of the stack. An object lives in one window
at a time: its home (where its prompts are) at the start of a pass, and the window whose core
holds its centroid once it moves: then its mask on that frame becomes a mask prompt in the new
window, which tracks it from the next frame on (a hand-over). Each frame of the label volume
is written from the owning windows only, so there is no seam and no duplicate id.
"""

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from ..errors import SAM2Error
from ..model import SAM2
from ..model.sam_heads import NO_OBJECT_LOGIT
from .automatic_masks import MaskGeneratorSettings
from .budgets import default_budgets
from .frames import FrameSource
from .labels import LabelVolume
from .tile_prompts import Extent, checked_box, checked_points, click_geometry, mask_geometry
from .tiled_propagation import TiledPropagation
from .tiled_seeds import automatic_seed_labels
from .tiles import (
    SharedFrames,
    Window,
    check_tile_options,
    default_overlap,
    tile_grid,
    window_of,
    window_source,
)
from .tracker import Tracker


def _scratch_labels(num_frames: int, height: int, width: int) -> np.ndarray:
    """A (T, h, w) label array whose frames all share one (h, w) buffer.

    The stitched volume is made from each window's logits; a window's own label volume is
    never read, and a real one per window would hold the stack's labels about 1.6 times over
    (the overlaps). Ids up to uint32 fit, as in the stitched volume.
    """
    plane = np.zeros((height, width), dtype=np.uint32)
    return np.lib.stride_tricks.as_strided(
        plane, shape=(num_frames, height, width), strides=(0, *plane.strides), writeable=True
    )


class TiledTracker(TiledPropagation):
    """Track objects through a (T, H, W[, C]) stack in tiles of `tile` x `tile` pixels.

    overlap: pixels shared by neighbouring tiles (default a quarter of the tile); an object
    is tracked whole when its diameter is at most the overlap. handover_margin: pixels the
    centroid may stray past its window's core before the object is handed over (default an
    eighth of the overlap), so that an object on a border does not change windows every
    frame. channel, contrast_limits, percentiles: see `FrameSource` (the limits are the whole
    stack's, for every window). Other keyword arguments go to each window's `Tracker`.

    Prompts are given in frame pixels, as to a `Tracker`; all prompts of one object must lie
    in one tile (its home). labels_out: an integer (T, H, W) array to write the labels into
    (e.g. a napari Labels layer's; it never widens, and labels in it that are not this
    tracker's objects keep their pixels); default a new one, widened to uint32 when needed.
    """

    def __init__(
        self,
        model: SAM2,
        frames: ArrayLike | FrameSource,
        tile: int,
        overlap: int | None = None,
        handover_margin: float | None = None,
        channel: int | Sequence[int] | None = None,
        contrast_limits: tuple[float, float] | None = None,
        percentiles: tuple[float, float] = (1.0, 99.8),
        compile: bool = False,
        labels_out: np.ndarray | None = None,
        **tracker_options,
    ) -> None:
        self.model = model.eval()
        if compile:
            model.compile_heavy_parts()  # once for every window
        self.frames = (
            frames
            if isinstance(frames, FrameSource)
            else FrameSource(frames, model.image_size, channel, contrast_limits, percentiles)
        )
        self.num_frames = self.frames.num_frames
        self.height, self.width = self.frames.height, self.frames.width
        check_tile_options(tile, 0)  # before anything is made from it
        self.tile = int(tile)
        self.overlap = default_overlap(self.tile) if overlap is None else overlap
        self.windows = tile_grid(self.height, self.width, self.tile, self.overlap)
        self.handover_margin = self.overlap / 8 if handover_margin is None else handover_margin
        self._shared = SharedFrames(self.frames)
        budgets = default_budgets(model.device)
        # the windows share the memory one tracker would have had
        self._options = {
            "feature_budget_bytes": budgets.features // len(self.windows),
            "result_budget_bytes": budgets.results // len(self.windows),
            **tracker_options,
        }
        self._trackers: dict[int, Tracker] = {}
        self.home: dict[int, int] = {}  # object -> the window of its prompts
        self.prompted: dict[int, set[int]] = {}  # object -> frames with prompts
        self._handovers: list[tuple[int, int, int]] = []  # (window, object, frame) prompts
        self.handovers = 0  # hand-overs in the last propagation
        shape = (self.num_frames, self.height, self.width)
        if labels_out is not None and (
            tuple(labels_out.shape) != shape or np.dtype(labels_out.dtype).kind not in "iu"
        ):
            raise SAM2Error(
                f"labels_out must be an integer array of shape {shape}, got "
                f"{labels_out.dtype} {tuple(labels_out.shape)}"
            )
        self.volume = LabelVolume(*shape, out=labels_out)

    # -- windows ----------------------------------------------------------------------

    def window_tracker(self, index: int) -> Tracker:
        """The Tracker of window `index` (made when first needed)."""
        if index not in self._trackers:
            window = self.windows[index]
            source = window_source(self._shared, window)
            self._trackers[index] = Tracker(
                self.model,
                source,
                labels_out=_scratch_labels(self.num_frames, window.height, window.width),
                **self._options,
            )
        return self._trackers[index]

    @property
    def array(self) -> np.ndarray:
        """The (T, H, W) label array (`labels_out` when one was given)."""
        return self.volume.array

    def _home(self, obj_id: int, centre_yx: tuple[float, float], extent: Extent) -> Window:
        """The window an object's prompt goes to; `extent` (y0, x0, y1, x1) must fit in it
        (None: an empty prompt, which fits anywhere)."""
        if isinstance(obj_id, int | np.integer) and not isinstance(obj_id, bool):
            self.volume.check_id(int(obj_id))  # before any window holds it
        if obj_id in self.home:
            window = self.windows[self.home[obj_id]]
        else:
            window = window_of(self.windows, *centre_yx)
        if extent is None:
            return window
        y0, x0, y1, x1 = extent
        if y0 < window.y0 or x0 < window.x0 or y1 > window.y1 or x1 > window.x1:
            where = (
                f"the tile of its first prompt (rows {window.y0}-{window.y1 - 1}, columns "
                f"{window.x0}-{window.x1 - 1})"
                if obj_id in self.home
                else f"one tile of {self.tile} pixels"
            )
            raise SAM2Error(
                f"object {obj_id}'s prompt does not fit in {where}; give an object's prompts "
                "within one tile, use a larger tile, or track without tiles"
            )
        return window

    def _show(self, t: int, obj_id: int, window: Window, logits: np.ndarray) -> np.ndarray:
        """Write one object's new mask on frame t (labels of other origin keep their pixels);
        returns its logits over the whole frame."""
        full = np.full((self.height, self.width), NO_OBJECT_LOGIT, dtype=np.float32)
        window.crop(full)[...] = logits
        self.volume.write_object(int(t), int(obj_id), full)
        return full

    # -- journal: frames as they were, so a front-end can undo a failed or cancelled run --

    def begin_journal(self) -> None:
        """Start recording frames before they change, so `rollback` can restore them."""
        self.volume.begin_journal()

    def commit(self) -> None:
        """Keep the changes since `begin_journal`."""
        self.volume.commit()

    def rollback(self) -> list[int]:
        """Restore every frame changed since `begin_journal`; returns those frames."""
        return self.volume.rollback()

    def _prompted(self, t: int, obj_id: int, window: Window, prompted: bool = True) -> None:
        """Remember that the object's prompts on frame t are in `window` (or were cleared)."""
        self.home[int(obj_id)] = window.index
        frames = self.prompted.setdefault(int(obj_id), set())
        if prompted:
            frames.add(int(t))
        else:
            frames.discard(int(t))

    # -- prompts (frame pixels) ---------------------------------------------------------

    def set_prompts(
        self,
        t: int,
        obj_id: int,
        points_xy: ArrayLike = (),
        labels: ArrayLike = (),
        box: ArrayLike | None = None,
    ) -> np.ndarray:
        """The clicks and box of one object on frame t become exactly these (frame pixels),
        as `Tracker.set_prompts`. Returns the object's logits on frame t, float32 (H, W)."""
        points, labels = checked_points(points_xy, labels)
        box = checked_box(box)
        centre, extent = click_geometry(points, labels, box, self.height, self.width)
        window = self._home(obj_id, centre, extent)
        shifted_box = None if box is None else box - np.tile(window.offset_xy, 2)
        logits = self.window_tracker(window.index).set_prompts(
            t, obj_id, points - window.offset_xy, labels, box=shifted_box
        )
        self._prompted(t, obj_id, window, len(points) > 0 or box is not None)
        return self._show(t, obj_id, window, logits)

    def add_points(
        self, t: int, obj_id: int, points_xy: ArrayLike, labels: ArrayLike
    ) -> np.ndarray:
        """Clicks (frame pixels) for one object on frame t, as `Tracker.add_points`."""
        points, labels = checked_points(points_xy, labels)
        centre, extent = click_geometry(points, labels, None, self.height, self.width)
        window = self._home(obj_id, centre, extent)
        logits = self.window_tracker(window.index).add_points(
            t, obj_id, points - window.offset_xy, labels
        )
        # clicks replace clicks; a box on the frame stays
        earlier = int(t) in self.prompted.get(int(obj_id), ())
        self._prompted(t, obj_id, window, len(points) > 0 or earlier)
        return self._show(t, obj_id, window, logits)

    def add_box(self, t: int, obj_id: int, box_xyxy: ArrayLike) -> np.ndarray:
        """A box (x0, y0, x1, y1, frame pixels) for one object on frame t."""
        box = checked_box(box_xyxy)
        centre, extent = click_geometry(np.zeros((0, 2)), np.zeros(0), box, self.height, self.width)
        window = self._home(obj_id, centre, extent)
        logits = self.window_tracker(window.index).add_box(
            t, obj_id, box - np.tile(window.offset_xy, 2)
        )
        self._prompted(t, obj_id, window)
        return self._show(t, obj_id, window, logits)

    def add_mask(self, t: int, obj_id: int, mask: ArrayLike) -> np.ndarray:
        """A mask (H, W) for one object on frame t; it must fit in one tile."""
        mask = np.asarray(mask)
        if mask.shape != (self.height, self.width):
            raise SAM2Error(
                f"the mask has shape {mask.shape}, the frames are {(self.height, self.width)}"
            )
        mask = mask.astype(bool, copy=False)
        centre, extent = mask_geometry(mask)
        window = self._home(obj_id, centre, extent)
        logits = self.window_tracker(window.index).add_mask(t, obj_id, window.crop(mask))
        self._prompted(t, obj_id, window)
        return self._show(t, obj_id, window, logits)

    def remove_object(self, obj_id: int) -> None:
        """Forget an object and erase it from the labels."""
        if obj_id not in self.home:
            raise SAM2Error(f"there is no object {obj_id}; objects: {sorted(self.home)}")
        for tracker in self._trackers.values():
            if obj_id in tracker.object_ids:
                tracker.remove_object(obj_id)
        del self.home[obj_id]
        self.prompted.pop(obj_id, None)
        self._handovers = [h for h in self._handovers if h[1] != obj_id]
        self.volume.remove_object(obj_id)

    def reset(self) -> None:
        """Forget every object and prompt (labels in `labels_out` of other origin stay)."""
        for tracker in self._trackers.values():
            tracker.reset()
        self.home.clear()
        self.prompted.clear()
        self._handovers.clear()
        self.volume.clear()

    @property
    def object_ids(self) -> list[int]:
        """The ids of the objects the tracker holds."""
        return list(self.home)

    def labels(self) -> np.ndarray:
        """The (T, H, W) integer label volume: object ids, 0 = background."""
        return self.array

    # -- automatic seeds ------------------------------------------------------------------

    def automatic_seed_labels(
        self, t: int, settings: MaskGeneratorSettings | None = None, min_area: int = 20
    ) -> np.ndarray:
        """SAM 2's automatic masks on frame t, found window by window, as one (H, W) label
        image (1..N). Masks cut by a window's inner edge are left to the neighbour that holds
        them whole; duplicates from overlapping windows are merged (the best mask stays,
        a mask mostly covered by better ones is dropped)."""
        if not isinstance(t, int | np.integer) or not 0 <= t < self.num_frames:
            raise SAM2Error(
                f"frame {t} does not exist: the stack has frames 0 to {self.num_frames - 1}"
            )
        return automatic_seed_labels(self, int(t), settings, min_area)

    def seed_from_labels(self, t: int, seeds: np.ndarray) -> list[int]:
        """Every nonzero label of a (H, W) image becomes an object prompted with its mask on
        frame t (id = label). Returns the ids."""
        seeds = np.asarray(seeds)
        if seeds.shape != (self.height, self.width):
            raise SAM2Error(
                f"the seeds have shape {seeds.shape}; a frame is {self.array.shape[1:]}"
            )
        values, compact = np.unique(seeds, return_inverse=True)
        compact = compact.reshape(seeds.shape)  # labels renumbered 0..N, so boxes stay few
        if values[0] != 0:  # no background pixel: 0 must still mean none
            values, compact = np.concatenate([[0], values]), compact + 1
        ids = []
        for index, where in enumerate(ndimage.find_objects(compact), 1):
            obj_id = int(values[index])
            if where is None or obj_id <= 0:
                continue
            mask = np.zeros(seeds.shape, dtype=bool)
            mask[where] = compact[where] == index
            self.add_mask(t, obj_id, mask)
            ids.append(obj_id)
        if not ids:
            raise SAM2Error(f"the seeds have no object on frame {t} (every pixel is 0)")
        return ids
