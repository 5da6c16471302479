"""`napari-sam2 batch` on real dask clusters of two worker processes on 127.0.0.1: outputs
equal `segment` run on each stack alone, a bad stack fails alone, a rerun skips finished
stacks, and a worker killed mid-stack leaves the batch complete and correct."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_sam2.batch import StackResult, read_summary, run
from napari_sam2.batch.outputs import stack_stem
from napari_sam2.cli import main
from napari_sam2.errors import SAM2Error
from napari_sam2.io import FramePrompts, ObjectPrompts, Prompts, read_labels, write_prompts
from napari_sam2.synthetic import timelapse

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 64
DEMO = ["--model", "demo", "--quiet"]


def _write_stack(folder: Path, name: str, frames: int, seed: int) -> Path:
    cells = timelapse(frames, SIZE, SIZE, num_cells=3, seed=seed, cell_radius=8.0)
    path = folder / name
    tifffile.imwrite(path, cells.frames, imagej=True, metadata={"axes": "TYX"})
    return path


def _write_prompts(path: Path, clicks: list[tuple[float, float]]) -> Path:
    prompts = Prompts(video_axis="T", frame_shape=(SIZE, SIZE))
    for i, (x, y) in enumerate(clicks):
        prompts.objects.append(ObjectPrompts(i + 1, "", {0: FramePrompts(points=[(x, y, 1)])}))
    return write_prompts(path, prompts)


def _segment_alone(stack: Path, prompts: Path, out: Path) -> np.ndarray:
    assert main(["segment", str(stack), "--prompts", str(prompts), "--out", str(out), *DEMO]) == 0
    return read_labels(out)[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three small stacks, one prompts file for all, and each stack's `segment` labels."""
    folder = tmp_path_factory.mktemp("stacks")
    stacks = [_write_stack(folder, f"s{i}.tif", 5 + i, seed=i) for i in range(3)]
    prompts = _write_prompts(folder / "prompts.json", [(20.0, 20.0), (44.0, 40.0)])
    alone = {
        stack.name: _segment_alone(stack, prompts, folder / f"{stack.stem}.alone.tif")
        for stack in stacks
    }
    return stacks, prompts, alone


@pytest.fixture(scope="module")
def scheduler():
    """The address of a LocalCluster of two one-thread worker processes."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address


def _batch(stacks, out, *extra) -> int:
    return main(["batch", *map(str, stacks), "--out", str(out), *DEMO, *extra])


def _summary(out: Path) -> dict[str, StackResult]:
    return {Path(row.stack).name: row for row in read_summary(out / "summary.csv")}


def test_outputs_equal_segment_alone_and_rerun_skips(tmp_path, data, scheduler):
    stacks, prompts, alone = data
    out = tmp_path / "out"
    assert _batch(stacks, out, "--prompts", str(prompts), "--scheduler", scheduler) == 0
    summary = _summary(out)
    for stack in stacks:
        labels = out / f"{stack.stem}.labels.tif"
        assert np.array_equal(read_labels(labels)[0], alone[stack.name]), stack.name
        row = summary[stack.name]
        assert (row.status, row.frames, row.error) == ("done", len(alone[stack.name]), "")
        assert row.objects == len(np.unique(alone[stack.name])) - 1
    assert not list(out.glob(".*"))  # no temporary file left

    # a rerun skips complete outputs and redoes a missing and a truncated one
    kept = out / "s0.labels.tif"
    written = kept.stat().st_mtime_ns
    (out / "s1.labels.tif").unlink()
    (out / "s2.labels.tif").write_bytes((out / "s2.labels.tif").read_bytes()[:100])
    assert _batch(stacks, out, "--prompts", str(prompts), "--scheduler", scheduler) == 0
    summary = _summary(out)
    assert [summary[s.name].status for s in stacks] == ["skipped", "done", "done"]
    assert summary["s0.tif"].frames == 5 and summary["s0.tif"].objects > 0
    assert kept.stat().st_mtime_ns == written
    for stack in stacks:
        labels = out / f"{stack.stem}.labels.tif"
        assert np.array_equal(read_labels(labels)[0], alone[stack.name]), stack.name

    # --overwrite segments every stack again
    assert (
        _batch(stacks, out, "--prompts", str(prompts), "--scheduler", scheduler, "--overwrite") == 0
    )
    assert {row.status for row in _summary(out).values()} == {"done"}


def test_rerun_redoes_stacks_whose_inputs_changed(tmp_path, data, scheduler, capsys):
    """Complete outputs are skipped only if made from the same inputs: changed prompts, a
    changed option, a replaced stack file or a missing record make the stack run again."""
    stacks = [Path(shutil.copy(stack, tmp_path)) for stack in data[0][:2]]
    clicks = Path(shutil.copy(data[1], tmp_path / "clicks.json"))
    out = tmp_path / "out"

    def statuses(*options: str) -> list[str]:
        results = run(
            stacks, out, prompts=clicks, model="demo", scheduler=scheduler, segment_options=options
        )
        return [result.status for result in results]

    assert statuses() == ["done", "done"]
    assert statuses() == ["skipped", "skipped"]
    record = out / "s0.inputs.json"
    assert record.is_file() and not list(out.glob(".*"))

    # other clicks in the same prompts file: both stacks again, with the new clicks' labels
    _write_prompts(clicks, [(44.0, 40.0)])
    capsys.readouterr()
    assert statuses() == ["done", "done"]
    assert f"{stacks[0]}: segmenting again" in capsys.readouterr().err
    alone = _segment_alone(stacks[0], clicks, tmp_path / "s0.alone.tif")
    assert np.array_equal(read_labels(out / "s0.labels.tif")[0], alone)
    assert statuses() == ["skipped", "skipped"]

    # an option that changes the labels, the same again, and back
    assert statuses("--direction", "forward") == ["done", "done"]
    assert statuses("--direction", "forward") == ["skipped", "skipped"]
    capsys.readouterr()
    assert statuses() == ["done", "done"]
    assert "the options (--direction)" in capsys.readouterr().err

    # a stack file written again (same shape), and outputs without a record
    os.utime(stacks[1], ns=(time.time_ns(), time.time_ns() + 10**9))
    record.unlink()
    assert statuses() == ["done", "done"]
    assert statuses() == ["skipped", "skipped"]


def test_python_entry_point_with_a_client_and_prompts_per_stack(tmp_path, data, scheduler):
    from distributed import Client

    stacks, prompts, alone = data
    per_stack = tmp_path / "prompts"
    per_stack.mkdir()
    for stack in stacks[:2]:
        (per_stack / f"{stack.stem}.json").write_bytes(prompts.read_bytes())
    with Client(scheduler) as client:
        results = run(stacks, tmp_path / "out", prompts=per_stack, model="demo", scheduler=client)
    assert [r.stack for r in results] == [str(s) for s in stacks]
    assert [r.status for r in results] == ["done", "done", "failed"]
    assert "s2.json not found" in results[2].error
    assert np.array_equal(read_labels(tmp_path / "out" / "s1.labels.tif")[0], alone["s1.tif"])


def test_bad_stacks_fail_alone_on_a_local_cluster(tmp_path, data, capsys):
    stacks, prompts, alone = data
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    small = tmp_path / "small.tif"  # the prompts' frame shape does not fit it
    tifffile.imwrite(small, np.zeros((3, 32, 32), np.uint16), metadata={"axes": "TYX"})
    batch = [stacks[0], corrupt, small, stacks[1]]
    out = tmp_path / "out"
    code = _batch(batch, out, "--prompts", str(prompts), "--workers", "2")
    assert code == 1
    summary = _summary(out)
    assert summary["s0.tif"].status == summary["s1.tif"].status == "done"
    assert summary["corrupt.tif"].status == summary["small.tif"].status == "failed"
    assert "corrupt.tif" in summary["corrupt.tif"].error
    assert "frame_shape" in summary["small.tif"].error
    for row in summary.values():
        assert "\n" not in row.error and "Traceback" not in row.error
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors[-3].startswith(f"napari-sam2: error: {corrupt}: ")
    assert errors[-1] == f"napari-sam2: 2 of 4 stacks failed; see {out}/summary.csv"
    assert np.array_equal(read_labels(out / "s1.labels.tif")[0], alone["s1.tif"])
    assert not (out / "corrupt.labels.tif").exists()


def _tree(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_seeds_and_ctc_equal_segment_alone(tmp_path, scheduler):
    """--seeds FOLDER of <stem>.tif and --ctc: each stack's labels and CTC folder are those of
    `segment --seeds --ctc` alone; a CTC folder missing a mask file is made again."""
    stacks, seeds = [], tmp_path / "seeds"
    seeds.mkdir()
    for i in range(2):
        cells = timelapse(5, SIZE, SIZE, num_cells=3, seed=20 + i, cell_radius=8.0)
        stacks.append(tmp_path / f"c{i}.tif")
        tifffile.imwrite(stacks[-1], cells.frames, imagej=True, metadata={"axes": "TYX"})
        tifffile.imwrite(seeds / f"c{i}.tif", cells.labels[0])
    for stack in stacks:
        seed = seeds / f"{stack.stem}.tif"
        alone = ["--out", str(tmp_path / f"{stack.stem}.alone.tif"), "--ctc"]
        alone += [str(tmp_path / f"{stack.stem}.alone.ctc")]
        assert main(["segment", str(stack), "--seeds", str(seed), *alone, *DEMO]) == 0
    out = tmp_path / "out"
    options = ["--seeds", str(seeds), "--ctc", "--scheduler", scheduler]
    assert _batch(stacks, out, *options) == 0
    for stack in stacks:
        alone = read_labels(tmp_path / f"{stack.stem}.alone.tif")[0]
        assert np.array_equal(read_labels(out / f"{stack.stem}.labels.tif")[0], alone)
        expected = _tree(tmp_path / f"{stack.stem}.alone.ctc")
        assert _tree(out / f"{stack.stem}.ctc") == expected and "res_track.txt" in expected
    (out / "c1.ctc" / "mask004.tif").unlink()
    assert _batch(stacks, out, *options) == 0
    assert [row.status for row in read_summary(out / "summary.csv")] == ["skipped", "done"]
    assert _tree(out / "c1.ctc") == _tree(tmp_path / "c1.alone.ctc")


def _start(command: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with open(log, "w") as file:
        return subprocess.Popen(command, stdout=file, stderr=subprocess.STDOUT, env=env)


@pytest.fixture(scope="module")
def long_stacks(tmp_path_factory, data):
    """Two stacks that take seconds each, and their `segment` labels (160 frames: 3.4 s on
    the faster of this project's hosts, where 24 frames ended before the kill)."""
    folder = tmp_path_factory.mktemp("long")
    prompts = data[1]
    stacks = [_write_stack(folder, f"long{i}.tif", 160, seed=10 + i) for i in range(2)]
    alone = {s.name: _segment_alone(s, prompts, folder / f"{s.stem}.alone.tif") for s in stacks}
    return stacks, prompts, alone


# the worker process alone dies (as when the kernel's OOM killer picks it; its nanny starts a
# new one), or the whole `dask worker` command (as when a node or a job is lost)
@pytest.mark.parametrize("target", ["worker process", "dask worker command"])
def test_worker_killed_mid_stack_is_retried_elsewhere(tmp_path, long_stacks, target):
    import psutil
    from distributed import Client

    stacks, prompts, alone = long_stacks
    address_file = tmp_path / "scheduler.json"
    processes = [
        _start(
            ["dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
            + ["--scheduler-file", str(address_file)],
            tmp_path / "scheduler.log",
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for i in range(2):
            processes.append(
                _start(
                    ["dask", "worker", "--scheduler-file", str(address_file), "--nthreads", "1"]
                    + ["--nworkers", "1", "--host", "127.0.0.1", "--no-dashboard"],
                    tmp_path / f"worker{i}.log",
                )
            )
        with Client(scheduler_file=str(address_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            pids = client.run(os.getpid)
            out = tmp_path / "out"
            # paths relative to the batch's folder, which is not the workers'
            here = stacks[0].parent
            argv = [shutil.which("napari-sam2"), "batch", *(s.name for s in stacks)]
            argv += ["--out", os.path.relpath(out, here), *DEMO]
            argv += ["--prompts", os.path.relpath(prompts, here)]
            argv += ["--scheduler", str(address_file)]  # a scheduler file works as an address
            batch = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, cwd=here)
            victim = _busy_worker(client, batch, time.monotonic() + 120)
            time.sleep(1.0)  # inside the stack: the worker is tracking, not starting
            assert client.processing()[victim], "the stack finished before the kill"
            pid = (
                pids[victim] if target == "worker process" else psutil.Process(pids[victim]).ppid()
            )
            assert target == "worker process" or pid in [p.pid for p in processes]
            os.kill(pid, signal.SIGKILL)
            _, errors = batch.communicate(timeout=600)
        assert batch.returncode == 0, (errors, (out / "summary.csv").read_text())
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    summary = _summary(out)
    for stack in stacks:
        assert summary[stack.name].status == "done"
        labels = read_labels(out / f"{stack.stem}.labels.tif")[0]
        assert np.array_equal(labels, alone[stack.name]), stack.name
    assert not list(out.glob(".*"))


def _busy_worker(client, batch: subprocess.Popen, deadline: float) -> str:
    while time.monotonic() < deadline and batch.poll() is None:
        for worker, keys in client.processing().items():
            if any("napari-sam2-segment" in str(key) for key in keys):
                return worker
        time.sleep(0.05)
    raise AssertionError(f"no worker started a stack: {batch.communicate(timeout=60)}")


@pytest.mark.parametrize(
    "change, message",
    [
        (["--prompts", "{stack}"], "the same outputs"),  # duplicate stems, see below
        (["--prompts", "missing.json"], "--prompts missing.json: no such file or folder"),
        (["--prompts", "{prompts}", "--workers", "0"], "--workers must be 1 or more"),
        (["--prompts", "{prompts}", "--direction", "up"], "segment options: argument"),
    ],
)
def test_mistakes_about_the_whole_batch(tmp_path, data, capsys, change, message):
    stacks, prompts, _ = data
    other = tmp_path / "s0.npy"
    np.save(other, np.zeros((3, SIZE, SIZE), np.uint8))
    inputs = [stacks[0], other] if "{stack}" in change else stacks[:1]
    change = [c.format(stack=prompts, prompts=prompts) for c in change]
    assert _batch(inputs, tmp_path / "out", *change) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and error.startswith("napari-sam2: error: ")
    assert message in error


def test_prompts_or_seeds_is_required(tmp_path, data, capsys):
    assert _batch(data[0], tmp_path / "out") == 2
    assert "--prompts" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, stem",
    [("a/cells.tif", "cells"), ("cells.ome.tif", "cells"), ("x.zarr", "x"), ("b.npy", "b")],
)
def test_stack_stem(name, stem):
    assert stack_stem(name) == stem


def test_unreachable_scheduler_is_one_line(tmp_path, data, capsys, monkeypatch):
    from napari_sam2.batch import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "2s")
    stacks, prompts, _ = data
    address = "tcp://127.0.0.1:9"  # the discard port: nothing listens there
    assert _batch(stacks[:1], tmp_path, "--prompts", str(prompts), "--scheduler", address) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert (
        error == [error[0]] and "cannot reach the dask scheduler at tcp://127.0.0.1:9" in error[0]
    )
    assert _summary(tmp_path)["s0.tif"].status == "pending"


def test_recorded_inputs_name_what_changed_and_ignore_where_outputs_go(tmp_path, data):
    from napari_sam2.batch.provenance import changed_inputs, stack_inputs

    stacks, prompts, _ = data
    checkpoint = tmp_path / "weights.pt"
    checkpoint.write_bytes(b"first")

    def inputs(out: str, *more: str) -> dict:
        argv = ["segment", str(stacks[0]), "--out", out, "--prompts", str(prompts)]
        return stack_inputs([*argv, "--checkpoint", str(checkpoint), *more])

    first = inputs("a/x.labels.tif", "--ctc", "a/x.ctc", "--quiet", "--device", "cpu")
    assert changed_inputs(first, inputs("b/x.labels.tif", "--overwrite")) == ""
    checkpoint.write_bytes(b"second")  # same name, other weights
    reason = changed_inputs(first, inputs("a/x.labels.tif", "--seed-frame", "2"))
    assert reason == "the checkpoint and the options (--seed-frame)"
    assert changed_inputs(None, first) == "no record of the inputs that made them"


def test_a_broken_or_foreign_record_makes_the_stack_run_again(tmp_path):
    from napari_sam2.batch.provenance import changed_inputs, read_inputs, write_inputs

    record = tmp_path / "s0.inputs.json"
    current = {"format": 1, "stack": {"bytes": 10}, "model": "demo", "options": {"tile": "off"}}
    write_inputs(record, current)
    assert changed_inputs(read_inputs(record), current) == ""
    for broken in (b"\xff{not json", b"[1, 2]", b""):
        record.write_bytes(broken)
        assert read_inputs(record) is None
        reason = changed_inputs(read_inputs(record), current)
        assert reason == "no record of the inputs that made them"
    assert changed_inputs({**current, "format": 0}, current) == "their record is of another format"
    moved = {**current, "model": "tiny", "options": {"tile": "256"}}
    assert changed_inputs(moved, current) == "the model and the options (--tile)"


@pytest.mark.parametrize("option", [["--tracks", "t.csv"], ["--out=x.tif"], ["--geff", "g"]])
def test_segment_options_naming_one_output_are_refused(tmp_path, data, option):
    stacks, prompts, _ = data
    with pytest.raises(SAM2Error, match=f"segment option {option[0].split('=')[0]} names one"):
        run(stacks, tmp_path / "out", prompts=prompts, model="demo", segment_options=option)
    assert not list((tmp_path / "out").iterdir())
