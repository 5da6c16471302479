"""A batch from start to end: plan one `segment` run per stack, skip those whose outputs are
complete and made from the same inputs, run the others as dask tasks, and keep summary.csv up
to date as they finish."""

import contextlib
import importlib.util
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import SAM2Error
from ..io.atomic import remove_stale_temporaries
from .outputs import ctc_path, labels_path, stack_stem
from .provenance import inputs_path, segment_and_record, stack_inputs
from .resume import Decision, known_result
from .stack_task import parse_segment_arguments
from .summary import StackResult, one_line, write_summary

# an unexpected error in a task (not a SAM2Error) is tried once more, perhaps on another
# worker; a worker that dies mid-task is the scheduler's business (allowed-failures)
TASK_RETRIES = 1
# `segment` options naming one output path: every stack of a batch would write the same one
ONE_PATH_OUTPUTS = ("--out", "--ctc", "--tracks", "--review", "--measurements", "--geff")


@dataclass(frozen=True)
class StackJob:
    """One stack's `segment` command line and outputs; `problem` is a failure known before
    running (its per-stack prompts file is missing)."""

    stack: str
    argv: tuple[str, ...]
    labels: Path
    ctc: Path | None
    problem: str = ""

    @property
    def record(self) -> Path:
        """Where the inputs that made this stack's outputs are recorded."""
        return inputs_path(self.labels.parent, stack_stem(self.stack))


def run(
    stacks: Sequence[str | Path],
    out: str | Path,
    *,
    prompts: str | Path | None = None,
    seeds: str | Path | None = None,
    model: str | None = None,
    scheduler: object = "local",
    workers: int | None = None,
    ctc: bool = False,
    axis: str | None = None,
    device: str = "auto",
    overwrite: bool = False,
    segment_options: Sequence[str] = (),
    progress: bool = True,
) -> list[StackResult]:
    """Segment every stack as `napari-sam2 segment` would, one dask task per stack, and
    return the summary: a StackResult per stack, in the order given (also in out/summary.csv).

    prompts: one prompts file for every stack, or a folder of `<stem>.json`; seeds: "auto",
    one seed label image, or a folder of `<stem>.tif` (give prompts or seeds). scheduler:
    "local" (a LocalCluster of `workers` processes, default from cores and memory), a
    scheduler address or scheduler file, or a `distributed.Client`. ctc: also write
    `out/<stem>.ctc/`. segment_options: further `segment` options, e.g. ["--fix", "C=1"].
    Stacks whose outputs are complete and were made from the same inputs (stack file, prompts
    or seeds, model, checkpoint, options; `<stem>.inputs.json`) are skipped unless `overwrite`.
    A stack that fails is a "failed" row; raises SAM2Error only for mistakes that concern the
    whole batch.
    """
    say = _teller(progress)
    # workers may run in another folder (or on another machine): they get absolute paths
    folder = _output_folder(out).absolute()
    jobs = plan_jobs(stacks, folder, prompts, seeds, model, ctc, axis, device, segment_options)
    inputs = {job.stack: _inputs(job) for job in jobs}
    results = {}
    for job in jobs:
        decision = _decide(job, inputs[job.stack], overwrite)
        results[job.stack] = decision.result
        if decision.reason:
            say(f"{job.stack}: segmenting again, its outputs are not this run's: {decision.reason}")
    write_summary(folder, list(results.values()))
    todo = [job for job in jobs if results[job.stack].status == "pending"]
    if len(todo) < len(jobs):
        skipped = sum(result.status == "skipped" for result in results.values())
        say(f"{skipped} of {len(jobs)} stacks already done (skipped)")
    for job in todo:
        # outputs about to be replaced must never pass for this run's with the old record
        _forget_inputs(job.record)
    if todo:
        with _client(scheduler, workers, len(todo), device, say) as client:
            _run_jobs(client, todo, inputs, results, folder, progress)
    # a worker killed while writing leaves its temporary file; none is being written now
    remove_stale_temporaries(folder)
    return list(results.values())


def plan_jobs(
    stacks: Sequence[str | Path],
    folder: Path,
    prompts: str | Path | None,
    seeds: str | Path | None,
    model: str | None,
    ctc: bool,
    axis: str | None,
    device: str,
    segment_options: Sequence[str],
) -> list[StackJob]:
    """One StackJob per stack; raises SAM2Error for mistakes that concern every stack."""
    if not stacks:
        raise SAM2Error("no stacks given")
    if (prompts is None) == (seeds is None):
        raise SAM2Error("give either --prompts FILE_OR_FOLDER or --seeds auto|FILE|FOLDER")
    for option in map(str, segment_options):
        if option.split("=", 1)[0] in ONE_PATH_OUTPUTS:
            raise SAM2Error(
                f"segment option {option.split('=', 1)[0]} names one output path, which every "
                "stack would overwrite; a batch writes <stem>.labels.tif (and <stem>.ctc/ with "
                "ctc) per stack in its output folder"
            )
    by_stem: dict[str, list[str]] = {}
    for stack in stacks:
        by_stem.setdefault(stack_stem(stack), []).append(str(stack))
    clashes = [names for names in by_stem.values() if len(names) > 1]
    if clashes:
        listed = "; ".join(" and ".join(names) for names in clashes)
        raise SAM2Error(
            f"stacks with the same name would write the same outputs: {listed}; rename them "
            "or run them in separate batches"
        )
    option, source, suffix = (
        ("--prompts", Path(prompts), ".json") if prompts is not None else ("--seeds", seeds, ".tif")
    )
    if option == "--seeds" and str(source) != "auto":
        source = Path(source)
    if isinstance(source, Path) and not source.exists():
        raise SAM2Error(f"{option} {source}: no such file or folder")
    if isinstance(source, Path):
        source = source.absolute()
    common = ["--overwrite", "--quiet"]  # completeness was judged here; a rerun replaces
    common += ["--model", model] if model else []
    common += ["--axis", str(axis)] if axis is not None else []
    common += ["--device", device] if device != "auto" else []
    jobs = []
    for stack in map(str, stacks):
        stem = stack_stem(stack)
        given = _per_stack(source, stem, suffix)
        labels = labels_path(folder, stem)
        ctc_folder = ctc_path(folder, stem) if ctc else None
        path = str(Path(stack).absolute())
        argv = ["segment", path, "--out", str(labels), option, str(given), *common]
        argv += ["--ctc", str(ctc_folder)] if ctc_folder else []
        argv += list(segment_options)
        problem = ""
        if isinstance(given, Path) and not given.is_file():
            problem = f"no {option[2:]} file for this stack: {given} not found"
        jobs.append(StackJob(stack, tuple(argv), labels, ctc_folder, problem))
    parse_segment_arguments(jobs[0].argv)  # options segment refuses concern every stack
    return jobs


def _per_stack(source: str | Path, stem: str, suffix: str) -> str | Path:
    """A folder's `<stem><suffix>` file, else the one file (or "auto") for every stack."""
    if isinstance(source, Path) and source.is_dir():
        return source / f"{stem}{suffix}"
    return source


def _output_folder(out: str | Path) -> Path:
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise SAM2Error(f"--out {folder} is a file; give a folder for the batch's outputs")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SAM2Error(f"cannot create the output folder {folder} ({exc.strerror})") from exc
    return folder


def _inputs(job: StackJob) -> dict | None:
    """This run's record of the stack's inputs, or None if they cannot be read (the stack then
    runs, and `segment` says what is wrong)."""
    if job.problem:
        return None
    try:
        return stack_inputs(job.argv)
    except SAM2Error:
        return None


def _decide(job: StackJob, inputs: Mapping | None, overwrite: bool):
    """The stack's row before running: failed (known problem), skipped or pending."""
    if job.problem:
        return Decision(StackResult(job.stack, "failed", error=job.problem))
    return known_result(job.stack, job.argv, job.labels, job.ctc, job.record, inputs, overwrite)


def _forget_inputs(record: Path) -> None:
    try:
        record.unlink(missing_ok=True)
    except OSError as exc:
        raise SAM2Error(f"cannot replace {record} ({exc.strerror or exc})") from exc


def _client(scheduler, workers, stacks, device, say):
    from .cluster import batch_client, local_worker_count

    if not isinstance(scheduler, str):  # a Client the caller made and will close
        return contextlib.nullcontext(scheduler)
    if workers is not None and workers < 1:
        raise SAM2Error(f"--workers must be 1 or more, got {workers}")
    count = workers or (local_worker_count(stacks, device) if scheduler == "local" else 0)
    return batch_client(scheduler, count, say)


def _run_jobs(
    client, jobs: list[StackJob], inputs: dict, results: dict, folder: Path, progress: bool
):
    from distributed import as_completed

    from .cluster import threads_per_host

    threads = threads_per_host(client)
    futures = {}
    for job in jobs:
        future = client.submit(
            segment_and_record,
            str(job.record),
            inputs[job.stack],
            job.stack,
            list(job.argv),
            str(job.labels),
            str(job.ctc) if job.ctc else None,
            threads,
            key=f"napari-sam2-segment-{stack_stem(job.stack)}-{uuid.uuid4().hex[:8]}",
            retries=TASK_RETRIES,
            pure=False,
        )
        futures[future] = job
    with _bar(len(results), len(results) - len(jobs), progress) as advance:
        for future in as_completed(futures):
            job = futures[future]
            results[job.stack] = _outcome(future, job)
            write_summary(folder, list(results.values()))
            advance(results[job.stack])


def _outcome(future, job: StackJob) -> StackResult:
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker:
        return StackResult(
            job.stack,
            "failed",
            error="its worker died (killed, or out of memory) as often as the scheduler allows "
            "(distributed.scheduler.allowed-failures); see the workers' logs, give them more "
            "memory, and run the batch again",
        )
    except Exception as exc:  # noqa: BLE001 - any error of one stack must not stop the others
        return StackResult(job.stack, "failed", error=one_line(f"{type(exc).__name__}: {exc}"))


@contextlib.contextmanager
def _bar(total: int, initial: int, progress: bool) -> Iterator[Callable[[StackResult], None]]:
    """A callable to count a finished stack: a tqdm bar if tqdm is installed, else a line."""
    if not progress:
        yield lambda result: None
        return
    if importlib.util.find_spec("tqdm") is not None:
        from tqdm import tqdm

        with tqdm(total=total, initial=initial, unit="stack", file=sys.stderr) as bar:
            yield lambda result: bar.update(1)
        return
    done = initial

    def advance(result: StackResult) -> None:
        nonlocal done
        done += 1
        print(f"{done}/{total} stacks ({result.status}: {result.stack})", file=sys.stderr)

    yield advance


def _teller(progress: bool) -> Callable[[str], None]:
    from ..cli.common import PROG

    def say(message: str) -> None:
        if progress:
            print(f"{PROG}: {message}", file=sys.stderr)

    return say
