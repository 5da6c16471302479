"""The Propagate panel's "Tiles" option: propagate the session's prompts in overlapping tiles at
the image's own resolution (engine.tiled_tracking) and write the result into the Labels layer,
all or nothing, as a whole-frame propagation does."""

from collections.abc import Iterator

import numpy as np
from qtpy.QtWidgets import QComboBox, QHBoxLayout, QLabel, QWidget

from ..engine import Progress, Tracker
from ..engine.propagation_plan import plan_passes
from ..engine.tiled_tracking import TiledTracker
from ..engine.tiles import default_overlap, resolve_tile, tile_grid
from ..errors import SAM2Error
from ..io.tracker_prompts import apply_prompts, prompts_from_tracker

CHOICES = ("Off", "Auto", "256", "512", "1024", "2048")


class TilesOption(QWidget):
    """A "Tiles" choice (Off, Auto or a size in pixels) and the tiled propagation it asks for."""

    def __init__(self, host) -> None:
        super().__init__()
        self.host = host
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Tiles"))
        self.combo = QComboBox()
        self.combo.addItems(CHOICES)
        self.combo.setToolTip(
            "Off: the frame is shrunk into the model input. A size: propagate in overlapping "
            "tiles of that many pixels at the image's own resolution (small cells on large "
            "frames); Auto: tiles of the input size when the frame is 1.5 times larger. Each "
            "object's prompts must lie within one tile; the session's log keeps the labels it "
            "writes, so a saved session replays to them."
        )
        self.combo.currentTextChanged.connect(self.describe)
        row.addWidget(self.combo)
        self.grid = QLabel("")
        row.addWidget(self.grid, 1)

    def size(self) -> int | None:
        """The tile size for the current session's frames, or None (whole frames)."""
        session = self.host.session
        if session is None:
            return None
        tracker = session.tracker
        choice = self.combo.currentText().lower()
        return resolve_tile(choice, tracker.height, tracker.width, tracker.model.image_size)

    def describe(self, _=None) -> None:
        """Show how many tiles the current choice makes of the session's frames."""
        session = self.host.session
        size = self.size() if session is not None else None
        if size is None:
            self.grid.setText("")
            return
        tracker = session.tracker
        windows = tile_grid(tracker.height, tracker.width, size, default_overlap(size))
        self.grid.setText(f"{len(windows)} tile{'' if len(windows) == 1 else 's'}")

    def tiled_run(self, direction: str) -> tuple[Iterator[Progress], int] | None:
        """(the run, its number of frame steps) when tiles are on, else None."""
        size = self.size()
        if size is None:
            return None
        tracker = self.host.session.tracker
        # the tracker's (T, H, W) frames of the labels layer, whatever the layer's dimensions
        return propagate_in_tiles(tracker, size, direction, tracker.labels())


def propagate_in_tiles(
    tracker: Tracker, size: int, direction: str, out: np.ndarray
) -> tuple[Iterator[Progress], int]:
    """The prompts `tracker` holds, propagated in tiles of `size` into `out` ((T, H, W) labels),
    as a generator of Progress and its length. Closing the generator early (cancel) or an error
    puts every frame of `out` it changed back."""
    prompts = prompts_from_tracker(tracker)
    frames = [set(obj.frames) for obj in prompts.objects if obj.frames]
    if not frames:
        raise SAM2Error("no object has a prompt: click on an object first")
    passes = plan_passes(direction, None, frames, tracker.num_frames)
    total = sum(len(order) for order, _ in passes)

    def run() -> Iterator[Progress]:
        # written straight into `out`, with the frames it changes kept to put back
        # as the whole-frame propagation would: the session's precision, reappear and size cue
        # (a z-stack's objects are not looked for again once lost)
        tiled = TiledTracker(
            tracker.model,
            tracker.frames,
            size,
            labels_out=out,
            precision=tracker.precision,
            reappear=tracker.reappear,
            size_cue=tracker.size_cue,
            non_overlap=tracker.non_overlap,
            snap_outlines=tracker.snap_outlines,
            grow_outlines=tracker.grow_outlines,
            follow_motion=tracker.follow_motion,
            split_touching=tracker.split_touching,
            clicked_region=tracker.clicked_region,
            exclusive_clicks=tracker.exclusive_clicks,
        )
        tiled.begin_journal()
        finished = False
        try:
            apply_prompts(tiled, prompts, "the session's prompts")
            for done, (t, _) in enumerate(tiled.propagate(direction), 1):
                yield Progress(done, total, t)
            finished = True
        except SAM2Error:
            raise
        except Exception as exc:
            raise SAM2Error(
                f"propagation in tiles failed: {exc}; the labels were left as they were"
            ) from exc
        finally:
            if finished:
                tiled.commit()
            else:
                tiled.rollback()

    return run(), total
