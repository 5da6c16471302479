"""The size cue in use: the Tracker's option, the catalogue's default along Z, the command
line's --size-cue, and sessions that replay it."""

import json

import numpy as np
import pytest
import tifffile

from napari_sam2.cli import main
from napari_sam2.engine import Tracker
from napari_sam2.io import FramePrompts
from napari_sam2.model import MODEL_NAMES, build_model
from napari_sam2.model.catalogue import size_cue_by_default
from napari_sam2.session import Session, read_session, write_session
from napari_sam2.session.headless import replay_log, session_log
from napari_sam2.synthetic import zstack
from napari_sam2.training.evaluate import interior_point, jaccard

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    return build_model("demo")


@pytest.fixture(scope="module")
def nuclei():
    """A 14-slice stack of three nuclei, and a click on each where it is largest:
    {id: (slice, (x, y))}."""
    s = zstack(14, 128, 128, 3, seed=31_338, nucleus_radius=16.0, z_radius=4.0)
    clicks = {}
    for i in (int(i) for i in np.unique(s.labels) if i):
        z = int(np.argmax((s.labels == i).sum(axis=(1, 2))))
        clicks[i] = (z, interior_point(s.labels[z] == i))
    return s, clicks


def tracked(model, stack, clicks, **options) -> np.ndarray:
    tracker = Tracker(model, stack.frames, reappear=False, **options)
    for i, (z, xy) in clicks.items():
        tracker.add_points(z, i, [xy], [1])
    for _ in tracker.propagate("both"):
        pass
    return tracker.labels().copy()


def test_the_cue_brings_the_volumes_closer_to_the_nuclei(model, nuclei):
    stack, clicks = nuclei
    alone = tracked(model, stack, clicks)
    trimmed = tracked(model, stack, clicks, size_cue=True)
    volume_j = {
        name: np.mean([jaccard(labels == i, stack.labels == i) for i in clicks])
        for name, labels in (("alone", alone), ("trimmed", trimmed))
    }
    assert volume_j["trimmed"] > volume_j["alone"] + 0.03, volume_j
    # the cue only removes: no nucleus gains pixels on a slice it had none; and a slice it
    # empties ends the nucleus there (reappear off): each masklet is one run of slices
    for i in clicks:
        present = (trimmed == i).any(axis=(1, 2))
        assert not (present & ~(alone == i).any(axis=(1, 2))).any()
        run = np.flatnonzero(present)
        assert run.size and (np.diff(run) == 1).all(), run
    # the prompted slices are the model's own: a nucleus there keeps its pixels (and may
    # take back some a trimmed neighbour gave up)
    for i, (z, _) in clicks.items():
        assert (alone[z] == i).any()
        assert not ((alone[z] == i) & (trimmed[z] != i)).any()


def test_the_tracker_is_plain_sam2_unless_asked():
    tracker = Tracker(build_model("demo"), np.zeros((2, 32, 32), np.uint8))
    assert tracker.size_cue is False


def test_the_catalogue_turns_it_on_along_z_for_demo_only():
    assert size_cue_by_default("demo", along_z=True)
    assert not size_cue_by_default("demo", along_z=False)
    for name in MODEL_NAMES:
        assert not size_cue_by_default(name, along_z=True), name
        assert not size_cue_by_default(name, along_z=False), name
    assert not size_cue_by_default("my_model", along_z=True)
    assert not size_cue_by_default(None, along_z=True)


def _cli_inputs(tmp_path, nuclei, axes="ZYX"):
    stack, clicks = nuclei
    path = tmp_path / f"stack_{axes}.tif"
    tifffile.imwrite(path, stack.frames, imagej=True, metadata={"axes": axes})
    prompts = tmp_path / "prompts.json"
    objects = [
        {"id": i, "frames": {str(z): {"points": [[float(xy[0]), float(xy[1]), 1]]}}}
        for i, (z, xy) in clicks.items()
    ]
    prompts.write_text(
        json.dumps({"format": "napari-sam2 prompts", "version": 1, "objects": objects})
    )
    return path, prompts


def _segment(tmp_path, stack, prompts, *extra) -> np.ndarray:
    out = tmp_path / "labels.tif"
    argv = ["segment", stack, "--prompts", prompts, "--out", out, "--model", "demo"]
    assert main([str(a) for a in [*argv, "--overwrite", "--quiet", *extra]]) == 0
    return tifffile.imread(out)


def test_segment_size_cue_flag_along_z(tmp_path, model, nuclei):
    stack, prompts = _cli_inputs(tmp_path, nuclei)
    auto = _segment(tmp_path, stack, prompts)
    yes = _segment(tmp_path, stack, prompts, "--size-cue", "yes")
    no = _segment(tmp_path, stack, prompts, "--size-cue", "no")
    np.testing.assert_array_equal(auto, yes)
    assert (auto != no).any()
    # no: what the model draws by itself, as a plain Tracker run in both directions
    np.testing.assert_array_equal(no, tracked(model, nuclei[0], nuclei[1]))


def test_segment_seeds_along_z_uses_the_cue_by_default(tmp_path, nuclei):
    stack, _ = _cli_inputs(tmp_path, nuclei)
    truth, clicks = nuclei[0].labels, nuclei[1]
    # the nuclei of one slice (where the first is largest) seeded from the truth there
    z = next(iter(clicks.values()))[0]
    seeds = tmp_path / "seeds.tif"
    tifffile.imwrite(seeds, truth[z])

    def run(*extra):
        out = tmp_path / "cells.tif"
        argv = ["segment", stack, "--seeds", seeds, "--seed-frame", z, "--out", out]
        argv += ["--model", "demo", "--overwrite", "--quiet", *extra]
        assert main([str(a) for a in argv]) == 0
        return tifffile.imread(out)

    auto, no = run(), run("--size-cue", "no")
    np.testing.assert_array_equal(auto, run("--size-cue", "yes"))
    assert (auto != no).any()
    assert (auto > 0).sum() < (no > 0).sum()  # the cue only trims


def test_segment_leaves_it_off_along_t(tmp_path, nuclei, monkeypatch):
    import napari_sam2.engine as engine

    seen = []

    class Spy(engine.Tracker):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.size_cue)

    monkeypatch.setattr(engine, "Tracker", Spy)
    stack, prompts = _cli_inputs(tmp_path, nuclei, axes="TYX")
    _segment(tmp_path, stack, prompts)
    _segment(tmp_path, stack, prompts, "--size-cue", "yes")
    assert seen == [False, True]


def test_a_saved_session_replays_the_cue_to_the_same_labels(tmp_path, model, nuclei):
    stack, clicks = nuclei
    session = Session(Tracker(model, stack.frames, reappear=False), model_name="demo")
    for i, (z, xy) in clicks.items():
        session.set_prompts(z, i, FramePrompts([(float(xy[0]), float(xy[1]), 1)]))
    session.size_cue = True
    for _ in session.propagate("both"):
        pass
    first = session.tracker.labels().copy()
    session.size_cue = False
    i, (z, _) = next(iter(clicks.items()))
    session.set_prompts(z, i, session.prompts[(z, i)])  # re-track one object without it
    for _ in session.propagate("forward"):
        pass
    saved = session.tracker.labels().copy()
    assert (saved != first).any()
    path = write_session(tmp_path / "session.json", session)

    prompts, _ = read_session(path)
    assert prompts.size_cue is False  # the setting at saving time
    log = session_log(prompts, "session.json", prompts_only=False)
    assert [op.size_cue for op in log if hasattr(op, "size_cue")] == [True, False]
    fresh = Tracker(model, stack.frames)  # a plain tracker: the log says when to trim
    _, same = replay_log(fresh, prompts, log, "session.json")
    assert same
    np.testing.assert_array_equal(fresh.labels(), saved)


def test_a_bad_size_cue_in_a_prompts_file_or_session_log_is_a_clear_error():
    from napari_sam2.errors import SAM2Error
    from napari_sam2.io import parse_prompts
    from napari_sam2.session.log import parse_log

    top = {"format": "napari-sam2 prompts", "version": 2, "objects": []}
    assert parse_prompts(top).size_cue is None
    assert parse_prompts(top | {"size_cue": True}).size_cue is True
    with pytest.raises(SAM2Error, match=r"p.json: size_cue: expected true or false, got \"yes\""):
        parse_prompts(top | {"size_cue": "yes"}, "p.json")
    run = {"op": "propagate", "direction": "both", "start_frame": None, "objects": None}
    run |= {"reappear": False, "frames": None}
    # a log written before the size cue existed ran without it
    assert parse_log([run], (8, 8))[0].size_cue is False
    assert parse_log([run | {"size_cue": True}], (8, 8))[0].size_cue is True
    with pytest.raises(SAM2Error, match=r"log\[0\]\.size_cue: expected true or false, got 1"):
        parse_log([run | {"size_cue": 1}], (8, 8), "s.json")
