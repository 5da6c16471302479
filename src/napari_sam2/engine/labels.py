"""The integer label volume the tracker fills as frames are segmented.

Label value = object id, 0 = background. Where several objects claim a pixel, the one with
the highest logit wins. The volume is written frame by frame as results arrive, so it is the
only thing that grows with the number of frames.
"""

from collections.abc import Iterable

import numpy as np

from ..errors import SAM2Error


class LabelVolume:
    """A (T, H, W) integer array of object ids, updated per frame.

    out: an existing array to write into (e.g. a memmap or a napari Labels layer's data);
    otherwise a new uint16 array is made and widened to uint32 when an id needs it. Labels
    already in `out` that the tracker never writes (work of the user's own) keep their
    pixels: objects take only background and their own pixels there, and `clear` leaves them.
    """

    def __init__(self, num_frames: int, height: int, width: int, out: np.ndarray | None = None):
        shape = (num_frames, height, width)
        if out is not None:
            if tuple(out.shape) != shape:
                raise SAM2Error(f"label array has shape {out.shape}, expected {shape}")
            if np.dtype(out.dtype).kind not in "iu":
                raise SAM2Error(f"label array must have an integer dtype, got {out.dtype}")
            self.array = out
        else:
            self.array = np.zeros(shape, dtype=np.uint16)
        self._owned = out is None
        self.ids: set[int] = set()  # labels the tracker has written (its objects)
        self._journal: dict[int, np.ndarray] | None = None

    def keep_dtype(self) -> None:
        """Treat the array from now on as one the caller gave: it never widens, and labels in
        it that the tracker did not write survive its writes."""
        self._owned = False

    @property
    def max_id(self) -> int:
        """The largest object id the volume can hold."""
        dtype = np.uint32 if self._owned else self.array.dtype
        return int(np.iinfo(dtype).max)

    def check_id(self, obj_id: int) -> None:
        """A clear error for an id the label array cannot hold (it would wrap around)."""
        if obj_id > self.max_id:
            dtype = np.dtype(np.uint32 if self._owned else self.array.dtype)
            raise SAM2Error(
                f"object id {obj_id} does not fit the label array's {dtype.name}: ids go up "
                f"to {self.max_id}; use a smaller id"
            )

    def _fit(self, obj_ids: Iterable[int]) -> None:
        for obj_id in obj_ids:
            self.check_id(obj_id)
            if obj_id > np.iinfo(self.array.dtype).max:
                self.array = self.array.astype(np.uint32)
            self.ids.add(int(obj_id))

    def _foreign(self, frame: np.ndarray) -> np.ndarray | None:
        """Pixels of labels in a given array that no object of the tracker wrote."""
        if self._owned:
            return None
        return (frame != 0) & ~np.isin(frame, list(self.ids))

    def _remember(self, t: int) -> None:
        if self._journal is not None and t not in self._journal:
            self._journal[t] = self.array[t].copy()

    def make_room(self, obj_ids: Iterable[int]) -> None:
        """Check the ids (and, for an array of its own, widen it to hold them) before a caller
        builds a whole frame for `put_frame` (tiles stitch frames from several trackers)."""
        self._fit(obj_ids)

    def put_frame(self, t: int, frame: np.ndarray) -> None:
        """Frame t becomes `frame` (built by the caller after `make_room`), journaled."""
        self._remember(t)
        self.array[t] = frame

    def begin_journal(self) -> None:
        """Start recording frames before they change, so `rollback` can restore them."""
        self._journal = {}

    def commit(self) -> None:
        """Keep the changes since `begin_journal`."""
        self._journal = None

    def rollback(self) -> list[int]:
        """Restore every frame changed since `begin_journal`; returns those frames."""
        journal, self._journal = self._journal or {}, None
        for t, frame in journal.items():
            self.array[t] = frame
        return sorted(journal)

    def write_frame(self, t: int, obj_ids: list[int], logits: np.ndarray) -> None:
        """Frame t from the (N, H, W) logits of its objects: the highest positive logit wins.

        Other objects of the tracker lose their pixels on this frame.
        """
        self._fit(obj_ids)
        self._remember(t)
        if obj_ids:
            best = np.argmax(logits, axis=0)
            positive = np.take_along_axis(logits, best[None], axis=0)[0] > 0
            ids = np.asarray(obj_ids, dtype=self.array.dtype)
            composite = np.where(positive, ids[best], 0).astype(self.array.dtype, copy=False)
        else:
            composite = np.zeros(self.array.shape[1:], dtype=self.array.dtype)
        foreign = self._foreign(self.array[t])
        if foreign is not None and foreign.any():
            composite = np.where(foreign, self.array[t], composite)
        self.array[t] = composite

    def write_some(
        self, t: int, obj_ids: list[int], logits: np.ndarray, others: dict[int, np.ndarray]
    ) -> None:
        """Frame t after tracking only `obj_ids` ((N, H, W) logits): every other label keeps
        its pixels; among the tracked objects the highest positive logit wins; pixels they
        give up go to the other object whose stored logits (`others`) claim them most."""
        self._fit(obj_ids)
        self._remember(t)
        frame = self.array[t]
        ids = np.asarray(obj_ids, dtype=self.array.dtype)
        best = np.argmax(logits, axis=0)
        positive = np.take_along_axis(logits, best[None], axis=0)[0] > 0
        was_tracked = np.isin(frame, ids)
        held_by_others = (frame != 0) & ~was_tracked
        new = np.where(held_by_others, frame, np.where(positive, ids[best], 0))
        if others:
            other_ids = np.asarray(list(others), dtype=self.array.dtype)
            stacked = np.stack(list(others.values()))
            other_best = np.argmax(stacked, axis=0)
            claimed = np.take_along_axis(stacked, other_best[None], axis=0)[0] > 0
            freed = was_tracked & (new == 0) & claimed
            new = np.where(freed, other_ids[other_best], new)
        self.array[t] = new

    def write_object(
        self, t: int, obj_id: int, logits: np.ndarray, others: dict[int, np.ndarray] | None = None
    ) -> None:
        """Update one object on frame t from its (H, W) logits.

        Its pixels are redrawn; where `others` (logits of other objects on this frame) are
        known, the higher logit wins, otherwise the updated object takes the pixel. Only
        pixels the object holds or held change: those it gives up go to the other object
        claiming them most.
        """
        self._fit([obj_id])
        self._remember(t)
        frame = self.array[t]
        claim = logits > 0
        foreign = self._foreign(frame)
        if foreign is not None:
            claim &= ~foreign
        for other_logits in (others or {}).values():
            claim &= logits >= other_logits
        was = frame == obj_id
        frame = np.where(was, 0, frame)
        frame = np.where(claim, obj_id, frame)
        if others:
            # pixels the object gave up go to the best other object still claiming them
            ids = list(others)
            stacked = np.stack([others[i] for i in ids])
            best = np.argmax(stacked, axis=0)
            best_logit = np.take_along_axis(stacked, best[None], axis=0)[0]
            freed = was & (best_logit > 0) & ~claim
            frame = np.where(freed, np.asarray(ids, dtype=self.array.dtype)[best], frame)
        self.array[t] = frame

    def remove_object(self, obj_id: int) -> None:
        self.ids.discard(int(obj_id))
        for t in range(self.array.shape[0]):
            frame = self.array[t]
            if (frame == obj_id).any():
                self._remember(t)
                self.array[t] = np.where(frame == obj_id, 0, frame)

    def clear(self) -> None:
        """Erase every object the tracker wrote (labels of the array's own stay)."""
        if self._owned:
            self.array[...] = 0
        else:
            ids = list(self.ids)
            for t in range(self.array.shape[0]):
                frame = self.array[t]
                mine = np.isin(frame, ids)
                if mine.any():
                    self._remember(t)
                    self.array[t] = np.where(mine, 0, frame)
        self.ids.clear()
