"""`segment --seeds`: every cell from a label image or automatic masks, with the CTC folder,
tracks, review queue and measurements; bad inputs are one-line errors that write nothing."""

import csv

import numpy as np
import pytest
import tifffile

from ctc_helpers import score
from napari_sam2 import synthetic
from napari_sam2.cli import main
from napari_sam2.io import read_labels
from napari_sam2.io.ctc import write_ctc_ground_truth

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cells")
    stack = synthetic.timelapse(num_frames=14, height=128, width=128, num_cells=4, seed=1)
    tifffile.imwrite(folder / "stack.tif", stack.frames, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(folder / "seeds.tif", stack.labels[2])
    tifffile.imwrite(folder / "volume.tif", stack.labels)
    return folder, stack


def _segment(folder, *options):
    args = ["segment", str(folder / "stack.tif"), "--model", "demo", "--quiet", *options]
    return main([str(a) for a in args])


def test_seeds_from_a_label_image_with_every_export(cells, tmp_path):
    folder, stack = cells
    out = tmp_path / "labels.tif"
    code = _segment(
        folder,
        "--seeds", folder / "seeds.tif", "--seed-frame", 2, "--out", out,
        "--ctc", tmp_path / "ctc", "--tracks", tmp_path / "tracks.csv",
        "--review", tmp_path / "review.csv", "--measurements", tmp_path / "m.csv",
    )  # fmt: skip
    assert code == 0
    labels, axes = read_labels(out)
    assert axes == "TYX" and labels.shape == stack.labels.shape
    assert (labels[2] == stack.labels[2]).all()
    write_ctc_ground_truth(tmp_path / "gt", stack.labels, stack.lineage)
    metrics = score(tmp_path / "ctc", tmp_path / "gt")
    assert metrics["Valid"] == 1 and metrics["TRA"] > 0.9
    with open(tmp_path / "tracks.csv") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["track_id", "t", "y", "x", "parent_track_id"]
    assert {int(r["t"]) for r in rows} == set(range(14))
    with open(tmp_path / "m.csv") as file:
        measured = list(csv.DictReader(file))
    assert {"area", "centroid_y", "intensity_mean", "solidity"} <= set(measured[0])
    assert (tmp_path / "review.csv").read_text().startswith("object,frame,reason,score,detail")


def test_seeds_shaped_like_the_stack_use_the_seed_frame(cells, tmp_path):
    folder, stack = cells
    out = tmp_path / "labels.tif"
    assert _segment(folder, "--seeds", folder / "volume.tif", "--seed-frame", 5, "--out", out,
                    "--divisions", "no") == 0  # fmt: skip
    labels, _ = read_labels(out)
    assert set(np.unique(labels[5])) == set(np.unique(stack.labels[5]))


def test_automatic_seeds_find_the_cells(tmp_path):
    stack = synthetic.timelapse(num_frames=3, num_cells=6, seed=11)  # the sample's frame size
    tifffile.imwrite(tmp_path / "stack.tif", stack.frames, imagej=True, metadata={"axes": "TYX"})
    out = tmp_path / "labels.tif"
    assert _segment(tmp_path, "--seeds", "auto", "--out", out) == 0
    labels, _ = read_labels(out)
    found = 0
    for cell in np.unique(stack.labels[0])[1:]:
        truth = stack.labels[0] == cell
        best = max(
            ((labels[0] == i) & truth).sum() / ((labels[0] == i) | truth).sum()
            for i in np.unique(labels[0][truth])
        )
        found += best >= 0.5
    assert found >= 0.8 * (len(np.unique(stack.labels[0])) - 1)


def test_prompts_runs_export_too(cells, tmp_path):
    folder, stack = cells
    from napari_sam2.io import FramePrompts, ObjectPrompts, Prompts, write_prompts

    prompts = Prompts(video_axis="T", frame_shape=(128, 128))
    prompts.objects.append(ObjectPrompts(1, "cell", {2: FramePrompts(mask=stack.labels[2] == 2)}))
    write_prompts(tmp_path / "p.json", prompts)
    out = tmp_path / "labels.tif"
    code = _segment(folder, "--prompts", tmp_path / "p.json", "--out", out,
                    "--ctc", tmp_path / "ctc", "--tracks", tmp_path / "t.csv")  # fmt: skip
    assert code == 0
    lines = (tmp_path / "ctc" / "res_track.txt").read_text().splitlines()
    label, begin, end, parent = (int(v) for v in lines[0].split())
    assert (label, begin, end, parent) == (1, 0, 13, 0)
    assert (tmp_path / "t.csv").read_text().startswith("track_id,t,y,x,parent_track_id")


@pytest.mark.parametrize(
    ("make_seeds", "options", "message"),
    [
        (lambda s: s.labels[2][:50], (), "has shape"),
        (lambda s: np.zeros((128, 128), np.uint16), (), "no object"),
        (lambda s: s.labels[2].astype(np.float32), (), "integer"),
        (lambda s: s.labels[2], ("--seed-frame", 14), "out of range"),
        (lambda s: s.labels[2], ("--reseed-every", 0), "reseed-every"),
    ],
)
def test_bad_seeds_are_one_line_errors_that_write_nothing(
    cells, tmp_path, capsys, make_seeds, options, message
):
    folder, stack = cells
    tifffile.imwrite(tmp_path / "bad.tif", make_seeds(stack))
    out = tmp_path / "labels.tif"
    code = _segment(folder, "--seeds", tmp_path / "bad.tif", "--out", out,
                    "--ctc", tmp_path / "ctc", *options)  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("napari-sam2: error:")
    assert message in err[0]
    assert not out.exists() and not (tmp_path / "ctc").exists()


def test_a_non_empty_ctc_folder_is_refused_unless_overwrite(cells, tmp_path, capsys):
    folder, _ = cells
    (tmp_path / "ctc").mkdir()
    (tmp_path / "ctc" / "res_track.txt").write_text("1 0 0 0\n")
    out = tmp_path / "labels.tif"
    options = ("--seeds", folder / "seeds.tif", "--out", out, "--ctc", tmp_path / "ctc")
    assert _segment(folder, *options) == 1
    assert "not empty" in capsys.readouterr().err and not out.exists()
    assert (tmp_path / "ctc" / "res_track.txt").read_text() == "1 0 0 0\n"
    assert _segment(folder, *options, "--overwrite", "--divisions", "no") == 0
    assert (tmp_path / "ctc" / "mask013.tif").exists()


def test_division_options_need_seeds(cells, tmp_path, capsys):
    folder, _ = cells
    out = tmp_path / "labels.tif"
    code = _segment(folder, "--prompts", tmp_path / "p.json", "--out", out, "--divisions", "yes")
    assert code == 1 and "--seeds" in capsys.readouterr().err and not out.exists()


def test_geff_export_holds_every_object_and_frame_with_the_lineage(cells, tmp_path, capsys):
    geff = pytest.importorskip("geff")  # the optional extra; the testing extra installs it
    folder, _ = cells
    out, path = tmp_path / "labels.tif", tmp_path / "cells.geff"
    options = ("--seeds", folder / "seeds.tif", "--seed-frame", 2, "--out", out)
    assert _segment(folder, *options, "--geff", path, "--ctc", tmp_path / "ctc") == 0
    graph, metadata = geff.read(str(path))
    labels, _ = read_labels(out)
    assert graph.number_of_nodes() == sum(len(np.unique(plane)) - 1 for plane in labels)
    assert [a.name for a in metadata.axes] == ["t", "y", "x"]
    # every CTC track with a parent is an edge from the parent's last node to its first
    by_track = {}
    for node, data in graph.nodes(data=True):
        by_track.setdefault(data["track_id"], []).append((data["t"], node))
    for line in (tmp_path / "ctc" / "res_track.txt").read_text().splitlines():
        label, begin, end, parent = (int(v) for v in line.split())
        assert sorted(by_track[label])[0][0] == begin and sorted(by_track[label])[-1][0] == end
        if parent:
            assert graph.has_edge(max(by_track[parent])[1], min(by_track[label])[1])
    # an existing output is refused before any work, and kept
    before = sorted(p.name for p in path.iterdir())
    assert _segment(folder, *options, "--overwrite", "--geff", path) == 0
    (tmp_path / "other").mkdir()
    assert _segment(folder, *options, "--geff", tmp_path / "other", "--overwrite") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a GEFF" in err[-1]
    assert sorted(p.name for p in path.iterdir()) == before
