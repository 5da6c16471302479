"""Session files on the command line: which model a session asks for, and its log replayed
into a tracker (or only its final prompts, on another stack of the same geometry)."""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..engine import Tracker
from ..engine.labels import LabelVolume
from ..engine.precision import resolve_precision
from ..engine.propagation_run import Progress
from ..errors import SAM2Error
from ..io.prompts import Prompts
from .core import Session
from .files import replay_prompts
from .log import Operation, parse_log


def session_log(prompts: Prompts, source: str, prompts_only: bool) -> list[Operation] | None:
    """The checked log to replay, or None to apply only the final prompts (a file without a
    log, such as version 1, or prompts_only)."""
    if prompts.log is None or prompts_only:
        return None
    return parse_log(prompts.log, prompts.frame_shape, source)


def session_model(
    prompts: Prompts, source: str, model: str | None, checkpoint: str | None, image_size
) -> tuple[str | None, int | None]:
    """(checkpoint, image_size) for a run: those given, else the session's own, so a replay
    runs the model the session ran (a session made with a checkpoint file needs that file)."""
    if image_size is None:
        image_size = prompts.image_size
    if checkpoint is None and model is None and prompts.checkpoint is not None:
        if not Path(prompts.checkpoint).is_file():
            raise SAM2Error(
                f"{source}: checkpoint: the session used {prompts.checkpoint}, which is not "
                "here; pass --checkpoint FILE (or --model NAME)"
            )
        checkpoint = prompts.checkpoint
    return checkpoint, image_size


def session_precision(prompts: Prompts, asked: str | None, device) -> str:
    """The precision to run a prompts or session file in: the one asked for, else the one
    the session recorded, so a replay computes what the session did. A session saved before
    sessions recorded it ran in what "auto" meant then (bfloat16 on CUDA, float32 elsewhere);
    a file without a log gets "auto"."""
    if asked is not None:
        return asked
    if prompts.precision is not None:
        return prompts.precision
    if prompts.log is not None:  # "auto" means today what it meant then
        return resolve_precision("auto", device, prompts.image_size or 0)
    return "auto"


def replay_log(
    tracker: Tracker,
    prompts: Prompts,
    ops: list[Operation],
    source: str,
    on_frame: Callable[[Progress], None] | None = None,
) -> tuple[Session, bool]:
    """Replay a session's log into a new tracker; (the session, whether its labels equal
    those saved with the file)."""
    ids = [obj.id for obj in prompts.objects] + [getattr(op, "object", 0) for op in ops]
    if max(ids, default=0) > np.iinfo(np.uint16).max:  # a session made on uint32 labels
        shape = (tracker.num_frames, tracker.height, tracker.width)
        tracker.volume = LabelVolume(*shape, out=np.zeros(shape, dtype=np.uint32))
    session = Session(
        tracker,
        model_name=prompts.model,
        checkpoint=prompts.checkpoint,
        video_axis=prompts.video_axis,
        fixed=prompts.fixed,
        normalization=prompts.normalization,
    )
    session.take_choices(prompts)
    same = replay_prompts(session, prompts, ops, source, on_frame)
    return session, same


def session_fixes(prompts: Prompts) -> dict[int, int]:
    """The planes of the other leading axes the session was made on, {axis index: index}."""
    return {i: v for i, v in enumerate(prompts.fixed or ()) if i != prompts.video_axis}
