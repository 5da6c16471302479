"""Session files: a session saved as the prompts JSON (version 2) with its operation log,
and read back for an exact replay or for its final prompts only."""

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..engine.propagation_run import Progress
from ..errors import SAM2Error
from ..io.prompts import Normalization, ObjectPrompts, Prompts, read_prompts, write_prompts
from .core import Session
from .log import Operation, check_log_fits, operation_document, parse_log
from .objects import SessionObject


def labels_digest(labels: np.ndarray) -> str:
    """SHA-256 of a label volume's values (as uint32, C order), the same for any integer
    dtype that holds them."""
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.uint32).tobytes()).hexdigest()


def session_document(session: Session) -> Prompts:
    """The session as a `Prompts` document: its final prompts, objects, lineage, where its
    model and frames came from, its log and a digest of its labels."""
    tracker = session.tracker
    prompts = Prompts(
        model=session.model_name,
        checkpoint=session.checkpoint,
        image_size=tracker.model.image_size,
        video_axis=session.video_axis,
        fixed=session.fixed,
        num_frames=tracker.num_frames,
        frame_shape=(tracker.height, tracker.width),
        normalization=session.normalization or _used_limits(tracker),
        reappear=tracker.reappear,
        size_cue=tracker.size_cue,
        non_overlap=tracker.non_overlap,
        snap_outlines=tracker.snap_outlines,
        clicked_region=tracker.clicked_region,
        exclusive_clicks=tracker.exclusive_clicks,
        precision=tracker.precision,
        lineage=session.lineage,
        log=[operation_document(op) for op in session.log],
        labels_sha256=labels_digest(tracker.labels()),
    )
    for obj in sorted(session.objects.values(), key=lambda o: o.id):
        prompts.objects.append(
            ObjectPrompts(obj.id, obj.name, colour=obj.colour, parent=obj.parent)
        )
    for (t, obj_id), frame in sorted(session.prompts.items()):
        prompts.object(obj_id).frames[t] = frame
    return prompts


def _used_limits(tracker) -> Normalization | None:
    """The contrast limits the tracker's frames were mapped with (e.g. from percentiles), so
    a replay maps them the same without computing percentiles again; None for per-channel
    limits, which a prompts file cannot hold."""
    limits = np.asarray(tracker.frames.limits, dtype=np.float64)
    if limits.ndim != 2 or not (limits == limits[0]).all():
        return None
    low, high = (float(v) for v in limits[0])
    return Normalization(contrast_limits=(low, high)) if low < high else None


def write_session(path: str | Path, session: Session, overwrite: bool = True) -> Path:
    """Save a session file (atomically)."""
    return write_prompts(path, session_document(session), overwrite=overwrite)


def read_session(path: str | Path) -> tuple[Prompts, list[Operation] | None]:
    """A session (or prompts) file and its checked log (None for a file without a log,
    such as version 1)."""
    prompts = read_prompts(path)
    if prompts.log is None:
        return prompts, None
    return prompts, parse_log(prompts.log, prompts.frame_shape, Path(path).name)


def check_replay_fits(
    prompts: Prompts,
    ops: list[Operation],
    num_frames: int,
    height: int,
    width: int,
    source: str = "session",
) -> None:
    """A SAM2Error when a session file was made on frames of another shape or number, or
    an operation of its log does not fit them."""
    if prompts.frame_shape is not None and tuple(prompts.frame_shape) != (height, width):
        raise SAM2Error(
            f"{source}: frame_shape: the session was made on {prompts.frame_shape[0]} x "
            f"{prompts.frame_shape[1]} (H x W) frames, these are {height} x {width}"
        )
    if prompts.num_frames is not None and prompts.num_frames != num_frames:
        raise SAM2Error(
            f"{source}: num_frames: the session was made on {prompts.num_frames} frames, the "
            f"stack has {num_frames}; use its final prompts only (--prompts-only)"
        )
    check_log_fits(ops, num_frames, height, width, source)


def replay_prompts(
    session: Session,
    prompts: Prompts,
    ops: list[Operation],
    source: str = "session",
    on_frame: Callable[[Progress], None] | None = None,
) -> bool:
    """Replay a session file's log into a new `session`, then take its objects' names,
    colours and parents. Everything is checked against the stack first, so a file that does
    not fit changes nothing. Returns whether the labels match the digest saved with the
    file (True when it has none)."""
    tracker = session.tracker
    if session.log or tracker.objects:
        raise SAM2Error("a session is replayed into a new session, not one in use")
    check_replay_fits(prompts, ops, tracker.num_frames, tracker.height, tracker.width, source)
    for obj in prompts.objects:
        session._check_id(obj.id)
    session.replay(ops, on_frame)
    # the objects the file lists, as it names them (and any the log left in the tracker)
    session.objects = {
        obj.id: SessionObject(obj.id, obj.name, obj.colour, obj.parent) for obj in prompts.objects
    }
    for obj_id in session.tracker.objects:
        session.object(obj_id)
    for daughter, parent in prompts.lineage.items():
        session.object(daughter).parent = parent
    return prompts.labels_sha256 is None or prompts.labels_sha256 == labels_digest(tracker.labels())
