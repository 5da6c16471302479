"""Writing an output file all at once or not at all: a temporary file beside it, then a rename.

A crash, a full disk, Ctrl-C or SIGTERM while writing leaves the old file (or nothing) in place,
never half a label volume, and an existing file is replaced only when the caller says so.
Temporary files carry the writer's host and process id, so a later run on the same machine
removes those that a killed run (SIGKILL, power loss) left behind, and never those of a run
still writing from another node of a cluster.
"""

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..errors import SAM2Error

SUFFIX = ".napari-sam2-tmp"
# most file systems allow 255 bytes per name; the temporary name must fit too
NAME_BYTES = 255
PATH_BYTES = 4095
# ".<output name>.<host>-<pid>-<8 hex><SUFFIX>", the output name shortened to fit
_TEMPORARY = re.compile(
    r"^\..*\.([0-9a-f]{6})-(\d+)-[0-9a-f]{8}(\.[a-z]+)?" + re.escape(SUFFIX) + r"$", re.DOTALL
)


def _host() -> str:
    """This machine, in six hex digits (host names can be long)."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def temporary_name(name: str, kind: str = "") -> str:
    """A fresh hidden name for a temporary file beside output `name`, within NAME_BYTES."""
    tail = f".{_host()}-{os.getpid()}-{secrets.token_hex(4)}{kind}{SUFFIX}"
    room = NAME_BYTES - 1 - len(tail.encode())
    stem = name.encode()[:room].decode(errors="ignore")  # never split a character
    return f".{stem}{tail}"


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove temporary files of ours in `folder` written on this machine by a process that no
    longer runs."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or match.group(1) != _host() or _process_alive(int(match.group(2))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):  # a folder output's (CTC) temporary
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process, or a pid we cannot ask about: leave its files
    return True


def as_path(path: object, what: str) -> Path:
    """`path` as a Path, or a SAM2Error saying a file name was expected (None, a number)."""
    if not isinstance(path, str | os.PathLike) or str(path) == "":
        raise SAM2Error(f"the {what} must be a file name, got {path!r}")
    path = Path(os.fsdecode(path)).expanduser()
    check_name_lengths(path, what)
    return path


def check_name_lengths(path: Path, what: str) -> None:
    """A SAM2Error for a name the file system cannot hold (instead of OSError ENAMETOOLONG)."""
    longest = max((len(part.encode()) for part in path.parts), default=0)
    if longest > NAME_BYTES or len(str(path).encode()) > PATH_BYTES:
        raise SAM2Error(
            f"the {what} {str(path)[:60]}... is too long for the file system (a name may have "
            f"{NAME_BYTES} bytes, a path {PATH_BYTES})"
        )


def check_writable(
    path: str | Path,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    suffixes: tuple[str, ...] = (),
) -> Path:
    """Raise a SAM2Error unless `path` can be written now; checked before long work starts.

    inputs: files the run reads (the stack, the prompts); writing over one of them is refused
    even with overwrite, as the input would be lost. suffixes: the endings the file's format
    allows (e.g. ".tif", ".tiff"), so that no TIFF is written under a name that says PNG.
    """
    path = as_path(path, "output")
    folder = path.parent
    if not path.name or path.name in (".", ".."):
        raise SAM2Error(f"the output {path} names no file; give a file name")
    if len(path.name.encode()) > NAME_BYTES:
        raise SAM2Error(
            f"the output name is {len(path.name.encode())} bytes long; file systems allow "
            f"{NAME_BYTES}: choose a shorter name"
        )
    for source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise SAM2Error(
                f"the output {path} is the input {source}; writing it would destroy the input: "
                "choose another output name"
            )
    if path.is_dir():
        raise SAM2Error(f"the output {path} is a folder; give a file name")
    if suffixes and not path.name.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise SAM2Error(
            f"the output {path.name} must end in {' or '.join(suffixes)}: that is the format "
            "written"
        )
    if path.exists() and not overwrite:
        raise SAM2Error(f"the output {path} exists; choose another name or allow overwriting")
    if not folder.is_dir():
        problem = "is a file, not a folder" if folder.exists() else "does not exist"
        raise SAM2Error(f"the output folder {folder} {problem}; create it first")
    remove_stale_temporaries(folder)
    # os.access is unreliable on network drives and for root; trying is the only sure test
    probe = folder / temporary_name(path.name, ".probe")
    try:
        probe.open("xb").close()
    except OSError as exc:
        raise SAM2Error(
            f"cannot write to the output folder {folder} ({exc.strerror or exc})"
        ) from exc
    probe.unlink(missing_ok=True)
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


@contextlib.contextmanager
def atomic_output(
    path: str | Path,
    overwrite: bool = False,
    inputs: Iterable[str | Path] = (),
    suffixes: tuple[str, ...] = (),
) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it becomes `path`, on error or
    interruption it is removed.

    The temporary file sits in the same folder, so the final rename is atomic.
    """
    path = check_writable(path, overwrite, inputs, suffixes)
    # created with open(), not mkstemp, so the result gets the user's usual permissions
    temporary = path.parent / temporary_name(path.name)
    try:
        temporary.open("xb").close()
        yield temporary
        if path.exists() and not overwrite:
            raise SAM2Error(f"the output {path} appeared while writing; it was left untouched")
        os.replace(temporary, path)
    except OSError as exc:
        raise SAM2Error(f"writing {path} failed ({exc.strerror or exc})") from exc
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(
    folder: Path, what: str, check_replace: Callable[[Path], object]
) -> Iterator[Path]:
    """Yield a temporary path (not yet created) beside `folder` to write a folder to; on success
    it becomes `folder`, on error or interruption it is removed. An existing `folder` is passed
    to `check_replace` (which raises if it must stay) just before it is moved aside, and put
    back if the rename fails. `what` names the folder in the error ("CTC folder")."""
    remove_stale_temporaries(folder.parent)
    temporary = folder.parent / temporary_name(folder.name)
    old = folder.parent / temporary_name(folder.name, ".old")
    try:
        yield temporary
        if folder.exists():
            check_replace(folder)
            os.replace(folder, old)
        try:
            os.replace(temporary, folder)
        except OSError:
            if old.exists():
                os.replace(old, folder)
            raise
    except OSError as exc:
        raise SAM2Error(f"writing the {what} {folder} failed ({exc.strerror or exc})") from exc
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
