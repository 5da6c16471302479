"""The integer label volume the tracker fills as frames are segmented.

Label value = object id, 0 = background. Where several objects claim a pixel, the one with
the highest logit wins. The volume is written frame by frame as results arrive, so it is the
only thing that grows with the number of frames.
"""

import numpy as np

from ..errors import SAM2Error


class LabelVolume:
    """A (T, H, W) integer array of object ids, updated per frame.

    out: an existing array to write into (e.g. a memmap or a napari Labels layer's data);
    otherwise a new uint16 array is made and widened to uint32 when an id needs it.
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
        self._journal: dict[int, np.ndarray] | None = None

    def _fit(self, obj_id: int) -> None:
        if obj_id > np.iinfo(self.array.dtype).max:
            if not self._owned:
                raise SAM2Error(
                    f"object id {obj_id} does not fit the label array's {self.array.dtype}"
                )
            self.array = self.array.astype(np.uint32)

    def _remember(self, t: int) -> None:
        if self._journal is not None and t not in self._journal:
            self._journal[t] = self.array[t].copy()

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
        """Frame t from the (N, H, W) logits of all its objects: highest positive logit wins.

        Objects not in `obj_ids` lose their pixels on this frame.
        """
        self._remember(t)
        if not obj_ids:
            self.array[t] = 0
            return
        self._fit(max(obj_ids))
        best = np.argmax(logits, axis=0)
        positive = np.take_along_axis(logits, best[None], axis=0)[0] > 0
        ids = np.asarray(obj_ids, dtype=self.array.dtype)
        self.array[t] = np.where(positive, ids[best], 0)

    def write_object(
        self, t: int, obj_id: int, logits: np.ndarray, others: dict[int, np.ndarray] | None = None
    ) -> None:
        """Update one object on frame t from its (H, W) logits.

        Its pixels are redrawn; where `others` (logits of other objects on this frame) are
        known, the higher logit wins, otherwise the updated object takes the pixel.
        """
        self._fit(obj_id)
        self._remember(t)
        frame = self.array[t]
        claim = logits > 0
        for other_logits in (others or {}).values():
            claim &= logits >= other_logits
        frame = np.where(frame == obj_id, 0, frame)
        frame = np.where(claim, obj_id, frame)
        if others:
            # pixels the object gave up go to the best other object still claiming them
            ids = list(others)
            stacked = np.stack([others[i] for i in ids])
            best = np.argmax(stacked, axis=0)
            best_logit = np.take_along_axis(stacked, best[None], axis=0)[0]
            freed = (frame == 0) & (best_logit > 0) & ~claim
            frame = np.where(freed, np.asarray(ids, dtype=self.array.dtype)[best], frame)
        self.array[t] = frame

    def remove_object(self, obj_id: int) -> None:
        for t in range(self.array.shape[0]):
            frame = self.array[t]
            if (frame == obj_id).any():
                self._remember(t)
                self.array[t] = np.where(frame == obj_id, 0, frame)

    def clear(self) -> None:
        self.array[...] = 0
