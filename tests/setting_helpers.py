"""A Tracker setting chosen by `segment`: its flag first, then the prompts file, then the
model's catalogue; a setting logged per propagation and parsed back (shared by the tests of
each such setting)."""

import json

import pytest
import tifffile

import napari_sam2.engine as engine
from napari_sam2.cli import main
from napari_sam2.errors import SAM2Error
from napari_sam2.session.log import parse_log


def assert_run_flag_parsed(setting: str, bad) -> None:
    """A logged propagation without `setting` (written before it existed, or with it off)
    parses as off; one where it is `bad` (not true or false) is refused, naming the field."""
    run = {"op": "propagate", "direction": "both", "start_frame": None, "objects": None}
    run |= {"reappear": True, "frames": None}
    assert getattr(parse_log([run], (8, 8))[0], setting) is False
    with pytest.raises(SAM2Error, match=rf"log\[0\]\.{setting}: expected true or false"):
        parse_log([run | {setting: bad}], (8, 8), "s.json")


def spy_on_propagations(monkeypatch, setting: str) -> list:
    """The list every Tracker's propagation from now on appends its `setting` to."""
    seen = []
    original = engine.Tracker.propagate

    def propagate(tracker, *args, **kwargs):
        seen.append(getattr(tracker, setting))
        return original(tracker, *args, **kwargs)

    monkeypatch.setattr(engine.Tracker, "propagate", propagate)
    return seen


def spy_on_trackers(monkeypatch, setting: str) -> list:
    """The list every Tracker made from now on appends its `setting` to."""
    seen = []

    class Spy(engine.Tracker):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(getattr(self, setting))

    monkeypatch.setattr(engine, "Tracker", Spy)
    return seen


def segment_choices(
    tmp_path, monkeypatch, stack, clicks, setting: str, flag: str, same_cell: bool = False
):
    """Run `segment --model demo` four times on `stack` with a click per object: plain, with
    `flag no`, with a prompts file saying `setting: false`, and that file with `flag yes`
    (same_cell: the clicks are on one cell on purpose, so not kept off each other's masks).
    Returns the Tracker's `setting` in each run and the labels of the first two."""
    seen = spy_on_trackers(monkeypatch, setting)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, stack.frames, imagej=True, metadata={"axes": "TYX"})
    objects = [
        {"id": i, "frames": {"0": {"points": [[x, y, 1]]}}}
        for i, (x, y) in enumerate(clicks, start=1)
    ]
    top = {"format": "napari-sam2 prompts", "version": 2, "objects": objects}
    prompts, chosen = tmp_path / "prompts.json", tmp_path / "chosen.json"
    prompts.write_text(json.dumps(top))
    chosen.write_text(json.dumps(top | {setting: False}))

    def segment(prompts_file, *extra):
        argv = ["segment", path, "--prompts", prompts_file, "--out", tmp_path / "labels.tif"]
        argv += ["--model", "demo", "--overwrite", "--quiet", *extra]
        argv += ["--exclusive-clicks", "no"] if same_cell else []
        assert main([str(a) for a in argv]) == 0
        return tifffile.imread(tmp_path / "labels.tif")

    by_default = segment(prompts)
    without = segment(prompts, flag, "no")
    segment(chosen)
    segment(chosen, flag, "yes")
    return seen, by_default, without
