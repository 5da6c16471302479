"""The Tracker: prompts on any frame, propagation through the stack, corrections, labels.

One engine for the widget, the CLI and Python users (numpy in, numpy out). It follows the
reference video predictor's semantics, with two deliberate differences: a correction on a
frame already tracked becomes a prompted (conditioning) frame, so it sticks when propagating
again; and memory stays bounded, since only what later frames can attend to (plus a byte
budget of recent results, for corrections) is kept.
"""

from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch

from ..errors import SAM2Error
from ..model import SAM2, FrameFeatures, FrameMemory, select_memories
from ..model.memory_bank import MemoryInputs
from ..model.sam2 import NO_OBJECT_LOGIT
from .budgets import CacheBudgets, default_budgets
from .eviction import evict_results
from .feature_cache import FeatureCache, disk_store_for
from .frames import FrameSource
from .freed_memory import release_freed_memory
from .labels import LabelVolume
from .masks import boxes_meet, fill_holes, positive_box, reach, to_frame_resolution
from .object_batches import batches_by_layout, default_batch_size
from .precision import PRECISIONS, autocast, uses_bfloat16
from .prompt_inputs import to_model_xy
from .propagation_plan import DIRECTIONS, Pass, plan_passes
from .state import BACKWARD, FORWARD, NOT_TRACKED, FramePrompt, FrameResult, ObjectState

__all__ = ["DIRECTIONS", "PRECISIONS", "Tracker"]


class Tracker:
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
    elsewhere; "float32" always float32 (the reference's float32 numbers on a GPU too);
    "bfloat16" autocast on any device (on the AMX CPU of docs/performance.md it was not
    faster than float32).
    compile: torch.compile the model's image encoder and memory attention (in place, see
    `SAM2.compile_heavy_parts`); pays off on long stacks, mostly on GPUs.
    reappear: an object judged absent on a frame may be found again on later frames, as SAM 2
    does (cells that leave the field and come back). False stops following it, within a
    propagation pass, from the first frame where its mask is empty after it was seen, until
    one of its prompted frames: for z-stacks, where a nucleus spans one run of slices and another
    nucleus at the same place deeper down is not it. Can be changed between propagations.
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
    ) -> None:
        self.bfloat16 = uses_bfloat16(precision, model.device)
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
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise SAM2Error(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size or default_batch_size(self.device)
        disk = None
        if feature_cache_dir is not None:
            disk = disk_store_for(
                feature_cache_dir, model, self.frames, self.bfloat16, self._image_pos
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
        )

    # -- inputs -----------------------------------------------------------------------

    def frame_tensor(self, t: int) -> torch.Tensor:
        """The exact model input for frame t: float32 (3, S, S)."""
        return self.frames.frame_tensor(self._check_frame(t))

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

    def _autocast(self):
        return autocast(self.device, self.bfloat16)

    def _compute_features(self, t: int) -> FrameFeatures:
        image = self.frames.frame_tensor(t).to(self.device)[None]
        with self._autocast():
            return self.model.encode_image(image)

    def _image_pos(self) -> torch.Tensor:
        """The image position encoding, the same for every frame."""
        size = self.model.config.image_embedding_size
        probe = torch.zeros(1, 1, size, size, device=self.device)
        return self.model.shared_tensor(self.model.image_encoder.neck.position_encoding(probe))

    @property
    def budgets(self) -> CacheBudgets:
        """Bytes the feature cache and the kept results may hold (set a new `CacheBudgets`
        to change them; a smaller feature budget drops the oldest features at once)."""
        return CacheBudgets(self.features.budget_bytes, self.result_budget_bytes)

    @budgets.setter
    def budgets(self, budgets: CacheBudgets) -> None:
        if min(budgets.features, budgets.results) < 0:
            raise SAM2Error(f"cache budgets must be at least 0 bytes, got {budgets}")
        self.features.budget_bytes = int(budgets.features)
        self.result_budget_bytes = int(budgets.results)

    def frame_features(self, t: int) -> FrameFeatures:
        return self.features.get(t, self._compute_features)

    def encode(self, t: int) -> bool:
        """Compute and cache frame t's image features ahead of a click (background
        encoding). Returns True if they were computed now, False if already cached.

        The one method that may run in other threads while the tracker is used: any number
        of worker threads may call `encode` while one thread calls the other methods. A click
        on a frame already encoded never waits for a background encode; a click on the frame
        being encoded waits for that encode instead of computing it again.
        """
        t = self._check_frame(t)
        if t in self.features:
            return False
        with torch.inference_mode():
            self.frame_features(t)
        return True

    def is_encoded(self, t: int) -> bool:
        """Whether frame t's image features are cached (a click there skips the encoder)."""
        return self._check_frame(t) in self.features

    def _memory_for(self, obj: ObjectState, t: int, reverse: bool):
        return select_memories(
            t,
            obj.conditioning_memories(),
            obj.tracked_memories(),
            num_frames=self.num_frames,
            reverse=reverse,
            **self._memory_options,
        )

    def _finish(self, low_res: torch.Tensor) -> torch.Tensor:
        return fill_holes(low_res.float(), self.fill_hole_area)

    def _frame_logits(self, result: FrameResult) -> np.ndarray:
        logits = to_frame_resolution(result.low_res_logits.float(), self.height, self.width)
        return logits[0].cpu().numpy()

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
        t = self._check_frame(t)
        labels = np.asarray(labels).reshape(-1)
        points = self._to_model_xy(points_xy, "point")
        if len(labels) != len(points):
            raise SAM2Error(f"{len(points)} points but {len(labels)} labels")
        if not np.isin(labels, (0, 1)).all():
            raise SAM2Error("point labels must be 1 (object) or 0 (background)")
        if box is not None and not box_in_model_units:
            corners = self._to_model_xy(box, "box corner")
            box = torch.stack([corners.min(0).values, corners.max(0).values]).reshape(4)
        obj = self._object(obj_id)
        if len(points) == 0 and box is None:
            self.clear_frame(t, obj.obj_id)
            self.volume.write_object(t, obj.obj_id, np.full((self.height, self.width), -1.0))
            return np.full((self.height, self.width), NO_OBJECT_LOGIT, dtype=np.float32)
        prompt = FramePrompt(box=box)
        if len(points):
            prompt.point_coords = points
            prompt.point_labels = torch.as_tensor(labels, dtype=torch.int32)
        return self._prompt(t, obj.obj_id, prompt)

    def add_mask(self, t: int, obj_id: int, mask) -> np.ndarray:
        """A mask (H, W) for one object on frame t; it replaces every other prompt there.
        Returns the object's logits on frame t, float32 (H, W)."""
        mask = np.asarray(mask)
        if mask.shape != (self.height, self.width):
            raise SAM2Error(
                f"the mask has shape {mask.shape}, the frames are {(self.height, self.width)}"
            )
        t = self._check_frame(t)
        size = self.model.image_size
        resized = torch.from_numpy(mask.astype(bool, copy=False)).float()[None, None]
        if resized.shape[-2:] != (size, size):
            resized = torch.nn.functional.interpolate(
                resized, size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
            resized = (resized >= 0.5).float()
        return self._prompt(t, obj_id, FramePrompt(mask=resized))

    @torch.inference_mode()
    def _prompt(self, t: int, obj_id: int, prompt: FramePrompt) -> np.ndarray:
        obj = self._object(obj_id)
        reverse = obj.direction[t] == BACKWARD
        first_prompt = obj.direction[t] == NOT_TRACKED
        features = self.frame_features(t)
        with self._autocast():
            if prompt.mask is not None:
                prediction = self.model.track_frame(
                    features, None, mask=prompt.mask.to(self.device)
                )
            else:
                coords, labels = prompt.model_points()
                previous = obj.latest_result(t)
                prev_logits = (
                    None
                    if previous is None
                    else previous.low_res_logits.to(self.device).clamp(-32.0, 32.0)
                )
                memory = None if first_prompt else self._memory_for(obj, t, reverse)
                prediction = self.model.track_frame(
                    features,
                    memory,
                    coords.to(self.device),
                    labels.to(self.device),
                    prev_mask_logits=prev_logits,
                    high_res_masks=False,  # the memory encoder upscales at propagation
                )
        obj.prompts[t] = prompt
        result = FrameResult(
            self._finish(prediction.low_res_masks),
            float(prediction.object_score_logits),
            prediction.obj_ptr,
        )
        if prediction.candidate_obj_ptrs is not None:
            result.candidates = prediction.low_res_multimasks
            result.candidate_ptrs = prediction.candidate_obj_ptrs
        obj.pending[t] = result
        return self._show(obj, t, result)

    def _show(self, obj: ObjectState, t: int, result: FrameResult) -> np.ndarray:
        """Write one object's new result on frame t into the labels; its logits (H, W)."""
        logits = self._frame_logits(result)
        # only objects that can be positive where this one is or was compete for pixels;
        # resizing every other object's logits would cost a click ~1 ms per object
        boxes = [positive_box(logits > 0), positive_box(self.volume.array[t] == obj.obj_id)]
        boxes = [b for b in boxes if b is not None]
        others = {}
        for other in self.objects.values():
            other_result = other.latest_result(t) if other is not obj else None
            if other_result is None or not boxes:
                continue
            box = reach(other_result.low_res_logits, self.height, self.width)
            if box is not None and any(boxes_meet(box, b) for b in boxes):
                others[other.obj_id] = self._frame_logits(other_result)
        self.volume.write_object(t, obj.obj_id, logits, others)
        return logits

    def candidate_logits(self, t: int, obj_id: int) -> np.ndarray:
        """The three candidate masks of the last single click on frame t, as logits
        (3, H, W) in the decoder's order (the one shown is the highest predicted IoU);
        empty (0, H, W) when the last prompt there gave a single mask."""
        result = self._object(obj_id, create=False).pending.get(self._check_frame(t))
        if result is None or result.candidates is None:
            return np.zeros((0, self.height, self.width), dtype=np.float32)
        logits = to_frame_resolution(
            result.candidates.float().transpose(0, 1), self.height, self.width
        )
        return logits.cpu().numpy()

    def choose_candidate(self, t: int, obj_id: int, index: int) -> np.ndarray:
        """Take candidate `index` of `candidate_logits(t, obj_id)` as the object's result on
        frame t, with its own object pointer. Returns the object's logits on frame t."""
        obj = self._object(obj_id, create=False)
        result = obj.pending.get(self._check_frame(t))
        count = 0 if result is None or result.candidates is None else result.candidates.shape[1]
        if not 0 <= index < count:
            raise SAM2Error(f"there are {count} candidate masks on frame {t}")
        result.low_res_logits = self._finish(result.candidates[:, index : index + 1])
        result.obj_ptr = result.candidate_ptrs[:, index]
        return self._show(obj, t, result)

    def clear_frame(self, t: int, obj_id: int | None = None) -> None:
        """Remove the prompts on frame t, of one object or of all; the frame is then tracked
        like any other on the next propagation."""
        t = self._check_frame(t)
        objs = self.objects.values() if obj_id is None else [self._object(obj_id, create=False)]
        for obj in objs:
            obj.prompts.pop(t, None)
            obj.pending.pop(t, None)
            result = obj.conditioning.pop(t, None)
            if result is not None:
                obj.tracked[t] = result
                obj.direction[t] = NOT_TRACKED
            remaining = obj.latest_result(t)
            if remaining is None:
                self.volume.write_object(t, obj.obj_id, np.full((self.height, self.width), -1.0))
            else:
                self.volume.write_object(t, obj.obj_id, self._frame_logits(remaining))

    def remove_object(self, obj_id: int) -> None:
        """Forget an object and erase it from the labels."""
        obj = self._object(obj_id, create=False)
        del self.objects[obj.obj_id]
        self.volume.remove_object(obj.obj_id)

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

    @torch.inference_mode()
    def _consolidate(self, objs: list[ObjectState]) -> None:
        """Encode the memory of frames prompted since the last propagation."""
        for obj in objs:
            for t, result in sorted(obj.pending.items()):
                features = self.frame_features(t)
                high_res = self.model.upscale(result.low_res_logits.to(self.device))
                score = torch.tensor([[result.object_score]], device=self.device)
                with self._autocast():
                    result.memory = self.model.frame_memory(
                        features, high_res, score, result.obj_ptr, from_clicks=True
                    )
                obj.conditioning[t] = result
                obj.tracked.pop(t, None)
            obj.pending.clear()

    def _selection(self, obj_ids: Iterable[int] | None) -> list[ObjectState]:
        """The objects a propagation runs: all of them, or exactly `obj_ids`."""
        if obj_ids is None:
            return list(self.objects.values())
        if isinstance(obj_ids, int | np.integer):
            obj_ids = [obj_ids]
        selected = [self._object(i, create=False) for i in obj_ids]
        if not selected:
            raise SAM2Error("obj_ids is empty: name at least one object to propagate")
        unprompted = [o.obj_id for o in selected if not o.conditioning and not o.pending]
        if unprompted:
            raise SAM2Error(
                f"objects {unprompted} have no prompts to propagate from: add a click, box or "
                "mask first"
            )
        return list({o.obj_id: o for o in selected}.values())

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
        objs = self._selection(obj_ids)
        passes = self._passes(direction, start_frame, objs)
        prompted = [obj for obj in objs if obj.conditioning]
        return self._run_passes(prompted, passes, partial=obj_ids is not None)

    def _run_passes(self, objs, passes, partial) -> Iterator[tuple[int, list[int], np.ndarray]]:
        for order, reverse in passes:
            yield from self._run(objs, order, reverse, partial)

    def _passes(
        self, direction: str, start_frame: int | None, objs: list[ObjectState]
    ) -> list[Pass]:
        """The passes propagation makes, after encoding new prompts into memory."""
        if direction not in DIRECTIONS:
            raise SAM2Error(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if start_frame is not None:
            start_frame = self._check_frame(start_frame)
        self._consolidate(objs)
        prompted = [list(obj.conditioning) for obj in objs]
        return plan_passes(direction, start_frame, prompted, self.num_frames)

    def propagation_length(
        self,
        direction: str = "forward",
        start_frame: int | None = None,
        obj_ids: Iterable[int] | None = None,
    ) -> int:
        """How many frame steps `propagate` with these arguments yields."""
        objs = self._selection(obj_ids)
        return sum(len(order) for order, _ in self._passes(direction, start_frame, objs))

    def _write_frame(self, t: int, objs: list[ObjectState], logits: np.ndarray, partial: bool):
        """Composite frame t. When only some objects were tracked, the others keep their
        pixels, and take back those the tracked ones give up where their stored logits on
        t claim them."""
        ids = [o.obj_id for o in objs]
        if not partial:
            self.volume.write_frame(t, ids, logits)
            return
        tracked = set(ids)
        others = {}
        for other in self.objects.values():
            result = None if other.obj_id in tracked else other.latest_result(t)
            if result is not None:
                others[other.obj_id] = self._frame_logits(result)
        self.volume.write_some(t, ids, logits, others)

    def _run(
        self, objs: list[ObjectState], order: range, reverse: bool, partial: bool = False
    ) -> Iterator[tuple[int, list[int], np.ndarray]]:
        seen, lost = set(), set()  # in this pass, when lost objects may not return
        for t in order:
            # objects removed (or a reset) while the generator was paused stay gone
            objs = [o for o in objs if self.objects.get(o.obj_id) is o]
            if not objs:
                return
            partial = partial or len(objs) < len(self.objects)
            obj_ids = [o.obj_id for o in objs]
            with torch.inference_mode():
                logits = self._track_objects(objs, t, reverse, lost)
            if not self.reappear:
                for obj, obj_logits in zip(objs, logits, strict=True):
                    # lost: an empty mask (an absent object's mask is empty too)
                    if (obj_logits > 0).any():
                        seen.add(obj.obj_id)
                        lost.discard(obj.obj_id)
                    elif obj.obj_id in seen:
                        lost.add(obj.obj_id)
            self._write_frame(t, objs, logits, partial)
            # the frame's activations are freed: give them back to the system now, so the
            # process's resident memory stays near what the caches hold
            release_freed_memory()
            yield t, obj_ids, logits

    def _track_objects(
        self, objs: list[ObjectState], t: int, reverse: bool, lost: set[int]
    ) -> np.ndarray:
        """Every object's logits on frame t, (N, H, W). Objects tracked from memory run in
        batches of objects whose memories have the same layout."""
        logits = np.empty((len(objs), self.height, self.width), dtype=np.float32)
        to_track: list[tuple[int, ObjectState, MemoryInputs]] = []
        for i, obj in enumerate(objs):
            if obj.obj_id in lost and t not in obj.conditioning:
                logits[i] = self._untrack(obj, t)
                continue
            obj.direction[t] = BACKWARD if reverse else FORWARD
            if t in obj.conditioning:
                logits[i] = self._frame_logits(obj.conditioning[t])
                continue
            to_track.append((i, obj, self._memory_for(obj, t, reverse)))
        layouts = [memory.layout for _, _, memory in to_track]
        for batch in batches_by_layout(to_track, layouts, self.batch_size):
            rows = [i for i, _, _ in batch]
            logits[rows] = self._track_batch(
                [obj for _, obj, _ in batch], [m for _, _, m in batch], t, reverse
            )
        return logits

    def _untrack(self, obj: ObjectState, t: int) -> np.ndarray:
        """An object that may not return, past the frame where it was lost: empty, and the
        frame counts as never tracked (a click there starts afresh)."""
        obj.tracked.pop(t, None)
        obj.direction[t] = NOT_TRACKED
        return np.full((self.height, self.width), NO_OBJECT_LOGIT, dtype=np.float32)

    def _track_batch(
        self, objs: list[ObjectState], memories: list[MemoryInputs], t: int, reverse: bool
    ) -> np.ndarray:
        """Track objects on frame t in one batch; their logits (B, H, W)."""
        features = self.frame_features(t)
        with self._autocast():
            prediction = self.model.track_frames(features, memories)
            memory = self.model.frame_memory(
                features,
                prediction.high_res_masks,
                prediction.object_score_logits,
                prediction.obj_ptr,
            )
        low_res = self._finish(prediction.low_res_masks)
        scores = prediction.object_score_logits.float().cpu().view(-1).tolist()
        for i, obj in enumerate(objs):
            # copies, so that each result holds its own rows and not the whole batch
            row = slice(i, i + 1)
            obj_ptr = memory.obj_ptr[row].clone()
            own_memory = FrameMemory(memory.features[row].clone(), memory.pos_enc, obj_ptr)
            result = FrameResult(low_res[row].clone(), scores[i], obj_ptr, own_memory)
            obj.tracked.pop(t, None)
            obj.tracked[t] = result  # newest last, for eviction order
            self._evict(obj, t, reverse)
        return to_frame_resolution(low_res, self.height, self.width).cpu().numpy()

    def _evict(self, obj: ObjectState, t: int, reverse: bool) -> None:
        evict_results(
            obj,
            t,
            reverse,
            self.result_budget_bytes // max(1, len(self.objects)),
            self._memory_options["num_maskmem"],
            self._memory_options["max_obj_ptrs"],
        )
