"""`napari-sam2 segment --prompts SESSION.json` replays a session's log and writes the labels
the session held, voxel for voxel; `--prompts-only` applies its final prompts instead (to
another stack of the same geometry); a session that does not fit is one error line."""

import json

import numpy as np
import pytest
import tifffile

from napari_sam2.cli import main
from napari_sam2.engine import Tracker
from napari_sam2.io import FramePrompts, Normalization, apply_prompts, read_labels, read_prompts
from napari_sam2.model import build_model
from napari_sam2.session import Session, write_session
from napari_sam2.synthetic import moving_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return build_model("demo")


def _stack(tmp_path, seed=0, num_frames=6):
    frames, _ = moving_cells(
        num_frames=num_frames, height=48, width=64, centers=((14, 16), (32, 44)), seed=seed
    )
    path = tmp_path / f"cells{seed}-{num_frames}.tif"
    tifffile.imwrite(path, frames, imagej=True, metadata={"axes": "TYX"})
    return frames, path


def _session(model, frames, limits) -> Session:
    tracker = Tracker(model, frames, contrast_limits=limits)
    session = Session(
        tracker,
        model_name="demo",
        video_axis=0,
        normalization=Normalization(contrast_limits=limits),
    )
    session.set_prompts(1, 1, FramePrompts([(16.0, 14.0, 1)]))
    session.set_prompts(1, 2, FramePrompts([(44.0, 32.0, 1)]))
    for _ in session.propagate("both"):
        pass
    # a correction on a tracked frame: replayed as made, it sees that frame's earlier mask
    session.set_prompts(4, 2, FramePrompts([(46.0, 34.0, 1), (52.0, 40.0, 0)]))
    for _ in session.propagate("both"):
        pass
    return session


def _limits(frames):
    return (float(frames.min()), float(frames.max()))


def test_segment_replays_a_session_exactly(model, tmp_path, capsys):
    frames, stack = _stack(tmp_path)
    session = _session(model, frames, _limits(frames))
    path = write_session(tmp_path / "session.json", session)
    out = tmp_path / "labels.tif"
    assert main(["segment", str(stack), "--prompts", str(path), "--out", str(out)]) == 0
    labels, axes = read_labels(out)
    assert axes == "TYX"
    np.testing.assert_array_equal(labels, session.tracker.labels())
    assert "differ" not in capsys.readouterr().err

    # applying the final prompts at once is another computation: the correction no longer
    # sees the mask it corrected, which is why a session replays its log
    only = tmp_path / "only.tif"
    argv = ["segment", str(stack), "--prompts", str(path), "--out", str(only), "--prompts-only"]
    assert main(argv) == 0
    tracker = Tracker(model, frames, contrast_limits=_limits(frames))
    apply_prompts(tracker, read_prompts(path))
    for _ in tracker.propagate("both"):
        pass
    np.testing.assert_array_equal(read_labels(only)[0], tracker.labels())
    assert not np.array_equal(read_labels(only)[0], labels)


def test_prompts_only_applies_a_session_to_another_stack(model, tmp_path):
    frames, _ = _stack(tmp_path)
    other, other_path = _stack(tmp_path, seed=5)
    path = write_session(tmp_path / "s.json", _session(model, frames, _limits(frames)))
    out = tmp_path / "other.tif"
    argv = ["segment", str(other_path), "--prompts", str(path), "--out", str(out)]
    assert main([*argv, "--prompts-only", "--direction", "forward"]) == 0
    tracker = Tracker(model, other, contrast_limits=_limits(frames))
    apply_prompts(tracker, read_prompts(path))
    for _ in tracker.propagate("forward"):
        pass
    np.testing.assert_array_equal(read_labels(out)[0], tracker.labels())
    assert {1, 2} <= set(np.unique(tracker.labels()))


def test_a_session_of_another_stack_length_is_one_error_line(model, tmp_path, capsys):
    frames, _ = _stack(tmp_path)
    _, short = _stack(tmp_path, num_frames=5)
    path = write_session(tmp_path / "s.json", _session(model, frames, _limits(frames)))
    out = tmp_path / "labels.tif"
    assert main(["segment", str(short), "--prompts", str(path), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("napari-sam2: error: s.json: num_frames: the session was made on 6")
    assert "--prompts-only" in err[-1] and "Traceback" not in "".join(err)
    assert not out.exists()


def test_a_session_made_with_a_checkpoint_file_replays_with_it(model, tmp_path):
    """A fine-tuned file (here the demo model saved as training saves one) is recorded in
    the session and used again by the replay."""
    from napari_sam2.model import build_model_from_checkpoint
    from napari_sam2.training import save_model

    checkpoint = save_model(model, tmp_path / "my-cells.pt")
    tuned = build_model_from_checkpoint(checkpoint)
    frames, stack = _stack(tmp_path)
    session = _session(tuned, frames, _limits(frames))
    session.model_name, session.checkpoint = None, str(checkpoint)
    path = write_session(tmp_path / "s.json", session)
    assert json.loads(path.read_text())["checkpoint"] == str(checkpoint)
    out = tmp_path / "labels.tif"
    assert main(["segment", str(stack), "--prompts", str(path), "--out", str(out)]) == 0
    np.testing.assert_array_equal(read_labels(out)[0], session.tracker.labels())
    checkpoint.unlink()
    out.unlink()
    assert main(["segment", str(stack), "--prompts", str(path), "--out", str(out)]) == 1
    assert not out.exists()


def test_a_session_without_normalization_saves_the_limits_it_used(model, tmp_path):
    """A script's session on percentiles other than the default: the file holds the
    contrast limits those percentiles gave, so `segment` maps intensities the same."""
    frames, stack = _stack(tmp_path)
    session = Session(Tracker(model, frames, percentiles=(10.0, 90.0)), model_name="demo")
    session.set_prompts(1, 1, FramePrompts([(16.0, 14.0, 1)]))
    for _ in session.propagate("forward"):
        pass
    path = write_session(tmp_path / "s.json", session)
    limits = read_prompts(path).normalization.contrast_limits
    assert limits == tuple(session.tracker.frames.limits[0])
    out = tmp_path / "labels.tif"
    assert main(["segment", str(stack), "--prompts", str(path), "--out", str(out)]) == 0
    np.testing.assert_array_equal(read_labels(out)[0], session.tracker.labels())
