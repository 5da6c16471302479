"""The headless session: its log replays to the same labels bit for bit (cancelled runs,
corrections, candidates, paint and removals included), corrections re-track only the objects
they touch, and session files that do not fit are clear errors that change nothing."""

import json

import numpy as np
import pytest

from napari_sam2.engine import Tracker
from napari_sam2.errors import SAM2Error
from napari_sam2.io import FramePrompts, read_prompts, write_prompts
from napari_sam2.model import build_model
from napari_sam2.session import Session, read_session, replay_prompts, write_session
from napari_sam2.session.files import labels_digest
from napari_sam2.session.log import Propagation
from napari_sam2.synthetic import moving_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CENTERS = ((16, 20), (36, 52))


@pytest.fixture(scope="module")
def model():
    return build_model("demo")


@pytest.fixture(scope="module")
def frames():
    stack, _ = moving_cells(num_frames=7, height=56, width=72, centers=CENTERS)
    return stack


def new_session(model, frames, **options) -> Session:
    return Session(Tracker(model, frames, **options), model_name="demo", video_axis=0)


def click(session, t, obj, x, y, sign=1):
    current = session.prompts.get((t, obj), FramePrompts())
    session.set_prompts(t, obj, FramePrompts([*current.points, (x, y, sign)], current.box))


def run(session, direction, stop_after=None, **options):
    steps = session.propagate(direction, **options)
    for n, _ in enumerate(steps, 1):
        if n == stop_after:
            steps.close()
            break


def a_session_with_everything(model, frames) -> Session:
    """Clicks, a box, propagation, a cancelled run, a correction, a candidate choice, a
    painted frame sent as a prompt and a removed object, in the order a user might."""
    session = new_session(model, frames)
    click(session, 1, 1, 20.5, 16.25)
    session.set_prompts(1, 2, FramePrompts(box=(42.0, 27.0, 62.0, 45.0)))
    click(session, 1, 3, 5.0, 50.0)
    run(session, "forward")
    run(session, "backward", stop_after=1)  # cancelled after one frame
    click(session, 4, 2, 52.0, 36.0, sign=0)  # a correction on a tracked frame
    click(session, 5, 1, 24.0, 18.0)
    if session.candidate_count(5, 1) == 3:
        session.choose_candidate(5, 1, 2)
    run(session, "both")
    painted = session.tracker.labels()[6].copy()
    painted[40:46, 5:12] = 4
    session.tracker.labels()[6] = painted  # as napari's brush writes into the array
    session.record_paint([6])
    session.send_painted()
    session.remove_object(3)
    frame = session.tracker.labels()[3].copy()
    frame[0:5, 60:70] = 6  # painted by hand and not sent: labels no object wrote
    session.tracker.labels()[3] = frame
    session.record_paint([3])
    frame = session.tracker.labels()[5].copy()
    frame[50:56, 0:4] = 7  # written by another tool (seeds, cell tracking): logged, not painted
    session.tracker.labels()[5] = frame
    session.record_labels([5])
    assert 5 not in session.painted
    run(session, "both")
    return session


def test_a_replayed_log_gives_the_same_labels_bit_for_bit(model, frames, tmp_path):
    session = a_session_with_everything(model, frames)
    session.rename(2, "mother cell")
    labels = session.tracker.labels().copy()
    assert {1, 2, 4} <= set(np.unique(labels)) and 3 not in labels
    # hand-painted labels no object wrote survive propagation, in the session and the replay
    assert (labels[3, 0:5, 60:70] == 6).all()
    path = write_session(tmp_path / "session.json", session)

    prompts, ops = read_session(path)
    assert [type(op).__name__ for op in ops] == [type(op).__name__ for op in session.log]
    cancelled = [op for op in ops if isinstance(op, Propagation) and op.frames is not None]
    assert [(op.direction, op.frames) for op in cancelled] == [("backward", 1)]

    again = new_session(model, frames)
    assert replay_prompts(again, prompts, ops, "session.json")  # the saved digest matches
    np.testing.assert_array_equal(again.tracker.labels(), labels)
    assert {i: o.name for i, o in again.objects.items()} == {
        i: o.name for i, o in session.objects.items()
    }
    # saved again, the replayed session is the same document
    second = write_session(tmp_path / "again.json", again)
    assert json.loads(second.read_text()) == json.loads(path.read_text())


def test_a_cancelled_run_changes_the_tracker_and_replays_so(model, frames, tmp_path):
    """Labels go back after a cancel, but the frames it tracked stay in the tracker's memory;
    a replay that skipped the cancelled run would differ from the session."""
    session = new_session(model, frames)
    click(session, 3, 1, 20.0, 16.0)
    run(session, "forward", stop_after=3)
    assert not session.tracker.labels()[4:].any()  # put back
    click(session, 5, 1, 22.0, 17.0)
    run(session, "backward")
    prompts, ops = read_session(write_session(tmp_path / "s.json", session))
    again = new_session(model, frames)
    replay_prompts(again, prompts, ops)
    np.testing.assert_array_equal(again.tracker.labels(), session.tracker.labels())
    assert [op.frames for op in again.log if isinstance(op, Propagation)] == [3, None]


def test_a_correction_re_tracks_only_the_object_it_changed(model, frames):
    session = new_session(model, frames)
    click(session, 1, 1, 20.5, 16.25)
    click(session, 1, 2, 52.0, 36.0)
    run(session, "both")
    first = session.tracker.labels().copy()
    assert (first == 1).any() and (first == 2).any()

    click(session, 4, 2, 54.0, 38.0, sign=0)
    assert session.objects_to_propagate("both") == [2]
    run(session, "both")
    assert session.log[-1].objects == (2,)
    after = session.tracker.labels()
    np.testing.assert_array_equal(after == 1, first == 1)  # bit for bit
    assert not np.array_equal(after == 2, first == 2)

    # nothing changed since: the user asked again, so every object runs
    assert session.objects_to_propagate("both") is None
    # an object propagated only forward still needs the backward pass
    click(session, 2, 1, 21.0, 16.0)
    run(session, "forward")
    assert session.log[-1].objects == (1,)
    assert session.stale_objects("both") == [1] and session.stale_objects("forward") == []
    assert session.objects_to_propagate("all") is None


def test_object_ids_beyond_the_label_dtype_are_refused_before_anything_changes(model, frames):
    labels = np.zeros(frames.shape, dtype=np.uint16)
    session = new_session(model, frames, labels_out=labels)
    with pytest.raises(SAM2Error, match=r"object id 65536 does not fit the labels \(uint16"):
        session.set_prompts(0, 65536, FramePrompts([(10.0, 10.0, 1)]))
    assert session.tracker.objects == {} and session.log == [] and not labels.any()
    # a session's labels keep their dtype: uint32 when given a uint32 array
    wide = new_session(model, frames, labels_out=np.zeros(frames.shape, dtype=np.uint32))
    assert wide.object(70_000).id == 70_000
    with pytest.raises(SAM2Error, match="at most 4294967295"):
        wide.object(2**32)
    assert new_session(model, frames).tracker.labels().dtype == np.uint16


def _session_file(tmp_path, model, frames):
    session = new_session(model, frames)
    click(session, 1, 1, 20.5, 16.25)
    run(session, "forward")
    return write_session(tmp_path / "s.json", session)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["log"].append({"op": "jump"}), r"log\[2\].op: expected one of prompts"),
        (lambda d: d["log"][0].update(frame=-1), r"log\[0\].frame: expected an integer >= 0"),
        (lambda d: d["log"][0].update(frame=99), r"log\[0\].frame: frame 99 is outside the stack"),
        (
            lambda d: d["log"][0].update(points=[[500.0, 1.0, 1]]),
            r"log\[0\]: .*outside the 72 x 56",
        ),
        (lambda d: d["log"][0].update(object=2**40), r"log\[0\].object: .* is larger than"),
        (lambda d: d["log"][1].update(direction="up"), r"log\[1\].direction: expected one of"),
        (lambda d: d["log"][1].update(frames=1.5), r"log\[1\].frames: expected an integer"),
        (lambda d: d["log"][1].update(when="now"), r"log\[1\]: unknown field 'when'"),
        (lambda d: d.update(num_frames=9), "num_frames: the session was made on 9 frames"),
        (
            lambda d: d["log"].append(
                {
                    "op": "paint",
                    "frame": 0,
                    "labels": {"size": [56, 72], "values": [0], "counts": [10**12]},
                }
            ),
            r"log\[2\].labels.counts: runs cover 1000000000000 pixels",
        ),
        (
            lambda d: d["log"].append(
                {
                    "op": "mask",
                    "frame": 0,
                    "object": 1,
                    "mask": {"size": [56, 71], "counts": [3976]},
                }
            ),
            r"log\[2\].mask.size: \[56, 71\] differs from frame_shape",
        ),
    ],
)
def test_a_session_file_that_does_not_fit_is_an_error_and_changes_nothing(
    model, frames, tmp_path, change, message
):
    path = _session_file(tmp_path, model, frames)
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    labels = np.zeros(frames.shape, dtype=np.uint16)
    session = new_session(model, frames, labels_out=labels)
    with pytest.raises(SAM2Error, match=message):
        prompts, ops = read_session(path)
        replay_prompts(session, prompts, ops, path.name)
    assert session.tracker.objects == {} and not labels.any()


def test_a_version_1_file_has_no_log_and_its_prompts_still_apply(model, frames, tmp_path):
    path = tmp_path / "v1.json"
    path.write_text(
        json.dumps(
            {
                "format": "napari-sam2 prompts",
                "version": 1,
                "model": "demo",
                "frame_shape": [56, 72],
                "objects": [
                    {"id": 1, "name": "a", "frames": {"1": {"points": [[20.5, 16.25, 1]]}}}
                ],
            }
        )
    )
    prompts, ops = read_session(path)
    assert ops is None and prompts.model == "demo"
    session = new_session(model, frames)
    for obj in prompts.objects:
        for t, frame in obj.frames.items():
            session.set_prompts(t, obj.id, frame)
    run(session, "forward")
    assert (session.tracker.labels()[1:] == 1).any()


def test_the_digest_tells_when_a_replay_differs(model, frames, tmp_path):
    path = _session_file(tmp_path, model, frames)
    prompts = read_prompts(path)
    prompts.labels_sha256 = labels_digest(np.zeros(frames.shape, np.uint16))
    write_prompts(path, prompts)
    prompts, ops = read_session(path)
    assert not replay_prompts(new_session(model, frames), prompts, ops)


def test_painted_labels_beyond_the_label_dtype_are_refused(model, frames):
    from napari_sam2.session.log import Paint

    labels = np.zeros(frames.shape, dtype=np.uint16)
    session = new_session(model, frames, labels_out=labels)
    painted = np.zeros(frames.shape[1:], dtype=np.uint32)
    painted[0, 0] = 70_000  # would wrap around to 4464 in uint16
    with pytest.raises(SAM2Error, match="painted label 70000 does not fit the labels"):
        session.replay([Paint(2, painted)])
    assert not labels.any()


def test_edits_during_a_paused_propagation_are_refused_and_paint_is_logged_after_it(model, frames):
    session = new_session(model, frames)
    click(session, 1, 1, 20.5, 16.25)
    click(session, 1, 2, 52.0, 36.0)
    steps = session.propagate("forward")
    next(steps)  # paused after one frame
    for edit in (
        lambda: session.remove_object(2),
        lambda: session.reset(),
        lambda: click(session, 3, 1, 20.0, 16.0),
        lambda: session.propagate("backward"),
    ):
        with pytest.raises(SAM2Error, match="a propagation is running"):
            edit()
    session.tracker.labels()[0, 0:3, 0:3] = 9  # painted by hand meanwhile
    session.record_paint([0])
    for _ in steps:
        pass
    assert [type(op).__name__ for op in session.log[-2:]] == ["Propagation", "Paint"]
    assert set(session.tracker.objects) == {1, 2}
    again = new_session(model, frames)
    again.replay(session.log)
    np.testing.assert_array_equal(again.tracker.labels(), session.tracker.labels())
