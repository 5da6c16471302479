"""Tracking in tiles (engine.tiles, engine.tiled_tracking, `segment --tile`): the grid covers the
frame, one tile is the untiled tracker, an object crossing a border keeps one id, automatic
seeds found twice in an overlap become one object, and the command line's option."""

import json

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from napari_sam2.cli import main
from napari_sam2.engine import Tracker
from napari_sam2.engine.automatic_masks import generate_masks, settings_for_model
from napari_sam2.engine.tiled_tracking import TiledTracker
from napari_sam2.engine.tiles import resolve_tile, tile_grid
from napari_sam2.errors import SAM2Error
from napari_sam2.io import read_labels
from napari_sam2.model import build_model
from napari_sam2.synthetic import moving_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo():
    return build_model("demo")  # input size 256


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


@pytest.mark.parametrize(
    "height, width, size, overlap",
    [(2048, 2048, 256, 64), (700, 1000, 256, 0), (300, 257, 256, 100), (100, 90, 256, 64)],
)
def test_grid_covers_the_frame_and_cores_partition_it(height, width, size, overlap):
    windows = tile_grid(height, width, size, overlap)
    covered = np.zeros((height, width), dtype=int)
    cores = np.zeros((height, width), dtype=int)
    for w in windows:
        assert w.height <= size and w.width <= size
        covered[w.y0 : w.y1, w.x0 : w.x1] += 1
        cores[w.cy0 : w.cy1, w.cx0 : w.cx1] += 1
        assert w.y0 <= w.cy0 < w.cy1 <= w.y1 and w.x0 <= w.cx0 < w.cx1 <= w.x1
        # an object whose centroid is in the core is inside the window up to overlap / 2
        for edge, core_edge, frame_edge in (
            (w.y0, w.cy0, 0),
            (w.x0, w.cx0, 0),
        ):
            assert edge == frame_edge or core_edge - edge >= overlap // 2
        for edge, core_edge, frame_edge in ((w.y1, w.cy1, height), (w.x1, w.cx1, width)):
            assert edge == frame_edge or edge - core_edge >= overlap // 2
    assert covered.min() >= 1
    assert (cores == 1).all()
    # neighbours overlap by at least `overlap`
    starts_x = sorted({(w.x0, w.x1) for w in windows})
    for (_, end), (start, _) in zip(starts_x, starts_x[1:], strict=False):
        assert end - start >= overlap


@pytest.mark.parametrize("bad", [(16, 0), (256, 200), (256, -1), ("256", 0)])
def test_grid_rejects_bad_sizes(bad):
    with pytest.raises(SAM2Error):
        tile_grid(1000, 1000, *bad)


@pytest.mark.parametrize("tile, overlap", [("256", None), (16, None), (256, 200), (True, None)])
def test_tiled_tracker_refuses_bad_tiles(demo, tile, overlap):
    frames = np.zeros((2, 300, 300), dtype=np.uint8)
    with pytest.raises(SAM2Error, match="tile"):
        TiledTracker(demo, frames, tile=tile, overlap=overlap)


def test_auto_tiles_only_frames_much_larger_than_the_input():
    assert resolve_tile("auto", 300, 300, 256) is None
    assert resolve_tile("auto", 384, 200, 256) == 256
    assert resolve_tile("off", 5000, 5000, 256) is None
    assert resolve_tile(512, 100, 100, 256) == 512
    with pytest.raises(SAM2Error, match="off, auto or a size"):
        resolve_tile("big", 100, 100, 256)


def test_one_tile_tracks_as_the_untiled_tracker(demo):
    frames, _ = moving_cells(
        num_frames=5, height=200, width=240, centers=((60, 70), (130, 160)), radius=12
    )
    whole, tiled = Tracker(demo, frames), TiledTracker(demo, frames, tile=256)
    assert len(tiled.windows) == 1
    clicks = []
    for tracker in (whole, tiled):
        clicks.append(tracker.add_points(2, 1, [[76, 66]], [1]))
        tracker.add_box(2, 2, [145, 115, 175, 145])
        tracker.add_mask(4, 2, frames[4] > 700)
    np.testing.assert_allclose(clicks[0], clicks[1], atol=1e-5)
    list(whole.propagate("both"))
    steps = list(tiled.propagate("both"))
    assert len(steps) == whole.propagation_length("both")
    assert np.array_equal(whole.labels(), tiled.labels())
    assert set(np.unique(tiled.labels())) == {0, 1, 2}


def test_propagating_some_objects_leaves_the_others_pixels(demo):
    # two discs that touch and then overlap (closer ones, 22 pixels apart, merge into one
    # object with demo model v4 from frame 1)
    frames, _ = moving_cells(
        num_frames=4, height=256, width=512, centers=((100, 200), (110, 230)), radius=14
    )
    tracker = TiledTracker(demo, frames, tile=256)
    tracker.add_points(0, 1, [[200, 100]], [1])
    tracker.add_points(0, 2, [[230, 110]], [1])
    list(tracker.propagate("forward"))
    before = tracker.labels().copy()
    assert all((before[t] == 2).any() for t in range(4))
    steps = list(tracker.propagate("forward", obj_ids=[1]))
    assert [t for t, _ in steps] == [0, 1, 2, 3] and steps[0][1] == [1]
    after = tracker.labels()
    np.testing.assert_array_equal(after == 2, before == 2)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_object_crossing_a_tile_border_keeps_its_id(demo, direction):
    # windows x 0-255 and 128-383, cores split at x = 192; the cell moves from x 172 to 247
    # (demo model v3 follows a cell at 5 pixels per frame, IoU >= 0.73 here; at 8 it loses it)
    frames, truth = moving_cells(
        num_frames=16, height=256, width=384, centers=((128, 172),), radius=12, velocity=(0, 5)
    )
    first, last = 0, 15
    if direction == "backward":  # the same images, visited in the same order
        frames, truth, first, last = frames[::-1].copy(), truth[::-1].copy(), 15, 0
    tracker = TiledTracker(demo, frames, tile=256, overlap=64)
    assert [(w.x0, w.x1) for w in tracker.windows] == [(0, 256), (128, 384)]
    tracker.add_mask(first, 1, truth[first] == 1)
    list(tracker.propagate(direction))
    labels = tracker.labels()
    assert tracker.handovers >= 1
    assert set(np.unique(labels)) == {0, 1}  # one id, no duplicate
    for t in range(16):
        mask = labels[t] == 1
        pieces, _ = ndimage.label(mask)
        sizes = np.bincount(pieces.ravel())[1:]
        # the model leaves a few stray pixels; a seam would cut the cell in two halves
        assert sizes.max() >= 0.9 * sizes.sum(), f"frame {t}: the mask is in pieces {sizes}"
        assert _iou(mask, truth[t] == 1) > 0.6, f"frame {t}"
    # the cell ends partly outside the first window: only a hand-over follows it there
    assert labels[last, :, 256:].any()


def test_prompts_of_one_object_far_apart_are_refused(demo):
    frames, _ = moving_cells(num_frames=2, height=256, width=640, centers=((128, 40),))
    tracker = TiledTracker(demo, frames, tile=256)
    tracker.add_points(0, 1, [[40, 128]], [1])
    with pytest.raises(SAM2Error, match="does not fit in the tile of its first prompt"):
        tracker.add_points(1, 1, [[600, 128]], [1])
    assert tracker.prompted[1] == {0}


def test_automatic_seeds_in_an_overlap_are_one_object(demo):
    # cells at x 150, 200 and 230 lie where windows 0-255 and 128-383 overlap
    centres = ((60, 60), (60, 150), (180, 200), (128, 230), (190, 330))
    frames, truth = moving_cells(
        num_frames=1, height=256, width=384, centers=centres, radius=11, velocity=(0, 0)
    )
    tracker = TiledTracker(demo, frames, tile=256, overlap=128)
    settings = settings_for_model("demo", points_per_side=16)  # cells of 22 px: enough
    # both windows find the cell at x 200 whole: there is a duplicate to merge
    finds = 0
    for window in tracker.windows:
        window_tracker = tracker.window_tracker(window.index)
        image = window_tracker.normalized_frame(0)
        for m in generate_masks(demo, image, settings, window_tracker.frame_features(0)):
            full = np.zeros(truth[0].shape, dtype=bool)
            window.crop(full)[...] = m.mask
            finds += _iou(full, truth[0] == 3) > 0.5
    assert finds >= 2
    seeds = tracker.automatic_seed_labels(0, settings)
    found = 0
    for cell in range(1, len(centres) + 1):
        pixels = truth[0] == cell
        covering = [
            label
            for label in np.unique(seeds[pixels])
            if label and (seeds[pixels] == label).sum() > 0.3 * pixels.sum()
        ]
        assert len(covering) <= 1, f"cell {cell} was found {len(covering)} times"
        found += bool(covering)
    assert found >= 4
    # the cells in the overlap are among those found
    for cell in (2, 3, 4):
        assert (seeds[truth[0] == cell] > 0).mean() > 0.5, f"cell {cell} missed"


@pytest.fixture
def wide_stack(tmp_path):
    frames, truth = moving_cells(
        num_frames=4, height=256, width=512, centers=((100, 60), (150, 400)), radius=12
    )
    stack = tmp_path / "wide.tif"
    tifffile.imwrite(stack, frames, imagej=True, metadata={"axes": "TYX"})
    prompts = tmp_path / "prompts.json"
    document = {
        "format": "napari-sam2 prompts",
        "version": 1,
        "objects": [
            {"id": 1, "frames": {"0": {"points": [[60.0, 100.0, 1]]}}},
            {"id": 2, "frames": {"0": {"points": [[400.0, 150.0, 1]]}}},
        ],
    }
    prompts.write_text(json.dumps(document))
    return stack, prompts, truth


def test_cli_segment_with_tiles_writes_readable_labels(wide_stack, tmp_path):
    stack, prompts, truth = wide_stack
    out = tmp_path / "labels.tif"
    argv = ["segment", str(stack), "--prompts", str(prompts), "--out", str(out)]
    assert main([*argv, "--model", "demo", "--tile", "256", "--quiet"]) == 0
    labels, axes = read_labels(out)
    assert labels.shape == truth.shape and axes == "TYX"
    assert set(np.unique(labels)) == {0, 1, 2}
    assert _iou(labels[3] == 2, truth[3] == 2) > 0.5


def test_cli_seeds_with_tiles(wide_stack, tmp_path):
    # automatic seeds in tiles are tested above (the generator is slow on a CPU); here a
    # seed label image with ids of its own, tracked both ways from frame 1
    stack, _, truth = wide_stack
    seeds = tmp_path / "seeds.tif"
    tifffile.imwrite(seeds, np.where(truth[1] > 0, truth[1] + 40, 0).astype(np.uint16))
    out = tmp_path / "labels.tif"
    argv = ["segment", str(stack), "--seeds", str(seeds), "--out", str(out), "--model", "demo"]
    assert main([*argv, "--seed-frame", "1", "--tile", "auto", "--quiet"]) == 0
    labels, _ = read_labels(out)
    assert set(np.unique(labels)) == {0, 41, 42}
    for cell in (1, 2):  # each cell is its seed's object on every frame
        for t in range(len(truth)):
            assert _iou(labels[t] == cell + 40, truth[t] == cell) > 0.5, f"cell {cell}, {t}"


@pytest.mark.parametrize(
    "value, message",
    [
        ("abc", "--tile must be off, auto or a tile size"),
        ("16", "at least 32 pixels"),
        ("-5", "at least 32 pixels"),
    ],
)
def test_cli_rejects_bad_tile_values(wide_stack, tmp_path, capsys, value, message):
    stack, prompts, _ = wide_stack
    out = tmp_path / "labels.tif"
    for argv in (
        ["segment", str(stack), "--prompts", str(prompts), "--out", str(out)],
        ["batch", str(stack), "--prompts", str(prompts), "--out", str(tmp_path / "batch")],
    ):
        assert main([*argv, "--model", "demo", f"--tile={value}"]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("napari-sam2: error: ") and message in err[0]
    assert not out.exists() and not (tmp_path / "batch").exists()


def test_cli_refuses_divisions_with_tiles(wide_stack, tmp_path, capsys):
    stack, _, _ = wide_stack
    argv = ["segment", str(stack), "--seeds", "auto", "--out", str(tmp_path / "l.tif")]
    assert main([*argv, "--model", "demo", "--tile", "256", "--divisions", "yes"]) != 0
    assert "without divisions" in capsys.readouterr().err


def test_cli_tiles_a_session_file_only_with_prompts_only(demo, wide_stack, tmp_path, capsys):
    from napari_sam2.io import FramePrompts
    from napari_sam2.session import Session, write_session

    stack, _, truth = wide_stack
    frames = tifffile.imread(stack)
    session = Session(Tracker(demo, frames), model_name="demo", video_axis=0)
    session.set_prompts(0, 1, FramePrompts([(60.0, 100.0, 1)]))
    path = write_session(tmp_path / "session.json", session)
    out = tmp_path / "labels.tif"
    argv = ["segment", str(stack), "--prompts", str(path), "--out", str(out), "--tile", "256"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "add --prompts-only" in err[0] and not out.exists()
    assert main([*argv, "--prompts-only", "--quiet"]) == 0
    labels, _ = read_labels(out)
    assert _iou(labels[3] == 1, truth[3] == 1) > 0.5


def test_batch_passes_tile_on_to_every_stack(wide_stack, tmp_path, monkeypatch):
    import napari_sam2.batch

    stack, prompts, _ = wide_stack
    seen = {}
    monkeypatch.setattr(napari_sam2.batch, "run", lambda *a, **kw: seen.update(kw) or [])
    argv = ["batch", str(stack), "--prompts", str(prompts), "--out", str(tmp_path / "b")]
    assert main([*argv, "--tile", "auto"]) == 0
    options = seen["segment_options"]
    assert options[options.index("--tile") + 1] == "auto"


def test_cli_seeds_auto_with_tiles(wide_stack, tmp_path, monkeypatch, capsys):
    from napari_sam2.engine import automatic_masks

    # the demo settings with a coarser grid of clicks, so the generator runs fast
    coarse = automatic_masks.settings_for_model("demo", points_per_side=12)
    monkeypatch.setattr(automatic_masks, "settings_for_model", lambda *a, **k: coarse)
    stack, _, truth = wide_stack
    out = tmp_path / "labels.tif"
    argv = ["segment", str(stack), "--seeds", "auto", "--out", str(out), "--model", "demo"]
    assert main([*argv, "--tile", "auto"]) == 0
    assert "tracking in 3 tiles" in capsys.readouterr().err
    labels, _ = read_labels(out)
    for cell in (1, 2):  # each cell is one object on every frame, found once
        for t in range(len(truth)):
            inside = labels[t][truth[t] == cell]
            ids = [i for i in np.unique(inside) if i and (inside == i).mean() > 0.3]
            assert len(ids) == 1, f"cell {cell} on frame {t}: objects {ids}"


def test_propagating_again_forgets_the_last_hand_overs(demo):
    frames, truth = moving_cells(
        num_frames=16, height=256, width=384, centers=((128, 150),), radius=12, velocity=(0, 8)
    )
    tracker = TiledTracker(demo, frames, tile=256, overlap=64)
    tracker.add_mask(0, 1, truth[0] == 1)
    list(tracker.propagate("forward"))
    first, handovers = tracker.labels().copy(), tracker.handovers
    assert handovers >= 1 and 1 in tracker.window_tracker(1).object_ids
    # a new propagation starts from the user's prompts only: the hand-over prompt is gone
    run = tracker.propagate("forward")
    assert 1 not in tracker.window_tracker(1).object_ids
    list(run)
    assert tracker.handovers == handovers
    np.testing.assert_array_equal(tracker.labels(), first)


def test_batch_with_tiles_equals_segment_with_tiles(wide_stack, tmp_path):
    from distributed import LocalCluster

    stack, prompts, _ = wide_stack
    frames = tifffile.imread(stack)
    other = tmp_path / "other.tif"
    tifffile.imwrite(other, frames[::-1].copy(), imagej=True, metadata={"axes": "TYX"})
    options = ["--model", "demo", "--tile", "256", "--quiet"]
    alone = {}
    for path in (stack, other):
        out = tmp_path / f"{path.stem}.alone.tif"
        assert (
            main(["segment", str(path), "--prompts", str(prompts), "--out", str(out), *options])
            == 0
        )
        alone[path.stem] = read_labels(out)[0]
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        argv = ["batch", str(stack), str(other), "--prompts", str(prompts), "--out"]
        argv += [str(tmp_path / "batch"), "--scheduler", cluster.scheduler_address, *options]
        assert main(argv) == 0
    for stem, labels in alone.items():
        assert len(np.unique(labels)) == 3
        np.testing.assert_array_equal(
            read_labels(tmp_path / "batch" / f"{stem}.labels.tif")[0], labels
        )


def test_labels_out_keeps_other_labels_and_a_journal_puts_frames_back(demo):
    frames, truth = moving_cells(
        num_frames=4, height=256, width=512, centers=((100, 60), (150, 400)), radius=12
    )
    out = np.zeros(frames.shape, dtype=np.uint16)
    out[:, 200:210, 200:210] = 77  # painted by hand: not an object of the tracker
    before = out.copy()
    tracker = TiledTracker(demo, frames, tile=256, labels_out=out)
    tracker.begin_journal()
    tracker.add_points(0, 1, [[60, 100]], [1])
    list(tracker.propagate("forward"))
    assert tracker.labels() is out and (out[1:] == 1).any(axis=(1, 2)).all()
    assert (out[:, 200:210, 200:210] == 77).all()
    assert tracker.rollback() == [0, 1, 2, 3]
    np.testing.assert_array_equal(out, before)
    with pytest.raises(SAM2Error, match="does not fit the label array's uint16"):
        tracker.add_points(0, 70000, [[400, 150]], [1])
    assert tracker.object_ids == [1] and tracker.window_tracker(2).object_ids == []
    with pytest.raises(SAM2Error, match="labels_out must be an integer array"):
        TiledTracker(demo, frames, tile=256, labels_out=np.zeros((4, 256, 256), np.uint16))


def test_an_empty_prompt_fits_any_tile_and_a_click_keeps_painted_labels(demo):
    frames, _ = moving_cells(num_frames=2, height=256, width=640, centers=((128, 500),))
    out = np.zeros(frames.shape, dtype=np.uint16)
    out[:, 120:136, 490:510] = 77  # painted by hand under the cell: not the tracker's
    tracker = TiledTracker(demo, frames, tile=256, labels_out=out)
    tracker.add_points(0, 1, [[500, 128]], [1])
    assert tracker.home[1] == 2 and (out[0] == 1).any()  # the third window (x 384-639)
    assert (out[:, 120:136, 490:510] == 77).all()
    # clearing the object's prompts (nothing given) is no prompt outside its tile
    tracker.set_prompts(0, 1)
    assert tracker.prompted[1] == set() and not (out[0] == 1).any()
    tracker.add_mask(1, 1, np.zeros((256, 640), dtype=bool))
    assert tracker.home[1] == 2 and (out[:, 120:136, 490:510] == 77).all()
    # a click or box off the frame is named as such (not as a prompt too large for a tile)
    with pytest.raises(SAM2Error, match=r"point at \(x=-5, y=10\) is outside the 640 x 256"):
        tracker.add_points(0, 2, [[-5, 10]], [1])
    with pytest.raises(SAM2Error, match="box corner at .* is outside the 640 x 256 frame"):
        tracker.add_box(0, 2, [600, 200, 650, 250])
    assert tracker.object_ids == [1]


def test_propagating_nothing_is_a_clear_error(demo):
    frames, _ = moving_cells(num_frames=2, height=256, width=384, centers=((128, 150),))
    tracker = TiledTracker(demo, frames, tile=256)
    with pytest.raises(SAM2Error, match="no object has a prompt"):
        tracker.propagation_length()
    tracker.add_points(0, 1, [[150, 128]], [1])
    with pytest.raises(SAM2Error, match="no object was chosen"):
        tracker.propagate(obj_ids=[])
    tracker.set_prompts(0, 1)
    with pytest.raises(SAM2Error, match=r"objects \[1\] have no prompts"):
        tracker.propagate(obj_ids=[1])


def test_cli_device_out_of_memory_in_tiles_is_one_line(wide_stack, tmp_path, capsys, monkeypatch):
    import torch

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(TiledTracker, "_run_passes", out_of_memory)
    stack, prompts, _ = wide_stack
    out = tmp_path / "labels.tif"
    argv = ["segment", str(stack), "--prompts", str(prompts), "--out", str(out)]
    assert main([*argv, "--model", "demo", "--tile", "256", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ran out of memory tracking in tiles of 256" in err[0]
    assert "try a smaller --tile" in err[0] and not out.exists()
