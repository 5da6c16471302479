"""The Tracker: prompts on any frame, propagation through the stack, corrections, labels.

One engine for the widget, the CLI and Python users (numpy in, numpy out). It follows the
reference video predictor's semantics, with two deliberate differences: a correction on a
frame already tracked becomes a prompted (conditioning) frame, so it sticks when propagating
again; and memory stays bounded, since only what later frames can attend to (plus a byte
budget of recent results, for corrections) is kept. This module holds the state and the
public methods; `frame_prompts`, `propagation` and `compositing` do the work.
"""

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from ..errors import SAM2Error
from ..model import SAM2, select_memories
from ..model.catalogue import engine_default
from ..model.sam_heads import NO_OBJECT_LOGIT
from . import propagation
from .budgets import default_budgets
from .clicked_region import keep_clicked_region
from .compositing import frame_logits, show_latest, show_result
from .feature_cache import FeatureCache, disk_store_for
from .frame_encoding import FrameEncoding
from .frame_prompts import mask_prompt, points_prompt, predict, settle_frame
from .frames import FrameSource
from .labels import LabelVolume
from .masks import fill_holes, to_frame_resolution
from .motion import MotionFollower
from .object_batches import default_batch_size
from .precision import PRECISIONS, resolve_precision
from .prompt_inputs import to_model_xy
from .propagation_plan import DIRECTIONS
from .state import NOT_TRACKED, FramePrompt, FrameResult, ObjectState

__all__ = ["DIRECTIONS", "PRECISIONS", "Tracker"]


class Tracker(FrameEncoding):
    """Segment and track objects through a (T, H, W) or (T, H, W, C) stack with SAM 2.

    frames: any array-like (numpy, tifffile memmap, zarr, dask); read lazily.
    fill_hole_area: background regions of at most this many low-res pixels become foreground.
    feature_budget_bytes: image features kept for reuse (clicks, re-propagation).
    result_budget_bytes: per-frame results kept beyond what the memory bank needs, so that
    corrections on recently tracked frames see the same memory as the reference would.
    Either None: a share of the memory available on the machine or device
    (`budgets.default_budgets`); both can be read and changed later (`budgets`).
    channel, contrast_limits, percentiles: see `FrameSource`.
    labels_out: an integer (T, H, W) array to write labels into (default: a new one).
    feature_cache_dir: a folder where image features are also kept on disk, reused by later
    sessions on the same frames with the same model and normalization (a folder that cannot
    be written is an error here; a write that fails later, e.g. on a full disk, warns and
    leaves the features in memory only).
    precision: "auto" runs bfloat16 autocast on CUDA (the reference's fast path) and float32
    elsewhere. "fast" is "auto" except on a CPU with bfloat16 instructions (AVX512-BF16, AMX)
    and an input of at least 512 px: the image encoder, memory attention and memory encoder
    under bfloat16 autocast and the SAM heads (a click's part) in float32
    ("bfloat16-heavy"; the widget's default). "bfloat16-encoder": the image encoder alone
    under autocast (features about 1 % off, the masks closer to float32's). "float32"
    always float32 (the reference's float32 numbers on a GPU too); "bfloat16" autocast
    for everything on any device. `precision` holds what it resolved to; sessions record it
    so a replay computes the same.
    compile: torch.compile the model's image encoder and memory attention (in place, see
    `SAM2.compile_heavy_parts`); pays off on long stacks, mostly on GPUs.
    reappear: an object judged absent on a frame may be found again on later frames, as SAM 2
    does (cells that leave the field and come back). False stops following it, within a
    propagation pass, from the first frame where its mask is empty after it was seen, until
    one of its prompted frames: for z-stacks, where a nucleus spans one run of slices and another
    nucleus at the same place deeper down is not it. Can be changed between propagations.
    size_cue: trim each tracked mask to the object's half-maximum edge, measured against its
    nearest prompted frame (`size_cue`): for fluorescent objects through z with a model that
    draws a nucleus's end slices as large as its middle one (the demo model). Off by default,
    so the Tracker computes exactly what SAM 2 does; can be changed between propagations.
    non_overlap: keep objects apart on tracked frames: where several objects' masks claim a
    pixel, the one with the highest logit keeps it, in the frame's masks and in the memory
    the next frames are tracked from (`napari_sam2.engine.non_overlap`). None: as the model's
    catalogue entry says (on for the demo model; off for SAM 2's checkpoints, so the Tracker
    computes exactly what SAM 2 does). Prompted frames keep what their prompts gave. Can be
    changed between propagations.
    clicked_region: on a clicked frame, keep of the object's mask only the connected pieces
        its positive clicks lie on (`napari_sam2.engine.clicked_region`): a model's stray
        pieces on other cells go. None: as the model's catalogue entry says (on for the demo
        model; off for SAM 2's checkpoints). Applies to clicks made after it is changed.
    follow_motion: shift each remembered frame's spatial memory by how far the object has
    moved since, measured in the images (`napari_sam2.engine.motion`), so that a fast cell's
    mask is not held to where its memories had it. None: as the model's catalogue entry says
    (on for the demo model; off for SAM 2's checkpoints, which SAM 2 computes without it);
    can be changed between propagations.
    exclusive_clicks: an object's clicked mask leaves out the other objects' clicks on that
        frame, decoded again with them as background clicks; an object already prompted there
        is decoded again when a new click lands on it (`napari_sam2.engine.exclusive_clicks`):
        two touching cells clicked one each come apart. None: as the model's catalogue entry
        says (on for the demo model; off for SAM 2's checkpoints). Applies to prompts made
        after it is changed.
    snap_outlines: move each tracked mask's outline, by up to 2 pixels, onto the brightness
        level of the frame that agrees best with it (`napari_sam2.engine.outlines`), in the
        labels and in what is remembered. None: as the model's catalogue entry says (on for
        the demo model, whose outlines are coarse; off for SAM 2's checkpoints). Can be
        changed between propagations.
    grow_outlines: with `snap_outlines`, a snapped mask also takes in the whole region at its
        level that it lies in, when that holds at most 1.3 times the object's area on its
        nearest prompted frame (`napari_sam2.engine.outlines.grown_to_level`): a moving cell's
        mask held to half of it is made whole again. None: as the model's catalogue entry
        says (on for the demo model). Can be changed between propagations.
    split_touching: with `non_overlap`, the masks of tracked objects that touch are shared out
        again along the neck of their joint region (a watershed from the cores of their masks
        on the frame before, `napari_sam2.engine.touching_cells`): a cell's mask does not
        spread over a touching neighbour. Not with the size cue. None: as the model's
        catalogue entry says (on for the demo model; off for SAM 2's checkpoints). Can be
        changed between propagations.
    batch_size: at most this many objects go through memory attention, the SAM heads and the
    memory encoder of a frame in one batch (objects whose memories have the same layout);
    None: `default_batch_size` of the device (64 on a GPU, 1 on a CPU, where batches were
    slower).
    """

    def __init__(
        self,
        model: SAM2,
        frames,
        fill_hole_area: int = 8,
        feature_budget_bytes: int | None = None,
        result_budget_bytes: int | None = None,
        channel: int | Sequence[int] | None = None,
        contrast_limits: tuple[float, float] | None = None,
        percentiles: tuple[float, float] = (1.0, 99.8),
        labels_out: np.ndarray | None = None,
        feature_cache_dir: str | None = None,
        precision: str = "auto",
        compile: bool = False,
        reappear: bool = True,
        batch_size: int | None = None,
        size_cue: bool = False,
        non_overlap: bool | None = None,
        clicked_region: bool | None = None,
        follow_motion: bool | None = None,
        snap_outlines: bool | None = None,
        exclusive_clicks: bool | None = None,
        grow_outlines: bool | None = None,
        split_touching: bool | None = None,
    ) -> None:
        self.precision = resolve_precision(precision, model.device, model.image_size)
        self.model = model.eval()
        if compile:
            model.compile_heavy_parts()
        self.device = model.device
        self.frames = (
            frames
            if isinstance(frames, FrameSource)
            else FrameSource(frames, model.image_size, channel, contrast_limits, percentiles)
        )
        if self.frames.image_size != model.image_size:
            raise SAM2Error("the frame source was made for another model input size")
        self.num_frames = self.frames.num_frames
        self.height, self.width = self.frames.height, self.frames.width
        self.fill_hole_area = fill_hole_area
        self.reappear = reappear
        self.size_cue = size_cue
        name = model.config.name
        self.follow_motion = _chosen(follow_motion, name, "follow_motion")
        self.snap_outlines = _chosen(snap_outlines, name, "snap_outlines")
        self.non_overlap = _chosen(non_overlap, name, "non_overlap")
        self.clicked_region = _chosen(clicked_region, name, "clicked_region")
        self.exclusive_clicks = _chosen(exclusive_clicks, name, "exclusive_clicks")
        self.grow_outlines = _chosen(grow_outlines, name, "grow_outlines")
        self.split_touching = _chosen(split_touching, name, "split_touching")
        self._motion = MotionFollower(self.normalized_frame, (self.height, self.width))
        # the other objects whose prompted result the last prompt change, removal or clearing
        # made again (exclusive_clicks): their prompted frames changed
        self.neighbours_redecoded: list[int] = []
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise SAM2Error(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size or default_batch_size(self.device)
        disk = None
        if feature_cache_dir is not None:
            disk = disk_store_for(
                feature_cache_dir, model, self.frames, self.precision, self._image_pos
            )
        automatic = default_budgets(self.device)
        self.features = FeatureCache(
            automatic.features if feature_budget_bytes is None else feature_budget_bytes, disk
        )
        self.result_budget_bytes = (
            automatic.results if result_budget_bytes is None else result_budget_bytes
        )
        self.objects: dict[int, ObjectState] = {}
        self.volume = LabelVolume(self.num_frames, self.height, self.width, labels_out)
        config = model.config
        self._memory_options = dict(
            num_maskmem=config.num_maskmem,
            max_obj_ptrs=config.max_obj_ptrs_in_encoder,
            max_cond_frames=config.max_cond_frames_in_attn,
            signed_distances=config.use_signed_tpos_enc_to_obj_ptrs,
            prompt_memory_reach=config.prompt_memory_reach,
            remember_absent=config.remember_absent,
        )

    # -- inputs -----------------------------------------------------------------------

    def frame_tensor(self, t: int) -> torch.Tensor:
        """The exact model input for frame t: float32 (3, S, S)."""
        return self.frames.frame_tensor(self._check_frame(t))

    def normalized_frame(self, t: int) -> np.ndarray:
        """Frame t as the model's normalization sees it: float32 in [0, 1], (H, W, 3)."""
        return self.frames.normalized(self._check_frame(t))

    def _check_frame(self, t: int) -> int:
        if (
            not isinstance(t, int | np.integer)
            or isinstance(t, bool)
            or not 0 <= t < self.num_frames
        ):
            raise SAM2Error(
                f"frame {t} does not exist: the stack has frames 0 to {self.num_frames - 1}"
            )
        return int(t)

    def _object(self, obj_id: int, create: bool = True) -> ObjectState:
        if not isinstance(obj_id, int | np.integer) or isinstance(obj_id, bool) or obj_id < 1:
            raise SAM2Error(f"object ids are positive integers (their label value), got {obj_id!r}")
        obj_id = int(obj_id)
        if obj_id not in self.objects:
            if not create:
                raise SAM2Error(f"there is no object {obj_id}; objects: {sorted(self.objects)}")
            self.volume.check_id(obj_id)
            self.objects[obj_id] = ObjectState(obj_id, self.num_frames)
        return self.objects[obj_id]

    def _to_model_xy(self, xy, what: str) -> torch.Tensor:
        return to_model_xy(xy, what, self.width, self.height, self.model.image_size)

    # -- model calls ----------------------------------------------------------------

    def _memory_for(self, obj: ObjectState, t: int, reverse: bool):
        inputs = select_memories(
            t,
            obj.conditioning_memories(),
            obj.tracked_memories(),
            num_frames=self.num_frames,
            reverse=reverse,
            **self._memory_options,
        )
        return self._motion.followed(obj, t, reverse, inputs) if self.follow_motion else inputs

    def _finish(self, low_res: torch.Tensor, prompt: FramePrompt | None = None) -> torch.Tensor:
        """Holes filled; for a clicked frame with `clicked_region` on, stray pieces dropped."""
        low_res = fill_holes(low_res.float(), self.fill_hole_area)
        if prompt is None or not self.clicked_region or prompt.point_coords is None:
            return low_res
        return keep_clicked_region(
            low_res,
            prompt.point_coords,
            prompt.point_labels,
            self.model.image_size,
            (self.height, self.width),
        )

    def _frame_logits(self, result: FrameResult) -> np.ndarray:
        return frame_logits(result, self.height, self.width)

    # -- prompts --------------------------------------------------------------------

    def add_points(self, t: int, obj_id: int, points_xy, labels) -> np.ndarray:
        """Clicks on frame t for one object: (N, 2) pixel (x, y) and labels 1 (object) or 0
        (background). They replace this object's earlier clicks on frame t (a box there is
        kept). Returns the object's logits on frame t, float32 (H, W)."""
        prompt = self._existing_prompt(t, obj_id)
        box = None if prompt is None else prompt.box
        return self.set_prompts(t, obj_id, points_xy, labels, box=box, box_in_model_units=True)

    def add_box(self, t: int, obj_id: int, box_xyxy) -> np.ndarray:
        """A box (x0, y0, x1, y1) in pixels on frame t for one object; it replaces an earlier
        box there, clicks stay. Returns the object's logits on frame t, float32 (H, W)."""
        prompt = self._existing_prompt(t, obj_id)
        if prompt is None or prompt.point_coords is None:
            return self.set_prompts(t, obj_id, box=box_xyxy)
        scale = np.array([self.width, self.height]) / self.model.image_size
        points = prompt.point_coords.numpy() * scale
        return self.set_prompts(t, obj_id, points, prompt.point_labels.numpy(), box=box_xyxy)

    def _existing_prompt(self, t: int, obj_id: int) -> FramePrompt | None:
        obj = self.objects.get(int(obj_id)) if isinstance(obj_id, int | np.integer) else None
        return None if obj is None else obj.prompts.get(self._check_frame(t))

    def set_prompts(
        self,
        t: int,
        obj_id: int,
        points_xy=(),
        labels=(),
        box=None,
        box_in_model_units: bool = False,
    ) -> np.ndarray:
        """The clicks and box of one object on frame t become exactly these (pixels; labels
        1 object / 0 background; box x0, y0, x1, y1). With neither, the frame's prompts are
        cleared. Returns the object's logits on frame t, float32 (H, W)."""
        self.neighbours_redecoded = []
        t = self._check_frame(t)
        prompt = points_prompt(self, points_xy, labels, box, box_in_model_units)
        obj = self._object(obj_id)
        if prompt is None:
            self.clear_frame(t, obj.obj_id)
            self.volume.write_object(t, obj.obj_id, np.full((self.height, self.width), -1.0))
            return np.full((self.height, self.width), NO_OBJECT_LOGIT, dtype=np.float32)
        predict(self, t, obj, prompt)
        return settle_frame(self, t, obj)

    def add_mask(self, t: int, obj_id: int, mask) -> np.ndarray:
        """A mask (H, W) for one object on frame t; it replaces every other prompt there.
        Returns the object's logits on frame t, float32 (H, W)."""
        self.neighbours_redecoded = []
        prompt = mask_prompt(mask, self.height, self.width, self.model.image_size)
        t = self._check_frame(t)
        obj = self._object(obj_id)
        predict(self, t, obj, prompt)
        return settle_frame(self, t, obj)

    def candidate_logits(self, t: int, obj_id: int) -> np.ndarray:
        """The three candidate masks of the last single click on frame t, as logits
        (3, H, W) in the decoder's order (the one shown is the highest predicted IoU), each
        as `choose_candidate` would take it; empty (0, H, W) when the last prompt there gave
        a single mask."""
        obj = self._object(obj_id, create=False)
        t = self._check_frame(t)
        result = obj.pending.get(t)
        if result is None or result.candidates is None:
            return np.zeros((0, self.height, self.width), dtype=np.float32)
        finished = [
            self._finish(result.candidates[:, i : i + 1], obj.prompts.get(t))
            for i in range(result.candidates.shape[1])
        ]
        return to_frame_resolution(torch.cat(finished), self.height, self.width).cpu().numpy()

    def candidate_count(self, t: int, obj_id: int) -> int:
        """How many candidate masks the last prompt of the object on frame t gave (3 after a
        single click, else 0)."""
        obj = self._object(obj_id, create=False)
        result = obj.pending.get(self._check_frame(t))
        return 0 if result is None or result.candidates is None else result.candidates.shape[1]

    def choose_candidate(self, t: int, obj_id: int, index: int) -> np.ndarray:
        """Take candidate `index` of `candidate_logits(t, obj_id)` as the object's result on
        frame t, with its own object pointer. Returns the object's logits on frame t."""
        count = self.candidate_count(t, obj_id)
        if not 0 <= index < count:
            raise SAM2Error(f"there are {count} candidate masks on frame {t}")
        obj = self._object(obj_id, create=False)
        result = obj.pending[self._check_frame(t)]
        result.low_res_logits = self._finish(
            result.candidates[:, index : index + 1], obj.prompts.get(t)
        )
        result.obj_ptr = result.candidate_ptrs[:, index]
        result.size_reference = None  # measured on the mask it had
        return show_result(self, obj, t, result)

    def clear_frame(self, t: int, obj_id: int | None = None) -> None:
        """Remove the prompts on frame t, of one object or of all; the frame is then tracked
        like any other on the next propagation."""
        self.neighbours_redecoded = []
        t = self._check_frame(t)
        objs = self.objects.values() if obj_id is None else [self._object(obj_id, create=False)]
        for obj in objs:
            obj.prompts.pop(t, None)
            obj.pending.pop(t, None)
            result = obj.conditioning.pop(t, None)
            if result is not None:
                obj.tracked[t] = result
                obj.direction[t] = NOT_TRACKED
            show_latest(self, obj, t)
        settle_frame(self, t)

    def remove_object(self, obj_id: int) -> None:
        """Forget an object and erase it from the labels."""
        self.neighbours_redecoded = []
        obj = self._object(obj_id, create=False)
        del self.objects[obj.obj_id]
        self.volume.remove_object(obj.obj_id)
        for t in sorted(obj.prompts):
            settle_frame(self, t)

    def reset(self) -> None:
        """Forget every object and prompt; image features stay cached."""
        self.objects.clear()
        self.volume.clear()

    @property
    def object_ids(self) -> list[int]:
        return list(self.objects)

    def labels(self) -> np.ndarray:
        """The (T, H, W) integer label volume: object ids, 0 = background."""
        return self.volume.array

    # -- propagation ----------------------------------------------------------------

    def propagate(
        self,
        direction: str = "forward",
        start_frame: int | None = None,
        obj_ids: Iterable[int] | None = None,
    ) -> Iterator[tuple[int, list[int], np.ndarray]]:
        """Track prompted objects through the stack, one frame at a time.

        Yields (t, obj_ids, logits) with logits float32 (len(obj_ids), H, W); the label
        volume is updated before each yield. direction: "forward" (from the earliest
        prompted frame, or start_frame), "backward" (from the latest), or "both" (forward,
        then backward). obj_ids: only these objects (default: all); the others' results,
        memories and label pixels stay as they were (they also take back pixels the tracked
        objects give up, where their stored logits claim them).
        Stopping the generator between frames leaves a consistent state; an object removed
        (or a `reset`) while the generator is paused is not tracked further.
        """
        objs = propagation.selection(self, obj_ids)
        planned = propagation.passes(self, direction, start_frame, objs)
        prompted = [obj for obj in objs if obj.conditioning]
        return propagation.run_passes(self, prompted, planned, partial=obj_ids is not None)

    def propagation_length(
        self,
        direction: str = "forward",
        start_frame: int | None = None,
        obj_ids: Iterable[int] | None = None,
    ) -> int:
        """How many frame steps `propagate` with these arguments yields."""
        objs = propagation.selection(self, obj_ids)
        planned = propagation.passes(self, direction, start_frame, objs)
        return sum(len(order) for order, _ in planned)


def _chosen(value: bool | None, model_name: str | None, setting: str) -> bool:
    """An engine option as asked, or (None) as the model's catalogue entry says."""
    return engine_default(model_name, setting) if value is None else value
