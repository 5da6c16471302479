"""Propagation as an all-or-nothing run for front-ends: progress per frame, and the labels
restored as they were if the run fails or is stopped before the end."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..errors import SAM2Error
from .tracker import Tracker


@dataclass(frozen=True)
class Progress:
    """done of total frame steps finished; frame is the frame just written."""

    done: int
    total: int
    frame: int


def propagate_or_restore(
    tracker: Tracker,
    direction: str = "both",
    start_frame: int | None = None,
    obj_ids: Iterable[int] | None = None,
) -> Iterator[Progress]:
    """Run `tracker.propagate` (all objects, or `obj_ids`), yielding progress after each frame.

    The label volume changes frame by frame as usual, but unless the run reaches its end
    every changed frame is put back: closing the generator (cancel) or an error loses
    nothing the user had. Errors reach the caller as `SAM2Error`.
    """
    total = tracker.propagation_length(direction, start_frame, obj_ids)
    tracker.volume.begin_journal()
    finished = False
    frame = None
    try:
        for done, (frame, _, _) in enumerate(tracker.propagate(direction, start_frame, obj_ids), 1):
            yield Progress(done, total, frame)
        finished = True
    except SAM2Error:
        raise
    except Exception as exc:
        where = "before the first frame" if frame is None else f"after frame {frame}"
        raise SAM2Error(
            f"propagation failed {where}: {exc}; the labels were left as they were"
        ) from exc
    finally:
        if finished:
            tracker.volume.commit()
        else:
            tracker.volume.rollback()
