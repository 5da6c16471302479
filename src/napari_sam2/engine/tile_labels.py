"""The label volume a `TiledTracker` fills: a `LabelVolume` whose frames are also written whole,
stitched from the windows' results (the windows' logits are never a frame-sized stack)."""

import numpy as np

from .labels import LabelVolume


class TileLabels(LabelVolume):
    """A LabelVolume that takes whole stitched frames besides per-object writes."""

    def make_room(self, obj_ids: list[int]) -> None:
        """Check (and, for an array of its own, widen for) the ids a stitched frame holds."""
        self._fit(obj_ids)

    def put_frame(self, t: int, frame: np.ndarray) -> None:
        """Frame t becomes `frame` (made by the caller after `make_room`), journaled."""
        self._remember(t)
        self.array[t] = frame
