"""A click's mask kept to the pieces its clicks lie on (engine/clicked_region.py): the rule
itself, the Tracker's option and its catalogue default, the candidates, and the files and
sessions that record it."""

import json

import numpy as np
import pytest
import tifffile
import torch

import napari_sam2.engine as engine
from napari_sam2.cli import main
from napari_sam2.engine import Tracker
from napari_sam2.engine.clicked_region import keep_clicked_region
from napari_sam2.engine.non_overlap import NON_OWNER_LOGIT
from napari_sam2.errors import SAM2Error
from napari_sam2.io import FramePrompts, parse_prompts
from napari_sam2.model import MODEL_NAMES, build_model
from napari_sam2.model.catalogue import clicked_region_by_default
from napari_sam2.session import Session, read_session, write_session
from napari_sam2.session.headless import replay_log, session_log
from napari_sam2.session.log import parse_log
from napari_sam2.synthetic import timelapse
from napari_sam2.training.evaluate import interior_point

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def two_pieces() -> torch.Tensor:
    """(1, 1, 16, 16) logits: a piece at rows/cols 2-5, another at 10-13, joined to a third
    (rows 6-7, cols 6-7) only through a corner."""
    logits = torch.full((1, 1, 16, 16), -4.0)
    logits[..., 2:6, 2:6] = 3.0
    logits[..., 10:14, 10:14] = 2.0
    logits[..., 6:8, 6:8] = 1.0  # touches the first piece at its corner (5, 5)-(6, 6)
    return logits


def test_pieces_no_positive_click_lies_on_are_lowered():
    logits = two_pieces()
    grid = 64  # the model's grid: 4 grid pixels per low-res pixel
    on_first = torch.tensor([[4 * 3 + 1.0, 4 * 4 + 2.0]])  # (x, y) inside rows/cols 2-5
    frame = (grid, grid)  # frame pixels the size of the grid's
    kept = keep_clicked_region(logits, on_first, torch.tensor([1]), grid, frame)
    first = torch.zeros(16, 16, dtype=torch.bool)
    first[2:6, 2:6] = first[6:8, 6:8] = True  # the corner-joined piece counts as the same
    assert torch.equal(kept[0, 0][first], logits[0, 0][first])
    stray = (logits[0, 0] > 0) & ~first
    assert (kept[0, 0][stray] <= NON_OWNER_LOGIT).all()
    assert torch.equal(kept[0, 0][~stray], logits[0, 0][~stray])
    # a positive click on each piece keeps both; a negative click there does not count
    on_second = torch.tensor([[4 * 11.0, 4 * 12.0]])
    both = keep_clicked_region(
        logits, torch.cat([on_first, on_second]), torch.tensor([1, 1]), grid, frame
    )
    assert torch.equal(both, logits)
    negative = keep_clicked_region(
        logits, torch.cat([on_first, on_second]), torch.tensor([1, 0]), grid, frame
    )
    assert torch.equal(negative, kept)


def test_a_mask_is_left_as_it_is_when_no_positive_click_lies_on_it():
    logits = two_pieces()
    off = torch.tensor([[4 * 0.5, 4 * 15.0]])  # background
    assert keep_clicked_region(logits, off, torch.tensor([1]), 64, (64, 64)) is logits
    assert keep_clicked_region(logits, off, torch.tensor([0]), 64, (64, 64)) is logits
    one = torch.full((1, 1, 16, 16), -1.0)
    one[..., 3:9, 3:9] = 2.0
    click = torch.tensor([[20.0, 20.0]])
    assert keep_clicked_region(one, click, torch.tensor([1]), 64, (64, 64)) is one


def test_a_click_counts_where_its_pixel_centre_lies():
    """A click on frame pixel x is at x + 0.5, where the frame's logits are resized from: on a
    100-pixel-wide frame over a 64-cell grid, pixel 3 lies in cell 2 (3.5 * 0.64 = 2.24),
    not in cell 1 (3 * 0.64 = 1.92)."""
    logits = torch.full((1, 1, 64, 64), -5.0)
    logits[..., 7:10, 2:6] = 4.0  # the clicked piece starts at column 2 (row 8: 12.5 * 0.64)
    logits[..., 40:44, 40:44] = 4.0  # a stray piece
    image_size, frame = 256, (100, 100)
    click = torch.tensor([[3.0, 12.0]]) * image_size / 100  # pixel (x 3, y 12) on the grid
    kept = keep_clicked_region(logits, click, torch.tensor([1]), image_size, frame)
    assert (kept[..., 7:10, 2:6] == 4.0).all()
    assert (kept[..., 40:44, 40:44] <= NON_OWNER_LOGIT).all()


def test_the_demo_model_keeps_clicks_to_their_pieces_and_sam2_checkpoints_do_not():
    assert clicked_region_by_default("demo")
    for name in MODEL_NAMES:
        if name != "demo":
            assert not clicked_region_by_default(name), name
    assert not clicked_region_by_default("my_model")
    assert not clicked_region_by_default(None)
    frames = np.zeros((2, 32, 32), np.uint8)
    demo = build_model("demo")
    assert Tracker(demo, frames).clicked_region is True
    assert Tracker(demo, frames, clicked_region=False).clicked_region is False


@pytest.fixture(scope="module")
def model():
    return build_model("demo")


@pytest.fixture(scope="module")
def cells():
    """A short time-lapse with two cells far apart and a click on the first."""
    s = timelapse(4, 96, 96, 2, seed=5, cell_radius=12.0, num_divisions=0, leaving=False)
    ids = [int(i) for i in np.unique(s.labels[0]) if i]
    return s, interior_point(s.labels[0] == ids[0])


def with_a_stray_piece(model, monkeypatch, corner: tuple[int, int]) -> None:
    """The model's answer to a click also holds a 4 x 4 low-res piece at `corner`, in its
    chosen mask and in every candidate, far from the click: what a model does when it
    reaches into another cell."""
    original = model.track_frame

    def track_frame(*args, **kwargs):
        prediction = original(*args, **kwargs)
        r, c = corner
        for masks in (prediction.low_res_masks, prediction.low_res_multimasks):
            masks[..., r : r + 4, c : c + 4] = 8.0
        return prediction

    monkeypatch.setattr(model, "track_frame", track_frame)


def stray_corner(x: float, y: float) -> tuple[int, int]:
    """A low-res (64 x 64 for the 96 x 96 frames) corner far from the click at (x, y)."""
    return (0, 0) if x > 48 and y > 48 else (56, 56)


def far_pixels(x: float, y: float) -> np.ndarray:
    """(96, 96) pixels well inside the stray piece at `stray_corner(x, y)`."""
    far = np.zeros((96, 96), bool)
    r, c = (int(v * 96 / 64) for v in stray_corner(x, y))
    far[r + 1 : r + 5, c + 1 : c + 5] = True
    return far


def test_a_click_and_its_candidates_lose_the_stray_piece(model, cells, monkeypatch):
    stack, (x, y) = cells
    far = far_pixels(x, y)
    with_a_stray_piece(model, monkeypatch, stray_corner(x, y))
    plain = Tracker(model, stack.frames, clicked_region=False)
    stray = plain.add_points(0, 1, [(x, y)], [1]) > 0
    assert stray[far].all()  # the piece is there without the option
    tracker = Tracker(model, stack.frames, clicked_region=True)
    kept = tracker.add_points(0, 1, [(x, y)], [1]) > 0
    assert not kept[far].any()
    clicked = np.zeros_like(stray)
    clicked[int(y), int(x)] = True
    # what is left is the piece the click lies on (the model's own mask may have had others)
    assert kept[int(y), int(x)] and (kept == far_piece(stray, clicked)).all()
    assert not (tracker.labels()[0][far]).any()
    previews = tracker.candidate_logits(0, 1)
    for index in range(3):
        chosen = tracker.choose_candidate(0, 1, index)
        assert not (chosen > 0)[far].any(), index
        np.testing.assert_array_equal(chosen, previews[index])  # what was shown is taken
    # switched off, a new click keeps the piece again
    tracker.clicked_region = False
    assert (tracker.add_points(0, 1, [(x, y)], [1]) > 0)[far].all()


def far_piece(mask: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The connected piece of `mask` that holds the pixels `inside`."""
    from scipy import ndimage

    pieces, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    return np.isin(pieces, np.unique(pieces[inside & mask]))


def test_a_session_replays_each_click_as_it_was_made(tmp_path, model, cells, monkeypatch):
    """The setting may change between clicks: the log says, per click and candidate choice,
    whether it was on, and a replay follows that whatever the file or tracker say now."""
    stack, (x, y) = cells
    with_a_stray_piece(model, monkeypatch, stray_corner(x, y))
    session = Session(Tracker(model, stack.frames), model_name="demo")
    session.set_prompts(0, 1, FramePrompts([(x, y, 1)]))  # on: the piece goes
    session.clicked_region = False
    session.set_prompts(1, 1, FramePrompts([(x, y, 1)]))  # off: the piece stays
    session.choose_candidate(1, 1, 0)
    for _ in session.propagate("forward"):
        pass
    saved = session.tracker.labels().copy()
    far = far_pixels(x, y)
    assert not saved[0][far].any() and saved[1][far].all()
    path = write_session(tmp_path / "session.json", session)
    document = json.loads(path.read_text())
    assert document["clicked_region"] is False  # the setting when saved, for clicks to come
    flags = [e.get("clicked_region") for e in document["log"] if e["op"] != "propagate"]
    assert flags == [True, None, None]  # written only where on

    prompts, _ = read_session(path)
    log = session_log(prompts, "session.json", prompts_only=False)
    for start in (True, False):
        fresh = Tracker(model, stack.frames, clicked_region=start)
        replayed, same = replay_log(fresh, prompts, log, "session.json")
        assert same
        np.testing.assert_array_equal(fresh.labels(), saved)
        assert replayed.clicked_region is False  # the file's choice after the replay

    # a session saved before the setting existed ran without it on every click
    for entry in document["log"]:
        entry.pop("clicked_region", None)
    del document["clicked_region"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    prompts, _ = read_session(old)
    fresh = Tracker(model, stack.frames)
    replayed, _ = replay_log(
        fresh, prompts, session_log(prompts, "old.json", prompts_only=False), "old.json"
    )
    assert fresh.labels()[0][far].all()  # the first click kept its piece too
    assert replayed.clicked_region is True  # later clicks: the model's default
    # a plain prompts file without it keeps the model's default
    plain = Session(Tracker(model, stack.frames))
    top = {"format": "napari-sam2 prompts", "version": 2, "objects": []}
    plain.take_choices(parse_prompts(top))
    assert plain.clicked_region is True


def test_a_bad_value_is_named():
    click = {"op": "prompts", "frame": 0, "object": 1, "points": [[1, 1, 1]]}
    assert parse_log([click], (8, 8))[0].clicked_region is False
    assert parse_log([click | {"clicked_region": True}], (8, 8))[0].clicked_region is True
    with pytest.raises(SAM2Error, match=r"log\[0\]\.clicked_region: expected true or false"):
        parse_log([click | {"clicked_region": "yes"}], (8, 8), "s.json")
    top = {"format": "napari-sam2 prompts", "version": 2, "objects": []}
    assert parse_prompts(top).clicked_region is None
    assert parse_prompts(top | {"clicked_region": False}).clicked_region is False
    with pytest.raises(SAM2Error, match=r"p.json: clicked_region: expected true or false, got 1"):
        parse_prompts(top | {"clicked_region": 1}, "p.json")


def test_segment_takes_the_flag_then_the_prompts_file_then_the_model(tmp_path, cells, monkeypatch):
    seen = []

    class Spy(engine.Tracker):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.clicked_region)

    monkeypatch.setattr(engine, "Tracker", Spy)
    stack, (x, y) = cells
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, stack.frames, imagej=True, metadata={"axes": "TYX"})
    top = {
        "format": "napari-sam2 prompts",
        "version": 2,
        "objects": [{"id": 1, "frames": {"0": {"points": [[x, y, 1]]}}}],
    }
    runs = [
        ("plain", top, []),
        ("chosen", top | {"clicked_region": False}, []),
        ("chosen", top | {"clicked_region": False}, ["--clicked-region", "yes"]),
        ("plain", top, ["--clicked-region", "no"]),
    ]
    for name, document, flag in runs:
        prompts = tmp_path / f"{name}.json"
        prompts.write_text(json.dumps(document))
        argv = ["segment", path, "--prompts", prompts, "--out", tmp_path / "labels.tif"]
        argv += ["--model", "demo", "--overwrite", "--quiet", *flag]
        assert main([str(a) for a in argv]) == 0
    assert seen == [True, False, True, False]
