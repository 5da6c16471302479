"""The headless session: a tracker on one stack, its objects and the log of every edit.

Front-ends (the widget, the CLI, scripts) change the segmentation only through a `Session`,
so everything the user did is in its log, and replaying the log on a new session with the
same model, frames and device gives the same labels, voxel for voxel.
"""

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

import numpy as np

from ..engine import Tracker, propagate_or_restore
from ..engine.propagation import splits_touching
from ..engine.propagation_run import Progress
from ..errors import SAM2Error
from ..io.prompt_data import SETTING_CHOICES
from ..io.prompts import FramePrompts, Normalization
from ..io.tracker_prompts import apply_frame
from .log import (
    DIRECTIONS,
    RUN_FLAGS,
    CandidateChoice,
    MaskPrompt,
    Operation,
    Paint,
    PromptEdit,
    Propagation,
    RemoveObject,
    Reset,
    describe,
)
from .objects import SessionObject

_COVERS = {"forward": {"forward"}, "backward": {"backward"}, "both": {"forward", "backward"}}
# the settings a prompt edit is logged with and replayed under
_CLICK_SETTINGS = ("clicked_region", "exclusive_clicks")


class _TrackerSetting:
    """A setting of the session's Tracker, read and set (as a bool) through the session."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, session, owner: type | None = None):
        return self if session is None else getattr(session.tracker, self.name)

    def __set__(self, session, value: bool) -> None:
        setattr(session.tracker, self.name, bool(value))


class Session:
    """Objects, prompts and the operation log over one `Tracker`.

    The tracker's label array keeps its dtype (uint16 unless the tracker was given another
    array): object ids beyond it are refused.

    model_name / checkpoint / video_axis / fixed / normalization describe where the frames
    and model came from, so a saved session can be replayed (see `session.files`); they do
    not change what the session computes.
    """

    def __init__(
        self,
        tracker: Tracker,
        *,
        model_name: str | None = None,
        checkpoint: str | None = None,
        video_axis: str | int | None = None,
        fixed: tuple[int, ...] | None = None,
        normalization: Normalization | None = None,
    ) -> None:
        # a session's label array never widens behind its back, and labels it did not write
        # survive propagation: the same in the widget (a napari layer's array), a script and
        # a replay, so that a replay computes what the session computed
        tracker.volume.keep_dtype()
        self.tracker = tracker
        self.model_name = model_name
        self.checkpoint = checkpoint
        self.video_axis = video_axis
        self.fixed = fixed
        self.normalization = normalization
        self.objects: dict[int, SessionObject] = {}
        self.log: list[Operation] = []
        # the prompts each (frame, object) holds now, exactly as given
        self.prompts: dict[tuple[int, int], FramePrompts] = {}
        # frames edited by hand since they were last propagated or sent as prompts
        self.painted: set[int] = set()
        # directions each object was propagated in since its prompts last changed
        self._covered: dict[int, set[str]] = {}
        # while a propagation runs (or is paused), edits would interleave with it in ways
        # the log cannot replay: they are refused, and hand paint is logged after the run
        self._running = False
        self._paint_after_run: set[int] = set()

    # -- objects ----------------------------------------------------------------------

    # the Tracker's settings a prompts or session file may choose (`take_choices`)
    reappear = _TrackerSetting()
    size_cue = _TrackerSetting()
    non_overlap = _TrackerSetting()
    snap_outlines = _TrackerSetting()
    exclusive_clicks = _TrackerSetting()
    clicked_region = _TrackerSetting()

    def take_choices(self, prompts) -> None:
        """Follow the choices a prompts or session file recorded (whether objects may
        reappear, the size cue, objects kept apart, outlines snapped to the image, clicks kept
        to their pieces, masks leaving out other objects' clicks); those it does not record
        keep this session's defaults. (A session's log says for each of its clicks which of
        the last two it ran with; the file's choice is for clicks to come.)"""
        for choice in SETTING_CHOICES:
            if getattr(prompts, choice) is not None:
                setattr(self, choice, getattr(prompts, choice))

    def add_object(self, name: str = "", parent: int | None = None) -> int:
        """A new object with the next free id; its id."""
        new = max(self.objects, default=0) + 1
        self.objects[new] = SessionObject(new, name, parent=parent)
        return new

    def object(self, obj_id: int) -> SessionObject:
        """The object with this id, made if new (its id checked against the label dtype)."""
        obj_id = self._check_id(obj_id)
        if obj_id not in self.objects:
            self.objects[obj_id] = SessionObject(obj_id)
        return self.objects[obj_id]

    def rename(self, obj_id: int, name: str) -> None:
        self.object(obj_id).name = name

    @property
    def lineage(self) -> dict[int, int]:
        """Daughter id -> parent id, for objects that divided from another."""
        return {i: o.parent for i, o in sorted(self.objects.items()) if o.parent is not None}

    def _check_id(self, obj_id) -> int:
        if not isinstance(obj_id, int | np.integer) or isinstance(obj_id, bool) or obj_id < 1:
            raise SAM2Error(f"object ids are positive integers (their label value), got {obj_id!r}")
        dtype = self.tracker.volume.array.dtype
        largest = np.iinfo(dtype).max
        if obj_id > largest:
            raise SAM2Error(
                f"object id {obj_id} does not fit the labels ({dtype}, at most {largest})"
            )
        return int(obj_id)

    # -- prompts ----------------------------------------------------------------------

    def _check_not_running(self) -> None:
        if self._running:
            raise SAM2Error(
                "a propagation is running: cancel it or let it finish before changing prompts "
                "or objects"
            )

    def set_prompts(self, t: int, obj_id: int, prompts: FramePrompts) -> np.ndarray:
        """The prompts of one object on frame t become `prompts` (clicks and box, or a mask;
        empty clears them). Returns the object's logits on frame t, float32 (H, W)."""
        self._check_not_running()
        if prompts.mask is not None:
            return self.add_mask(t, obj_id, prompts.mask)
        obj_id = self.object(obj_id).id
        edit = FramePrompts(list(prompts.points), prompts.box)
        logits = apply_frame(self.tracker, t, obj_id, edit)
        tracker = self.tracker
        self._record(
            PromptEdit(int(t), obj_id, edit, tracker.clicked_region, tracker.exclusive_clicks)
        )
        return logits

    def add_mask(self, t: int, obj_id: int, mask: np.ndarray) -> np.ndarray:
        """A mask (H, W) becomes the prompt of one object on frame t."""
        self._check_not_running()
        obj_id = self.object(obj_id).id
        mask = np.asarray(mask, dtype=bool).copy()
        logits = self.tracker.add_mask(t, obj_id, mask)
        self._record(MaskPrompt(int(t), obj_id, mask, self.tracker.exclusive_clicks))
        return logits

    def choose_candidate(self, t: int, obj_id: int, index: int) -> np.ndarray:
        """Candidate `index` of the last single click on frame t becomes the result there."""
        self._check_not_running()
        logits = self.tracker.choose_candidate(t, obj_id, index)
        self._record(CandidateChoice(int(t), int(obj_id), int(index), self.tracker.clicked_region))
        return logits

    def candidate_count(self, t: int, obj_id: int) -> int:
        if obj_id not in self.tracker.objects:
            return 0
        return self.tracker.candidate_count(t, obj_id)

    def record_paint(self, frames: Iterable[int]) -> None:
        """Log frames of the label volume as they are after a hand edit, so a replay paints
        them the same (the edit itself went straight into the label array). During a
        propagation they are logged when it ends, as they are then."""
        if self._running:
            self._paint_after_run.update(int(t) for t in frames)
            return
        for t in sorted({int(t) for t in frames}):
            self._record(Paint(t, self.tracker.labels()[t].copy()))
            self.painted.add(t)

    def record_labels(self, frames: Iterable[int]) -> None:
        """Log frames of the label volume that a tool outside the session wrote (e.g. seeds
        or cell tracking), so a replay writes them the same; unlike `record_paint` they do
        not count as painted by hand."""
        self._check_not_running()
        for t in sorted({int(t) for t in frames}):
            self._record(Paint(t, self.tracker.labels()[t].copy(), by_hand=False))

    def send_painted(self) -> None:
        """Every object's mask on every painted frame becomes its prompt there."""
        labels = self.tracker.labels()
        for t in sorted(self.painted):
            for obj in np.unique(labels[t]):
                if obj:
                    self.add_mask(t, int(obj), labels[t] == obj)
        self.painted.clear()

    def remove_object(self, obj_id: int) -> None:
        """Forget an object: its prompts, results and labels."""
        self._check_not_running()
        obj_id = int(obj_id)
        if obj_id not in self.objects and obj_id not in self.tracker.objects:
            raise SAM2Error(f"there is no object {obj_id}; objects: {sorted(self.objects)}")
        if obj_id in self.tracker.objects:
            self.tracker.remove_object(obj_id)
        self.objects.pop(obj_id, None)
        self._record(RemoveObject(obj_id, self.tracker.exclusive_clicks))

    def reset(self) -> None:
        """Forget every object and prompt."""
        self._check_not_running()
        self.tracker.reset()
        self.objects.clear()
        self._record(Reset())

    def _record(self, op: Operation) -> None:
        self.log.append(op)
        for obj_id in self.tracker.neighbours_redecoded:  # their prompted frames changed
            self._covered.pop(obj_id, None)
        self.tracker.neighbours_redecoded = []
        if isinstance(op, PromptEdit | MaskPrompt | CandidateChoice):
            key = (op.frame, op.object)
            self._covered.pop(op.object, None)
            if isinstance(op, PromptEdit):
                self.prompts[key] = op.prompts
                if op.prompts.is_empty():
                    del self.prompts[key]
            elif isinstance(op, MaskPrompt):
                self.prompts[key] = FramePrompts(mask=op.mask)
        elif isinstance(op, RemoveObject):
            self.prompts = {k: v for k, v in self.prompts.items() if k[1] != op.object}
            self._covered.pop(op.object, None)
        elif isinstance(op, Reset):
            self.prompts.clear()
            self._covered.clear()
            self.painted.clear()

    # -- propagation ------------------------------------------------------------------

    def stale_objects(self, direction: str) -> list[int]:
        """Prompted objects not yet propagated in `direction` since their prompts changed."""
        need = _COVERS.get(direction, set())
        return [
            i
            for i, state in sorted(self.tracker.objects.items())
            if (state.conditioning or state.pending) and not need <= self._covered.get(i, set())
        ]

    def objects_to_propagate(self, direction: str, objects="changed") -> list[int] | None:
        """The object ids a propagation runs (None: all). objects: "changed" (those whose
        prompts changed since they were last propagated this way, or all when none did),
        "all", or ids."""
        if objects == "all":
            return None
        if objects == "changed":
            prompted = [i for i, s in self.tracker.objects.items() if s.conditioning or s.pending]
            stale = self.stale_objects(direction)
            return stale if stale and len(stale) < len(prompted) else None
        if isinstance(objects, str):
            raise SAM2Error(f'objects is "changed", "all" or object ids, got {objects!r}')
        return sorted({int(i) for i in objects})

    def propagation_length(
        self, direction: str = "forward", start_frame: int | None = None, objects="changed"
    ) -> int:
        obj_ids = self.objects_to_propagate(direction, objects)
        return self.tracker.propagation_length(direction, start_frame, obj_ids)

    def propagate(
        self, direction: str = "forward", start_frame: int | None = None, objects="changed"
    ) -> Iterator[Progress]:
        """Propagate (see `Tracker.propagate`), all or nothing: progress per frame; closing
        the iterator (cancel) or an error puts the labels back. Only objects whose prompts
        changed are re-tracked unless objects="all" (see `objects_to_propagate`), so the
        others keep their masks. Bad arguments raise here, before anything runs."""
        self._check_not_running()
        if direction not in DIRECTIONS:
            raise SAM2Error(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        obj_ids = self.objects_to_propagate(direction, objects)
        self.tracker.propagation_length(direction, start_frame, obj_ids)  # checks, encodes
        op = Propagation(
            direction,
            None if start_frame is None else int(start_frame),
            None if obj_ids is None else tuple(obj_ids),
            self.tracker.reappear,
            size_cue=self.tracker.size_cue,
            non_overlap=self.tracker.non_overlap,
            snap_outlines=self.tracker.snap_outlines,
            # written only where it mattered: logs from before it existed ran without it
            grow_outlines=self.tracker.snap_outlines and self.tracker.grow_outlines,
            follow_motion=self.tracker.follow_motion,
            split_touching=splits_touching(self.tracker),
        )
        return self._run(op)

    def _run(self, op: Propagation) -> Iterator[Progress]:
        """Run `op`; with op.frames set (a replayed cancel), stop after that many frames,
        before the next one is computed, as the cancelled run did."""
        self._check_not_running()
        run = propagate_or_restore(self.tracker, op.direction, op.start_frame, op.objects)
        done, finished = 0, False
        self._running = True
        try:
            while op.frames is None or done < op.frames:
                step = next(run, None)
                if step is None:
                    finished = True
                    break
                done += 1
                yield step
        finally:
            run.close()
            self._running = False
            self.log.append(replace(op, frames=None if finished else done))
            if finished:
                ran = list(self.tracker.objects) if op.objects is None else op.objects
                for i in ran:
                    self._covered.setdefault(i, set()).update(_COVERS[op.direction])
                self.painted.clear()
            painted, self._paint_after_run = self._paint_after_run, set()
            self.record_paint(painted)

    # -- replay -----------------------------------------------------------------------

    def replay(
        self, ops: Iterable[Operation], on_frame: Callable[[Progress], None] | None = None
    ) -> None:
        """Apply logged operations in order (they are logged again); on_frame is called
        after each propagated frame."""
        for i, op in enumerate(ops):
            try:
                self._replay_one(op, on_frame)
            except SAM2Error as exc:
                raise SAM2Error(f"replaying log[{i}] ({describe(op)}): {exc}") from exc

    def _replay_one(self, op: Operation, on_frame) -> None:
        if isinstance(op, PromptEdit | CandidateChoice | MaskPrompt | RemoveObject):
            # as the click was made; the session's own settings stay for the clicks to come
            chosen = {name: getattr(self, name) for name in _CLICK_SETTINGS}
            for name in _CLICK_SETTINGS:
                setattr(self, name, getattr(op, name, False))
            try:
                if isinstance(op, PromptEdit):
                    self.set_prompts(op.frame, op.object, op.prompts)
                elif isinstance(op, CandidateChoice):
                    self.choose_candidate(op.frame, op.object, op.index)
                elif isinstance(op, MaskPrompt):
                    self.add_mask(op.frame, op.object, op.mask)
                else:
                    self.remove_object(op.object)
            finally:
                for name, value in chosen.items():
                    setattr(self, name, value)
        elif isinstance(op, Propagation):
            self.tracker.reappear = op.reappear
            self.tracker.size_cue = op.size_cue
            self.tracker.non_overlap = op.non_overlap
            self.tracker.snap_outlines = op.snap_outlines
            # as the run was made; later runs as the model's default or the user says
            chosen = {name: getattr(self.tracker, name) for name in RUN_FLAGS}
            for name in RUN_FLAGS:
                setattr(self.tracker, name, getattr(op, name))
            try:
                self.tracker.propagation_length(op.direction, op.start_frame, op.objects)
                run = self._run(op)
                for step in run:
                    if on_frame is not None:
                        on_frame(step)
                run.close()
            finally:
                for name, value in chosen.items():
                    setattr(self.tracker, name, value)
        elif isinstance(op, Paint):
            largest = int(op.labels.max(initial=0))
            if largest > np.iinfo(self.tracker.labels().dtype).max:
                raise SAM2Error(
                    f"painted label {largest} does not fit the labels "
                    f"({self.tracker.labels().dtype})"
                )
            self.tracker.labels()[op.frame] = op.labels
            self._record(op)
            if op.by_hand:
                self.painted.add(op.frame)
        elif isinstance(op, Reset):
            self.reset()
