"""CTC result folders: gaps split into tracks, parents before daughters, atomic, refused
when they would overwrite something, and valid for py-ctcmetrics."""

import numpy as np
import pytest
import tifffile

from ctc_helpers import dividing_volume, score
from napari_sam2.errors import SAM2Error
from napari_sam2.io.ctc import ctc_tracks, mask_name, write_ctc, write_ctc_ground_truth


def test_gaps_become_new_tracks_with_the_old_as_parent():
    relabelled, tracks = ctc_tracks(dividing_volume(), {5: 1, 6: 1})
    rows = {(k.label, k.begin, k.end, k.parent) for k in tracks}
    assert rows == {(1, 0, 2, 0), (2, 0, 1, 0), (5, 3, 5, 1), (6, 3, 5, 1), (7, 4, 5, 2)}
    assert relabelled.dtype == np.uint16
    assert (relabelled[4][10:14, 2:6] == 7).all() and (relabelled[0][10:14, 2:6] == 2).all()


def test_parent_that_overlaps_its_daughter_is_dropped():
    labels = dividing_volume()
    labels[3, 14:16, 14:16] = 1  # the parent lives on into the daughters' first frame
    _, tracks = ctc_tracks(labels, {5: 1})
    assert {k.label: k.parent for k in tracks}[5] == 0


def test_written_folder_is_valid_and_scores_perfectly_against_itself(tmp_path):
    labels, lineage = dividing_volume(), {5: 1, 6: 1}
    tracks = write_ctc(tmp_path / "res", labels, lineage)
    write_ctc_ground_truth(tmp_path / "gt", labels, lineage)
    lines = (tmp_path / "res" / "res_track.txt").read_text().splitlines()
    assert len(lines) == len(tracks) and lines[0] == "1 0 2 0"
    mask = tifffile.imread(tmp_path / "res" / "mask000.tif")
    assert mask.dtype == np.uint16 and mask.shape == (16, 16)
    metrics = score(tmp_path / "res", tmp_path / "gt")
    assert metrics["Valid"] == 1 and metrics["TRA"] == pytest.approx(1.0)
    assert metrics["BC(0)"] == pytest.approx(1.0)


def test_four_digits_past_1000_frames():
    assert mask_name(7, 1000) == "mask007.tif" and mask_name(7, 1001) == "mask0007.tif"


def test_non_empty_folder_refused_unless_overwrite(tmp_path):
    labels = dividing_volume()
    write_ctc(tmp_path / "res", labels)
    before = (tmp_path / "res" / "res_track.txt").read_text()
    with pytest.raises(SAM2Error, match="not empty"):
        write_ctc(tmp_path / "res", labels[:, ::-1].copy())
    assert (tmp_path / "res" / "res_track.txt").read_text() == before
    write_ctc(tmp_path / "res", labels[:3], overwrite=True)
    assert sorted(p.name for p in (tmp_path / "res").iterdir())[-1] == "res_track.txt"
    assert len(list((tmp_path / "res").glob("*.tif"))) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_folder_with_other_files_never_replaced(tmp_path):
    (tmp_path / "res").mkdir()
    tifffile.imwrite(tmp_path / "res" / "raw.tif", np.zeros((4, 4), np.uint8))
    with pytest.raises(SAM2Error, match="raw.tif"):
        write_ctc(tmp_path / "res", dividing_volume(), overwrite=True)
    assert [p.name for p in (tmp_path / "res").iterdir()] == ["raw.tif"]


def test_a_failure_midway_leaves_the_old_folder_and_no_partial_one(tmp_path, monkeypatch):
    write_ctc(tmp_path / "res", dividing_volume())
    before = sorted(p.name for p in (tmp_path / "res").iterdir())
    written = []

    def failing_write(path, data, **options):
        if len(written) == 2:
            raise OSError(28, "No space left on device")
        written.append(path)
        path.write_bytes(b"")

    monkeypatch.setattr(tifffile, "imwrite", failing_write)
    with pytest.raises(SAM2Error, match="No space left"):
        write_ctc(tmp_path / "res", dividing_volume(), overwrite=True)
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_a_killed_export_leaves_no_folder_behind_after_the_next(tmp_path):
    import subprocess
    import sys

    from napari_sam2.io.atomic import _host

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".ctc.{_host()}-{dead.pid}-0123abcd.napari-sam2-tmp"
    stale.mkdir()
    (stale / "mask000.tif").write_bytes(b"half written")
    write_ctc(tmp_path / "ctc", np.ones((2, 4, 4), dtype=np.uint16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctc"]
