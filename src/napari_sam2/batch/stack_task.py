"""One stack of a batch as a dask task: the `segment` subcommand's own parser and code, run in
the worker process, so a batch's outputs are those of `napari-sam2 segment` on each stack.

A worker keeps the last model it built (one model per worker process) and splits its host's
cores between the worker threads on that host.
"""

import argparse
import contextlib
import io
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import SAM2Error
from .outputs import read_back
from .summary import StackResult, one_line


def segment_parser() -> argparse.ArgumentParser:
    """The command line parser with the `segment` subcommand alone."""
    from ..cli import segment
    from ..cli.common import PROG

    parser = argparse.ArgumentParser(prog=PROG, add_help=False)
    segment.add_parser(parser.add_subparsers(required=True))
    return parser


def parse_segment_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """`argv` (starting with "segment") parsed as the command line would; a usage error
    becomes a SAM2Error with argparse's message instead of an exit."""
    messages = io.StringIO()
    try:
        # argparse reports to stderr and exits; catch both so a worker survives bad options
        with contextlib.redirect_stderr(messages):
            return segment_parser().parse_args(list(argv))
    except SystemExit:
        lines = messages.getvalue().strip().splitlines()
        reason = lines[-1].split("error:", 1)[-1].strip() if lines else "invalid options"
        raise SAM2Error(f"segment options: {reason}") from None


def segment_stack(
    stack: str,
    argv: Sequence[str],
    labels: str,
    ctc: str | None = None,
    threads_per_host: Mapping[str, int] | None = None,
) -> StackResult:
    """Run `napari-sam2 segment` with `argv` in this process and read its outputs back.

    A SAM2Error (unreadable stack, wrong prompts) is the stack's failure, returned as a row;
    anything else is raised, so that dask retries the stack.
    """
    start = time.perf_counter()
    _split_cores(threads_per_host or {})
    _keep_models()
    try:
        args = parse_segment_arguments(argv)
        args.command(args)
        (frames, _, _), objects = read_back(Path(labels), Path(ctc) if ctc else None)
    except SAM2Error as exc:
        seconds = time.perf_counter() - start
        return StackResult(stack, "failed", seconds=seconds, error=one_line(exc))
    return StackResult(stack, "done", frames, objects, time.perf_counter() - start)


def _split_cores(threads_per_host: Mapping[str, int]) -> None:
    # dask's nanny starts workers with OMP_NUM_THREADS=1, so torch would use one core per
    # worker; give each worker thread its share of the cores this process may run on
    import torch

    try:
        from distributed import get_worker
        from distributed.comm import get_address_host

        worker = get_worker()
    except (ImportError, ValueError):  # not in a dask worker: leave torch as it is
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    host = get_address_host(worker.address)
    threads = threads_per_host.get(host) or worker.state.nthreads
    torch.set_num_threads(max(1, (cores or 1) // max(1, threads)))


class _ModelKeeper:
    """`segment`'s model loader, remembering the last model it built and returning it again
    for the same options: one model per worker process rather than one per stack."""

    def __init__(self, load):
        self.load = load
        self.lock = threading.Lock()
        self.key = None
        self.model = None

    def __call__(self, args: argparse.Namespace, device, *more, **options):
        checkpoint = getattr(args, "checkpoint", None)
        identity = None
        if checkpoint is not None and Path(checkpoint).is_file():
            found = Path(checkpoint).stat()
            identity = (str(Path(checkpoint).resolve()), found.st_size, found.st_mtime_ns)
        key = (
            getattr(args, "model", None),
            checkpoint,
            identity,
            getattr(args, "image_size", None),
            getattr(args, "cache_dir", None),
            getattr(args, "compile", False),  # compiling changes the model in place
            str(device),
            repr(more),
            repr(sorted(options.items())),
        )
        with self.lock:
            if self.key != key:
                self.key, self.model = None, None  # free the old model before the new one
                self.model = self.load(args, device, *more, **options)
                self.key = key
            return self.model


def _keep_models() -> None:
    # segment.run looks its loader up by name at each call; wrapping it here, once per
    # process, leaves `segment` itself unchanged for single runs
    from ..cli import segment

    if not isinstance(segment.load_model, _ModelKeeper):
        segment.load_model = _ModelKeeper(segment.load_model)
