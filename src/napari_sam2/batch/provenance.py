"""What a stack's outputs were made from (stack file, prompts or seeds, model, checkpoint and the
options that change labels), recorded beside them as `<stem>.inputs.json`, so that a rerun
skips a stack only when its outputs are complete *and* were made from the same inputs."""

import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import SAM2Error
from .stack_task import parse_segment_arguments, segment_stack
from .summary import StackResult, one_line

INPUTS_SUFFIX = ".inputs.json"
RECORD_FORMAT = 1
# `segment` options that say where outputs go or how the work runs, not what the labels are;
# every other option (including ones added later) counts as an input. The prompts, seeds and
# checkpoint files are recorded by content instead of by name, the model on its own.
NOT_INPUTS = frozenset(
    {
        "command",
        "model",
        "stack",
        "out",
        "prompts",
        "seeds",
        "checkpoint",
        "ctc",
        "tracks",
        "review",
        "measurements",
        "geff",
        "quiet",
        "overwrite",
        "cache_dir",
        "compile",
        "device",
    }
)
# the words a rerun prints for a changed part of the record
PARTS = {
    "stack": "the stack file",
    "prompts": "the prompts file",
    "seeds": "the seeds",
    "model": "the model",
    "checkpoint": "the checkpoint",
    "options": "the options",
}


def inputs_path(folder: Path, stem: str) -> Path:
    return folder / f"{stem}{INPUTS_SUFFIX}"


def stack_inputs(argv: Sequence[str]) -> dict:
    """The record of what `segment` with `argv` reads: the stack file's size and modification
    time (hashing every stack would cost a read of the whole batch), the SHA-256 of the prompts
    or seeds file and of the checkpoint, the model name and the options that change labels.

    Raises SAM2Error if the options do not parse or a file cannot be read.
    """
    args = parse_segment_arguments(argv)
    source = "prompts" if getattr(args, "prompts", None) else "seeds"
    given = getattr(args, source)
    options = {
        name: _plain(value)
        for name, value in sorted(vars(args).items())
        if name not in NOT_INPUTS and not callable(value)
    }
    return {
        "format": RECORD_FORMAT,
        "stack": _file_identity(Path(args.stack)),
        source: "auto" if given == "auto" else _digest(Path(given)),
        "model": args.model,
        "checkpoint": None if args.checkpoint is None else _digest(Path(args.checkpoint)),
        "options": options,
    }


def changed_inputs(recorded: Mapping | None, current: Mapping) -> str:
    """Why outputs recorded as made from `recorded` are not those of `current`, in words
    ("the prompts file and the options (direction)"); "" when they are the same."""
    if recorded is None:
        return "no record of the inputs that made them"
    if recorded.get("format") != current.get("format"):
        return "their record is of another format"
    parts = []
    order = list(PARTS)
    keys = set(recorded) | set(current)
    for key in sorted(keys, key=lambda k: (order.index(k) if k in order else len(order), k)):
        if key == "format" or recorded.get(key) == current.get(key):
            continue
        words = PARTS.get(key, key)
        if key == "options":
            before, now = recorded.get(key) or {}, current.get(key) or {}
            names = sorted(n for n in set(before) | set(now) if before.get(n) != now.get(n))
            words += f" ({', '.join('--' + n.replace('_', '-') for n in names)})"
        parts.append(words)
    return " and ".join(parts)


def read_inputs(path: Path) -> dict | None:
    """The record at `path`, or None if there is none or it does not read as one."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_inputs(path: Path, record: Mapping) -> None:
    """Write the record atomically, replacing an earlier one."""
    from ..io.atomic import atomic_output

    text = json.dumps(record, indent=1, sort_keys=True) + "\n"
    with atomic_output(path, overwrite=True) as temporary:
        temporary.write_text(text, encoding="utf-8")


def segment_and_record(
    record_path: str,
    record: Mapping | None,
    stack: str,
    argv: Sequence[str],
    labels: str,
    ctc: str | None = None,
    threads_per_host: Mapping[str, int] | None = None,
) -> StackResult:
    """The dask task: segment the stack (`stack_task.segment_stack`), then record its inputs
    beside the finished outputs. The driver removed any older record before submitting, so a
    task killed between the two writes leaves outputs without a record, which a rerun redoes.
    `record` None (inputs unreadable when planned): nothing is recorded."""
    result = segment_stack(stack, argv, labels, ctc, threads_per_host)
    if result.status != "done" or record is None:
        return result
    try:
        write_inputs(Path(record_path), record)
    except SAM2Error as exc:
        error = one_line(f"segmented, but its inputs could not be recorded: {exc}")
        return StackResult(stack, "failed", seconds=result.seconds, error=error)
    return result


def _plain(value: object) -> object:
    """A JSON value for an option: numbers, text, booleans and lists as they are."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)


def _file_identity(path: Path) -> dict:
    """Size and modification time of a file; of a folder (zarr), its files' count, total size
    and latest modification time."""
    try:
        if not path.is_dir():
            found = path.stat()
            return {"bytes": found.st_size, "modified_ns": found.st_mtime_ns}
        files, size, latest = 0, 0, 0
        for root, _, names in os.walk(path):
            for name in names:
                found = os.stat(os.path.join(root, name))
                files, size = files + 1, size + found.st_size
                latest = max(latest, found.st_mtime_ns)
        return {"files": files, "bytes": size, "modified_ns": latest}
    except OSError as exc:
        raise SAM2Error(f"cannot read {path} ({exc.strerror or exc})") from exc


def _digest(path: Path) -> str:
    try:
        found = path.stat()
    except OSError as exc:
        raise SAM2Error(f"cannot read {path} ({exc.strerror or exc})") from exc
    return _content_digest(str(path.resolve()), found.st_size, found.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _content_digest(path: str, size: int, modified_ns: int) -> str:
    # keyed by size and time as well, so a file rewritten during a session is read again;
    # one prompts file or checkpoint shared by every stack is read once per batch
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise SAM2Error(f"cannot read {path} ({exc.strerror or exc})") from exc
    return f"sha256:{digest.hexdigest()}"
