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
    previous = _install_stop_handlers()
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
        _restore_handlers(previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as a kind of KeyboardInterrupt so that everything Ctrl-C does runs
    (temporary files removed, labels restored, `train` telling how to resume)."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def _install_stop_handlers() -> dict | None:
    """SIGTERM raises Terminated and SIGINT KeyboardInterrupt while a command runs (main thread
    only), whatever the host process had installed (napari, dask and Qt each change SIGINT);
    returns the handlers they replace."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return {
        signal.SIGTERM: signal.signal(signal.SIGTERM, _terminate),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
    }


def _restore_handlers(previous: dict | None) -> None:
    for signum, handler in (previous or {}).items():
        signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


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
