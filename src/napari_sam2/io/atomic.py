"""Writing an output file all at once or not at all: a temporary file beside it, then a rename.

A crash, a full disk or Ctrl-C while writing leaves the old file (or nothing) in place, never
half a label volume, and an existing file is replaced only when the caller says so.
"""

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from ..errors import SAM2Error


def check_writable(path: str | Path, overwrite: bool = False) -> Path:
    """Raise a SAM2Error unless `path` can be written now; checked before long work starts."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise SAM2Error(f"the output {path} is a folder; give a file name")
    if path.exists() and not overwrite:
        raise SAM2Error(f"the output {path} exists; choose another name or allow overwriting")
    if not folder.is_dir():
        raise SAM2Error(f"the output folder {folder} does not exist; create it first")
    # os.access is unreliable on network drives and for root; trying is the only sure test
    probe = folder / f".{path.name}.{secrets.token_hex(4)}.probe"
    try:
        probe.open("xb").close()
    except OSError as exc:
        raise SAM2Error(
            f"cannot write to the output folder {folder} ({exc.strerror or exc})"
        ) from exc
    probe.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it becomes `path`, on error it is removed.

    The temporary file sits in the same folder, so the final rename is atomic.
    """
    path = check_writable(path, overwrite)
    # created with open(), not mkstemp, so the result gets the user's usual permissions
    temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
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
