"""The `napari-sam2` command: list and fetch weights, segment a stack headless from a prompts
file, fine-tune a model on proofread stacks, write a sample to try it on, or open napari.

Every user mistake ends as one line, "napari-sam2: error: ...", and a non-zero exit code;
outputs are written atomically, so a failed run leaves no partial file behind.
"""

import argparse
import signal
import sys
import threading

from ..errors import SAM2Error
from . import batch, models, sample, segment, train, view
from .common import PROG


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` (default: sys.argv[1:]); returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already reported
        return exc.code if isinstance(exc.code, int) else 2
    previous = _on_sigterm(_terminate)
    try:
        return args.command(args)
    except SAM2Error as exc:
        message = " ".join(str(exc).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except OSError as exc:  # the file system said no (permissions, a full disk, a bad path)
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"{PROG}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"{PROG}: terminated; existing outputs were left as they were", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; existing outputs were left as they were", file=sys.stderr)
        return 130
    finally:
        _on_sigterm(previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as a kind of KeyboardInterrupt so that everything Ctrl-C does runs
    (temporary files removed, labels restored, `train` telling how to resume)."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def _on_sigterm(handler):
    """Install `handler` for SIGTERM (main thread only); returns the one it replaces."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Segment and track objects through time-lapses and z-stacks with SAM 2.",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    models.add_parsers(commands)
    segment.add_parser(commands)
    batch.add_parser(commands)
    train.add_parser(commands)
    sample.add_parser(commands)
    view.add_parser(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
