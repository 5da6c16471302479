"""Precision: what "auto" and "fast" resolve to, the heavy parts in bfloat16 with the SAM
heads in float32, the image encoder alone in bfloat16, and sessions that record their
precision so a replay computes the same."""

import argparse

import numpy as np
import pytest
import torch

from napari_sam2.engine import Tracker, precision
from napari_sam2.errors import SAM2Error
from napari_sam2.io import FramePrompts, read_prompts
from napari_sam2.io.prompt_data import SESSION_PRECISIONS
from napari_sam2.model import build_model
from napari_sam2.session import Session, write_session
from napari_sam2.session.headless import session_precision
from napari_sam2.synthetic import timelapse

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("native", [True, False])
def test_fast_is_bfloat16_heavy_on_a_bfloat16_cpu_from_512_px(monkeypatch, native):
    """auto keeps the reference's float32 numbers on any CPU; fast (the widget's default)
    runs the heavy parts in bfloat16 where the CPU has the instructions and the input is
    big."""
    monkeypatch.setattr(precision, "cpu_has_bfloat16", lambda: native)
    heavy = "bfloat16-heavy" if native else "float32"
    assert precision.resolve_precision("fast", CPU, 1024) == heavy
    assert precision.resolve_precision("fast", CPU, 512) == heavy
    assert precision.resolve_precision("fast", CPU, 256) == "float32"  # the demo model's
    for size in (256, 1024):
        assert precision.resolve_precision("auto", CPU, size) == "float32"
        for policy in ("auto", "fast"):
            assert precision.resolve_precision(policy, CUDA, size) == "bfloat16"
    for asked in precision.RESOLVED:  # a choice is kept whatever the machine
        assert precision.resolve_precision(asked, CPU, 1024) == asked
        assert precision.resolve_precision(asked, CUDA, 256) == asked
    with pytest.raises(SAM2Error, match="precision must be one of .*bfloat16-heavy"):
        precision.resolve_precision("float16", CPU, 1024)


def test_precision_names_agree_where_they_are_spelt_without_torch():
    from napari_sam2.cli import segment

    parser = argparse.ArgumentParser()
    segment.add_parser(parser.add_subparsers())
    choices = next(
        a.choices
        for action in parser._subparsers._group_actions
        for a in action.choices["segment"]._actions
        if a.dest == "precision"
    )
    assert tuple(choices) == precision.PRECISIONS
    assert SESSION_PRECISIONS == precision.RESOLVED


@pytest.fixture(scope="module")
def stack():
    return timelapse(4, 96, 112, 3, seed=3)


def test_the_bfloat16_encoder_feeds_float32_steps(present_tiny_model, stack):
    """The encoder's features are computed under bfloat16 autocast and kept in float32; every
    step after it is float32: a float32 tracker given the same features computes the same
    logits, bit for bit."""
    model = present_tiny_model
    fast = Tracker(model, stack.frames, precision="bfloat16-encoder")
    assert fast.precision == "bfloat16-encoder" and not fast.bfloat16
    features = fast.frame_features(0)
    assert features.image_embed.dtype == torch.float32
    assert all(level.dtype == torch.float32 for level in features.high_res)

    plain = Tracker(model, stack.frames, precision="float32")
    exact = plain.frame_features(0)
    error = (features.image_embed - exact.image_embed).norm() / exact.image_embed.norm()
    assert 0 < error < 0.05  # bfloat16 numbers, close to float32's

    image = fast.frames.frame_tensor(0)[None]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model.encode_image(image).image_embed.float()
    torch.testing.assert_close(features.image_embed, expected, rtol=0, atol=0)

    same = Tracker(model, stack.frames, precision="float32")
    same._compute_features = fast._compute_features  # the bfloat16 encoder's features
    click = [[40.0, 50.0]]
    np.testing.assert_array_equal(
        fast.add_points(0, 1, click, [1]), same.add_points(0, 1, click, [1])
    )
    for (t, _, a), (_, _, b) in zip(fast.propagate(), same.propagate(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {t}")
    np.testing.assert_array_equal(fast.labels(), same.labels())


def test_bfloat16_heavy_runs_the_sam_heads_alone_in_float32(present_tiny_model, stack):
    """Image encoder, memory attention and memory encoder under bfloat16 autocast; the prompt
    encoder and mask decoder outside it on float32 inputs (the positional encoding too), for
    clicks, mask prompts and tracking."""
    model = present_tiny_model
    model.sam_prompt_encoder._dense_pe = None  # the fixture's model is shared
    seen: dict[str, set] = {}

    def record(name):
        def hook(module, args, kwargs):
            tensors = [a for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor)]
            dtypes = frozenset(a.dtype for a in tensors if a.is_floating_point())
            seen.setdefault(name, set()).add((torch.is_autocast_enabled("cpu"), dtypes))

        return hook

    parts = {
        "image encoder": model.image_encoder,
        "memory attention": model.memory_attention,
        "memory encoder": model.memory_encoder,
        "mask decoder": model.sam_mask_decoder,
    }
    handles = [m.register_forward_pre_hook(record(n), with_kwargs=True) for n, m in parts.items()]
    try:
        heavy = Tracker(model, stack.frames, precision="bfloat16-heavy")
        assert heavy.bfloat16 and heavy.float32_heads
        click = [[40.0, 50.0]]
        first = heavy.add_points(0, 1, click, [1])
        tracked = {t: logits[0] for t, _, logits in heavy.propagate()}
        heavy.add_points(2, 1, [[44.0, 52.0]], [1])  # a click on a tracked frame: with memory
        heavy.add_mask(3, 2, np.pad(np.ones((20, 20), bool), ((30, 46), (30, 62))))
    finally:
        for handle in handles:
            handle.remove()
    assert seen["mask decoder"] == {(False, frozenset({torch.float32}))}
    for name in ("image encoder", "memory attention", "memory encoder"):
        assert {autocast for autocast, _ in seen[name]} == {True}, name

    plain = Tracker(model, stack.frames, precision="float32")
    expected = plain.add_points(0, 1, click, [1])
    assert _iou(first > 0, expected > 0) > 0.9
    for t, _, logits in plain.propagate():
        assert _iou(tracked[t] > 0, logits[0] > 0) > 0.9, f"frame {t}"


def test_the_kept_positional_encoding_follows_autocast(present_tiny_model):
    """Computed first under bfloat16 autocast, it is not what a float32 decoder gets later."""
    encoder = present_tiny_model.sam_prompt_encoder
    encoder._dense_pe = None
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert encoder.get_dense_pe().dtype == torch.bfloat16
        exact = encoder.get_dense_pe()
        assert exact.dtype == torch.float32
        torch.testing.assert_close(
            exact, encoder.pe_layer(encoder.image_embedding_size).unsqueeze(0), rtol=0, atol=0
        )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def test_the_feature_disk_cache_keeps_precisions_apart(present_tiny_model, stack, tmp_path):
    model = present_tiny_model
    fast = Tracker(model, stack.frames, precision="bfloat16-encoder", feature_cache_dir=tmp_path)
    fast.encode(0)
    plain = Tracker(model, stack.frames, precision="float32", feature_cache_dir=tmp_path)
    assert not torch.equal(plain.frame_features(0).image_embed, fast.frame_features(0).image_embed)
    again = Tracker(model, stack.frames, precision="bfloat16-encoder", feature_cache_dir=tmp_path)
    torch.testing.assert_close(
        again.frame_features(0).image_embed, fast.frame_features(0).image_embed, rtol=0, atol=0
    )
    # bfloat16-heavy encodes as bfloat16-encoder does: one computes, the other reads
    heavy = Tracker(model, stack.frames, precision="bfloat16-heavy", feature_cache_dir=tmp_path)
    heavy.encode(1)
    full = Tracker(model, stack.frames, precision="bfloat16-encoder", feature_cache_dir=tmp_path)
    full._compute_features = None  # a miss would fail: the disk must answer
    kept, computed = full.frame_features(1), heavy.frame_features(1)
    torch.testing.assert_close(kept.image_embed, computed.image_embed, rtol=0, atol=0)
    for a, b in zip(kept.high_res, computed.high_res, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _session(model, frames, asked: str) -> Session:
    session = Session(Tracker(model, frames, precision=asked), model_name="demo", video_axis=0)
    session.set_prompts(0, 1, FramePrompts([(40.0, 50.0, 1)]))
    for _ in session.propagate("forward"):
        pass
    return session


@pytest.mark.parametrize("saved_in", ["bfloat16-encoder", "bfloat16-heavy"])
def test_a_session_records_its_precision_and_its_replay_follows_it(
    stack, tmp_path, capsys, saved_in
):
    """Saved in a bfloat16 precision, replayed by the command line without --precision: the
    same labels. Files without the field: a session log replays as "auto" did when it was
    saved, prompts alone run in "auto"."""
    import tifffile

    from napari_sam2.cli import main
    from napari_sam2.io import read_labels

    model = build_model("demo")
    session = _session(model, stack.frames, saved_in)
    path = write_session(tmp_path / "session.json", session)
    prompts = read_prompts(path)
    assert prompts.precision == saved_in
    assert session_precision(prompts, None, CPU) == saved_in
    assert session_precision(prompts, "float32", CPU) == "float32"

    tifffile.imwrite(tmp_path / "cells.tif", stack.frames, imagej=True, metadata={"axes": "TYX"})
    argv = ["segment", tmp_path / "cells.tif", "--prompts", path, "--out", tmp_path / "r.tif"]
    assert main([str(a) for a in argv]) == 0
    np.testing.assert_array_equal(read_labels(tmp_path / "r.tif")[0], session.tracker.labels())
    assert "differ" not in capsys.readouterr().err
    # what the choice changes: the same session in float32 gives other labels
    argv[-1] = tmp_path / "f.tif"
    assert main([str(a) for a in [*argv, "--precision", "float32"]]) == 0
    assert not np.array_equal(read_labels(tmp_path / "f.tif")[0], session.tracker.labels())

    prompts.precision = None  # a session saved before sessions recorded it
    assert session_precision(prompts, None, CPU) == "float32"
    assert session_precision(prompts, None, CUDA) == "bfloat16"
    prompts.log = None  # a prompts file
    assert session_precision(prompts, None, CPU) == "auto"


def test_a_prompts_file_with_an_unknown_precision_is_one_clear_error(stack, tmp_path):
    import json

    path = write_session(tmp_path / "s.json", _session(build_model("demo"), stack.frames, "auto"))
    document = json.loads(path.read_text())
    assert document["precision"] == "float32"  # the demo model's input is below 512 px
    document["precision"] = "float16"
    path.write_text(json.dumps(document))
    with pytest.raises(SAM2Error, match=r"s\.json: precision: expected one of float32, bfloat16"):
        read_prompts(path)
