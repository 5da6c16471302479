"""Which stacks a rerun skips: those whose outputs are complete for the stack's video and were
made from the same inputs (`provenance`); every other stack is segmented again, and why."""

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import SAM2Error
from .outputs import finished_outputs
from .provenance import changed_inputs, read_inputs
from .stack_task import parse_segment_arguments
from .summary import StackResult


@dataclass(frozen=True)
class Decision:
    """A stack's row before running (failed, skipped or pending) and, for a stack whose
    outputs are complete but must be made again, why (else "")."""

    result: StackResult
    reason: str = ""


def known_result(
    stack: str,
    argv: Sequence[str],
    labels: Path,
    ctc: Path | None,
    record: Path,
    inputs: Mapping | None,
    overwrite: bool,
) -> Decision:
    """Skip the stack if its outputs are complete and `record` says they were made from
    `inputs` (this run's); else it is pending. `inputs` None: they could not be read, so the
    stack runs and `segment` reports the problem."""
    if overwrite:
        return Decision(StackResult(stack, "pending"))
    start = time.perf_counter()
    shape = video_shape(argv)
    objects = None if shape is None else finished_outputs(labels, ctc, shape)
    if objects is None:
        return Decision(StackResult(stack, "pending"))
    if inputs is None:
        return Decision(StackResult(stack, "pending"), "its inputs cannot be read")
    reason = changed_inputs(read_inputs(record), inputs)
    if reason:
        return Decision(StackResult(stack, "pending"), reason)
    seconds = time.perf_counter() - start
    return Decision(StackResult(stack, "skipped", shape[0], objects, seconds))


def video_shape(argv: Sequence[str]) -> tuple[int, int, int] | None:
    """(frames, height, width) that `segment` with `argv` reads, or None if it cannot tell.

    The video axis and fixed planes are chosen as `segment` chooses them: the options, else
    the prompts (or session) file's.
    """
    from ..cli.common import parse_fixes
    from ..io import open_stack, read_prompts, video_frames
    from ..session.headless import session_fixes

    try:
        args = parse_segment_arguments(argv)
        axis, fixed = args.axis, parse_fixes(args.fix)
        if getattr(args, "prompts", None):
            prompts = read_prompts(args.prompts)
            axis = axis if axis is not None else prompts.video_axis
            fixed = fixed or session_fixes(prompts)
        frames = video_frames(open_stack(args.stack), axis, fixed)
    except SAM2Error:
        return None
    return len(frames), int(frames.shape[1]), int(frames.shape[2])
