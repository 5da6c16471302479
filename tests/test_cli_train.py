"""`napari-sam2 train` on TIFFs written here, with a tiny model configuration so that runs
take seconds: the checkpoint it writes segments through `segment --checkpoint`, an interrupted
run resumes, and bad inputs end in one error line."""

import json

import numpy as np
import pytest
import tifffile
import torch

from napari_sam2.cli import main
from napari_sam2.model import build_from_config
from napari_sam2.training import read_config, save_model
from training_helpers import TINY, drifting_discs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def files(tmp_path):
    """A TYX stack, its labels, and a tiny model's checkpoint (configuration stored)."""
    data = drifting_discs(num_frames=10)
    stack, labels = tmp_path / "discs.tif", tmp_path / "discs_labels.tif"
    tifffile.imwrite(stack, np.asarray(data.frames), imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(labels, data.labels, imagej=True, metadata={"axes": "TYX"})
    torch.manual_seed(0)
    start = save_model(build_from_config(TINY), tmp_path / "start.pt")
    return stack, labels, start, data


def _train(files, out, *extra) -> int:
    stack, labels, start, _ = files
    argv = ["train", "--images", stack, "--labels", labels, "--out", out, "--checkpoint", start]
    return main([str(a) for a in [*argv, "--quiet", *extra]])


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("napari-sam2: error: "), lines
    return lines[-1]


def test_train_writes_a_checkpoint_that_segment_loads(files, tmp_path, capsys):
    stack, labels, start, data = files
    out = tmp_path / "run"
    code = _train(
        files, out, "--steps", "4", "--validation-images", stack,
        "--validation-labels", labels, "--validate-every", "2",
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert read_config(out / "model.pt") == TINY
    history = torch.load(out / "training_state.pt", weights_only=True)["history"]
    assert [int(r["step"]) for r in history] == [1, 2, 3, 4]
    assert "val J&F" in history[1] and "val J&F" in history[3]
    trained = torch.load(out / "model.pt", weights_only=True)["model"]
    initial = torch.load(start, weights_only=True)["model"]
    changed = [k for k in trained if not torch.equal(trained[k], initial[k])]
    assert changed and not any(k.startswith("image_encoder.") for k in changed)  # frozen

    y, x = np.argwhere(data.labels[0] == 1).mean(axis=0)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(
        json.dumps(
            {
                "format": "napari-sam2 prompts",
                "version": 1,
                "model": "sam2.1_hiera_large",  # the checkpoint's own configuration wins
                "objects": [{"id": 1, "frames": {"0": {"points": [[x, y, 1]]}}}],
            }
        )
    )
    result = tmp_path / "labels.tif"
    argv = ["segment", stack, "--prompts", prompts, "--out", result]
    assert main([str(a) for a in [*argv, "--checkpoint", out / "model.pt", "--quiet"]]) == 0
    assert tifffile.imread(result).shape == data.labels.shape


def test_an_interrupted_run_resumes_where_it_stopped(files, tmp_path, capsys, monkeypatch):
    from napari_sam2.training import loop

    out = tmp_path / "run"
    step = loop.clip_step
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(loop, "clip_step", interrupted)
    assert _train(files, out, "--steps", "5", "--checkpoint-every", "2") == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    saved = torch.load(out / "training_state.pt", weights_only=True)
    assert saved["step"] == 2
    monkeypatch.setattr(loop, "clip_step", step)
    assert _train(files, out, "--steps", "5", "--checkpoint-every", "2") == 0
    history = torch.load(out / "training_state.pt", weights_only=True)["history"]
    assert [int(r["step"]) for r in history] == [1, 2, 3, 4, 5]


def test_train_the_image_encoder_on_request(files, tmp_path):
    _, _, start, _ = files
    out = tmp_path / "run"
    assert _train(files, out, "--steps", "1", "--train-image-encoder", "--lr", "1e-2") == 0
    trained = torch.load(out / "model.pt", weights_only=True)["model"]
    initial = torch.load(start, weights_only=True)["model"]
    key = "image_encoder.trunk.patch_embed.proj.weight"
    assert not torch.equal(trained[key], initial[key])


@pytest.mark.parametrize(
    "change, message",
    [
        ("count", "names 1 stacks but --labels 2 label volumes"),
        ("shape", "has 9 frames of 64 x 64 but discs.tif has 10 of 64 x 64"),
        ("float", "float32 values that are not label ids"),
        ("negative", "negative label ids"),
        ("scratch", "--from-scratch starts from random weights; leave out --checkpoint"),
        ("steps", "--steps must be at least 1"),
        ("model", "unknown model 'sam3'"),
    ],
)
def test_bad_inputs(files, tmp_path, capsys, change, message):
    stack, labels, start, data = files
    extra = []
    if change == "count":
        extra = ["--labels", labels, labels]
    elif change in ("shape", "float", "negative"):
        bad = {
            "shape": data.labels[:9],
            "float": data.labels.astype(np.float32) + 0.5,
            "negative": data.labels.astype(np.int16) - 1,
        }[change]
        path = tmp_path / "bad_labels.tif"
        tifffile.imwrite(path, bad)
        extra = ["--labels", path]
    elif change == "scratch":
        extra = ["--from-scratch"]
    elif change == "steps":
        extra = ["--steps", "0"]
    elif change == "model":
        extra = ["--model", "sam3"]
    out = tmp_path / "run"
    assert _train(files, out, *extra) == 1
    assert message in _error_line(capsys)
    assert not (out / "model.pt").exists()


def test_whole_float_labels_are_accepted(files, tmp_path):
    stack, _, _, data = files
    path = tmp_path / "float_labels.tif"
    tifffile.imwrite(path, data.labels.astype(np.float32))
    assert _train(files, tmp_path / "run", "--labels", path, "--steps", "1") == 0
