"""The `napari-sam2` command end to end on generated TIFFs with a random-weight checkpoint
written here: the examples of docs/cli.md, a z-stack run, and bad inputs, each ending in one
line on stderr, a non-zero exit code and no output file."""

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from napari_sam2.cli import common, main, sample
from napari_sam2.io import check_prompts_fit, parse_prompts, read_labels, read_prompts
from napari_sam2.model import weights
from napari_sam2.synthetic import moving_cells
from test_weights import serve, write_random_checkpoint

DOCS = Path(__file__).parents[1] / "docs" / "cli.md"
NAME = "sam2.1_hiera_tiny"
# every run at a small input size: the checkpoint fits any size, and tests stay fast
FAST = ["--image-size", "64"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_random_checkpoint(tmp_path_factory.mktemp("weights") / f"{NAME}.pt")


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch, tmp_path):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(weights.BASE_URL_ENV, raising=False)


@pytest.fixture
def timelapse(tmp_path) -> tuple[Path, Path]:
    """A 4-frame TYX TIFF of two cells and a prompts file clicking each on frame 1."""
    frames, _ = moving_cells(num_frames=4, height=48, width=64, centers=((14, 16), (32, 44)))
    stack = tmp_path / "cells.tif"
    tifffile.imwrite(stack, frames, imagej=True, metadata={"axes": "TYX"})
    prompts = tmp_path / "prompts.json"
    _write_prompts(prompts, {"1": [[19.0, 16.0, 1]]}, {"1": [[41.0, 34.0, 1]]})
    return stack, prompts


def _write_prompts(path: Path, *objects: dict, **top) -> Path:
    document = {
        "format": "napari-sam2 prompts",
        "version": 1,
        "objects": [
            {"id": i + 1, "frames": {t: {"points": p} for t, p in frames.items()}}
            for i, frames in enumerate(objects)
        ],
        **top,
    }
    path.write_text(json.dumps(document))
    return path


def _run(*argv) -> int:
    return main([str(a) for a in argv])


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if line.startswith("napari-sam2: error: ")]
    assert len(errors) == 1 and errors[0] == lines[-1], lines
    return errors[0]


def _bash_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", DOCS.read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            if line.strip() and not line.startswith("#"):
                assert line.startswith("napari-sam2 "), f"docs/cli.md runs only napari-sam2: {line}"
                commands.append(shlex.split(line)[1:])
    return commands


def test_docs_examples_run(tmp_path, monkeypatch, checkpoint, capsys):
    """Each ```bash line of docs/cli.md, in order, in a fresh folder; the checkpoint file the
    docs assume is the random-weight one, downloads come from a local server."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / f"{NAME}.pt").symlink_to(checkpoint)
    mirror = tmp_path / "mirror" / weights.REGISTRY[NAME].release
    mirror.mkdir(parents=True)
    (mirror / f"{NAME}.pt").symlink_to(checkpoint)
    commands = _bash_commands()
    assert [c[0] for c in commands] == [
        "sample", "segment", "models", "fetch", "segment", "segment", "train", "segment",
    ]  # fmt: skip
    with serve(tmp_path / "mirror") as url:
        monkeypatch.setenv(weights.BASE_URL_ENV, url)
        for argv in commands:
            extra = []
            if argv[0] == "segment":  # the random official model runs small; demo at its size
                extra = (
                    ["--quiet"]
                    if "demo" in argv or "demo/finetuned/model.pt" in argv
                    else FAST + ["--quiet"]
                )
            elif argv[0] == "train":
                extra = ["--steps", "2", "--quiet"]
            assert main(argv + extra) == 0, argv
            if argv[0] == "segment" and "demo" in argv:
                # the shipped demo model finds the sample's cells on the clicked frame
                labels, _ = read_labels("demo/labels.tif")
                truth, _ = read_labels("demo/ground_truth.tif")
                for obj in (1, 2):
                    mask, true = labels[0] == obj, truth[0] == obj
                    assert (mask & true).sum() / (mask | true).sum() > 0.7, obj
    assert (tmp_path / "demo" / "finetuned" / "model.pt").is_file()
    labels, axes = read_labels("demo/labels.tif")
    assert (labels.shape, labels.dtype, axes) == ((12, 128, 160), np.uint16, "TYX")
    truth, _ = read_labels("demo/ground_truth.tif")
    assert set(np.unique(truth)) == {0, 1, 2}
    # the sample's clicks are on its cells
    for obj in read_prompts("demo/prompts.json").objects:
        x, y, _ = obj.frames[0].points[0]
        assert truth[0, int(y), int(x)] == obj.id
    assert (tmp_path / "cache" / f"{NAME}.pt").is_file()
    out = capsys.readouterr().out
    assert re.search(rf"{re.escape(NAME)}\s+~149 MB\s+no", out)  # `models` before `fetch`
    assert out.rstrip().endswith(str(tmp_path / "cache" / f"{NAME}.pt"))  # `fetch` prints it


def test_docs_prompts_example_is_valid():
    block = re.findall(r"```json\n(.*?)```", DOCS.read_text(), flags=re.S)[0]
    prompts = parse_prompts(json.loads(block), "docs/cli.md")
    check_prompts_fit(prompts, sample.SAMPLE_FRAMES, sample.SAMPLE_HEIGHT, sample.SAMPLE_WIDTH)


def test_segment_along_z_of_a_hyperstack(tmp_path, checkpoint, capsys):
    frames, _ = moving_cells(num_frames=3, height=48, width=64, centers=((20, 24),))
    stack = np.stack([frames, frames[::-1]])  # (T=2, Z=3, Y, X)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TZYX"})
    prompts = _write_prompts(tmp_path / "p.json", {"2": [[26.0, 24.0, 1]]})
    out = tmp_path / "z_labels.tif"
    code = _run(
        "segment", path, "--prompts", prompts, "--out", out, "--checkpoint", checkpoint,
        "--axis", "Z", "--fix", "T=1", "--direction", "backward", "--device", "auto",
        "--precision", "float32", *FAST,
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    labels, axes = read_labels(out)
    assert (labels.shape, labels.dtype, axes) == ((3, 48, 64), np.uint16, "ZYX")
    err = capsys.readouterr().err
    assert "propagating" in err and "wrote" in err
    assert "note" not in err  # T was chosen, nothing fixed silently


def test_unchosen_axis_is_pointed_out(tmp_path, checkpoint, capsys):
    frames, _ = moving_cells(num_frames=2, height=32, width=32, centers=((16, 16),))
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, np.stack([frames] * 3, 1), imagej=True, metadata={"axes": "TZYX"})
    prompts = _write_prompts(tmp_path / "p.json", {"0": [[16.0, 16.0, 1]]})
    out = tmp_path / "labels.tif"
    args = ["segment", path, "--prompts", prompts, "--out", out, "--checkpoint", checkpoint]
    assert _run(*args, *FAST) == 0
    assert "note: reading Z=0 of 3 of hyper.tif" in capsys.readouterr().err
    assert read_labels(out)[0].shape == (2, 32, 32)


def _segment(timelapse, out, checkpoint, *extra) -> int:
    stack, prompts = timelapse
    args = ["segment", stack, "--prompts", prompts, "--out", out, "--checkpoint", checkpoint]
    return _run(*args, *FAST, *extra)


@pytest.mark.parametrize(
    ("flag", "saved", "expected"),
    [("auto", None, True), ("no", None, False), ("auto", False, False), ("yes", False, True)],
)
def test_segment_prompts_follow_reappear(
    tmp_path, timelapse, checkpoint, monkeypatch, flag, saved, expected
):
    import napari_sam2.engine as engine

    seen = []

    class Spy(engine.Tracker):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.reappear)

    monkeypatch.setattr(engine, "Tracker", Spy)
    stack, _ = timelapse
    top = {} if saved is None else {"reappear": saved, "version": 2}
    prompts = _write_prompts(tmp_path / "p.json", {"1": [[19.0, 16.0, 1]]}, **top)
    out = tmp_path / "labels.tif"
    assert _segment((stack, prompts), out, checkpoint, "--reappear", flag) == 0
    assert seen == [expected]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stack": "missing.tif"}, "stack file not found: .*missing.tif"),
        ({"extra": ["--axis", "Z"]}, "cells.tif .axes TYX, 4x48x64. has no Z axis; .* can be T"),
        ({"points": [[64.5, 10.0, 1]]}, r"objects\[0\]\.frames\['1'\]\.points\[0\]: .* outside"),
        ({"points": [[10, 10]]}, r"points\[0\]: expected \[x, y, label\]"),
        ({"frame": "9"}, r"frames\['9'\]: frame 9 is outside the stack of 4 frames"),
        ({"extra": ["--model", "sam3_hiera_huge"]}, "unknown model 'sam3_hiera_huge'; choose"),
        ({"out": "no/such/folder/labels.tif"}, "output folder .*folder does not exist"),
        ({"checkpoint": "nothing.pt"}, "checkpoint file not found"),
        ({"extra": ["--fix", "Z"]}, "--fix expects AXIS=INDEX"),
        ({"extra": ["--image-size", "100"]}, "multiple of 32"),
        ({"extra": ["--device", "cuda"]}, "device cuda is not available"),
    ],
)
def test_bad_inputs(tmp_path, timelapse, checkpoint, capsys, change, message):
    stack, prompts = timelapse
    if "stack" in change:
        stack = tmp_path / change["stack"]
    if "points" in change or "frame" in change:
        frame = change.get("frame", "1")
        _write_prompts(prompts, {frame: change.get("points", [[5.0, 5.0, 1]])})
    if change.get("extra", [None])[:2] == ["--device", "cuda"]:
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    out = tmp_path / change.get("out", "labels.tif")
    ckpt = tmp_path / change["checkpoint"] if "checkpoint" in change else checkpoint
    code = _segment((stack, prompts), out, ckpt, *change.get("extra", []))
    assert code == 1
    assert re.search(message, _error_line(capsys))
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files


def test_unwritable_output_folder(tmp_path, timelapse, checkpoint, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        folder = locked
        if locked.stat().st_uid == 0 and Path("/proc/self").exists():
            folder = Path("/proc")  # root ignores permissions; nobody creates files in /proc
        assert _segment(timelapse, folder / "labels.tif", checkpoint) == 1
        assert "cannot write to the output folder" in _error_line(capsys)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_existing_output_is_kept_without_overwrite(tmp_path, timelapse, checkpoint, capsys):
    out = tmp_path / "labels.tif"
    out.write_bytes(b"last week's labels")
    assert _segment(timelapse, out, checkpoint) == 1
    assert "exists" in _error_line(capsys)
    assert out.read_bytes() == b"last week's labels"
    assert _segment(timelapse, out, checkpoint, "--overwrite", "--quiet") == 0
    assert read_labels(out)[0].shape == (4, 48, 64)


def test_checkpoint_of_another_model_is_refused(tmp_path, timelapse, checkpoint, capsys):
    out = tmp_path / "labels.tif"
    assert _segment(timelapse, out, checkpoint, "--model", "sam2_hiera_tiny") == 1
    assert "looks like a sam2.1_hiera_tiny checkpoint" in _error_line(capsys)
    assert not out.exists()


def test_failure_during_propagation_leaves_no_file(
    tmp_path, timelapse, checkpoint, capsys, monkeypatch
):
    from napari_sam2.model import SAM2

    encode = SAM2.frame_memory
    calls = []

    def failing(self, *args, **kwargs):  # the memory of a tracked frame, midway
        calls.append(1)
        if len(calls) > 3:
            raise RuntimeError("simulated failure")
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(SAM2, "frame_memory", failing)
    out = tmp_path / "labels.tif"
    assert _segment(timelapse, out, checkpoint) == 1
    assert "simulated failure" in _error_line(capsys)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_model_without_network_says_what_to_do(tmp_path, timelapse, capsys, monkeypatch):
    with serve(tmp_path) as url:
        pass  # nothing listens there any more
    monkeypatch.setenv(weights.BASE_URL_ENV, url)
    stack, prompts = timelapse
    out = tmp_path / "labels.tif"
    code = _run("segment", stack, "--prompts", prompts, "--out", out, "--model", NAME, "--quiet")
    assert code == 1
    line = _error_line(capsys)
    assert f"{url}/092824/{NAME}.pt" in line and "--checkpoint FILE" in line
    assert not out.exists()


def test_models_lists_the_cache(tmp_path, checkpoint, capsys):
    cache = tmp_path / "elsewhere"
    cache.mkdir()
    (cache / f"{NAME}.pt").symlink_to(checkpoint)
    assert _run("models", "--cache-dir", cache) == 0
    out = capsys.readouterr().out
    assert f"weights cache: {cache}" in out
    assert re.search(rf"{re.escape(NAME)}\s+~149 MB\s+yes\s+{re.escape(str(cache))}", out)
    assert re.search(r"sam2_hiera_large\s+~898 MB\s+no\s+-", out)
    assert re.search(r"demo\s+~2 MB\s+shipped\s+\S+demo\.pt", out)


def test_fetch_demo_prints_the_shipped_file(capsys):
    from napari_sam2.model.demo import demo_weights_path

    assert _run("fetch", "demo") == 0
    assert capsys.readouterr().out.strip() == str(demo_weights_path())


def test_fetch_unknown_model(capsys):
    assert _run("fetch", "sam2.1_hiera_giant") == 1
    assert "unknown model 'sam2.1_hiera_giant'" in _error_line(capsys)


def test_sample_refuses_to_overwrite(tmp_path, capsys):
    assert _run("sample", tmp_path / "demo") == 0
    before = (tmp_path / "demo" / "timelapse.tif").read_bytes()
    assert _run("sample", tmp_path / "demo") == 1
    assert "already holds timelapse.tif, ground_truth.tif, prompts.json" in _error_line(capsys)
    assert _run("sample", tmp_path / "demo", "--overwrite") == 0
    assert (tmp_path / "demo" / "timelapse.tif").read_bytes() == before  # same seed


@pytest.mark.parametrize(
    "command", [[], ["models"], ["fetch"], ["segment"], ["train"], ["sample"], ["view"]]
)
def test_help(command, capsys):
    assert main([*command, "--help"]) == 0
    assert "usage: napari-sam2" in capsys.readouterr().out


def test_usage_errors_exit_with_2(capsys):
    assert main(["segment", "stack.tif"]) == 2
    assert "--prompts" in capsys.readouterr().err
    assert main([]) == 2


def test_counter_without_tqdm(monkeypatch, capsys):
    monkeypatch.setattr(common.importlib.util, "find_spec", lambda name: None)
    with common.progress(3, quiet=False) as advance:
        for _ in range(3):
            advance()
    assert capsys.readouterr().err.rstrip().endswith("propagating: 3/3 frames")
