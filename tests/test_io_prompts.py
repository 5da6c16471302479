"""The prompts file: round trips, run-length encoded masks, errors that name the field, and
prompts given to and taken back from a Tracker."""

import copy
import json

import numpy as np
import pytest

from napari_sam2.engine import Tracker
from napari_sam2.errors import SAM2Error
from napari_sam2.io import (
    FramePrompts,
    Normalization,
    ObjectPrompts,
    Prompts,
    apply_prompts,
    decode_mask,
    encode_mask,
    parse_prompts,
    prompts_document,
    prompts_from_tracker,
    read_prompts,
    write_prompts,
)
from napari_sam2.model import build_model
from napari_sam2.synthetic import moving_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _mask(height=12, width=16) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    mask[3:7, 4:11] = True
    mask[0, 0] = mask[-1, -1] = True
    return mask


def _prompts() -> Prompts:
    return Prompts(
        objects=[
            ObjectPrompts(
                1,
                "nucleus",
                {
                    0: FramePrompts(points=[(4.5, 6.0, 1), (10.0, 2.25, 0)], box=(1, 2, 14, 11)),
                    3: FramePrompts(mask=_mask()),
                },
            ),
            ObjectPrompts(7, "", {2: FramePrompts(box=(0.0, 0.0, 5.5, 4.0))}),
        ],
        model="sam2.1_hiera_small",
        video_axis="Z",
        frame_shape=(12, 16),
        normalization=Normalization(contrast_limits=(100.0, 3000.0)),
    )


def _assert_same(a: Prompts, b: Prompts) -> None:
    assert (a.model, a.video_axis, a.frame_shape) == (b.model, b.video_axis, b.frame_shape)
    assert a.normalization == b.normalization
    assert [(o.id, o.name, sorted(o.frames)) for o in a.objects] == [
        (o.id, o.name, sorted(o.frames)) for o in b.objects
    ]
    for obj_a, obj_b in zip(a.objects, b.objects, strict=True):
        for t, frame in obj_a.frames.items():
            other = obj_b.frames[t]
            assert frame.points == other.points and frame.box == other.box
            assert (frame.mask is None) == (other.mask is None)
            if frame.mask is not None:
                np.testing.assert_array_equal(frame.mask, other.mask)


def test_round_trip(tmp_path):
    path = write_prompts(tmp_path / "prompts.json", _prompts())
    document = json.loads(path.read_text())
    assert document["version"] == 2 and document["format"] == "napari-sam2 prompts"
    assert document["objects"][0]["frames"]["0"]["points"] == [[4.5, 6.0, 1], [10.0, 2.25, 0]]
    _assert_same(read_prompts(path), _prompts())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.json"]


def test_write_can_refuse_to_overwrite(tmp_path):
    path = write_prompts(tmp_path / "prompts.json", _prompts())
    with pytest.raises(SAM2Error, match="exists"):
        write_prompts(path, Prompts(), overwrite=False)


def test_rle_is_row_major_runs_starting_with_background():
    mask = np.array([[1, 1, 0], [0, 1, 1]], dtype=bool)
    assert encode_mask(mask) == {"size": [2, 3], "counts": [0, 2, 2, 2]}
    assert encode_mask(~mask) == {"size": [2, 3], "counts": [2, 2, 2]}
    for m in (mask, ~mask, _mask(), np.zeros((3, 4), bool), np.ones((3, 4), bool)):
        np.testing.assert_array_equal(decode_mask(encode_mask(m)), m)


def _document() -> dict:
    return json.loads(json.dumps(prompts_document(_prompts())))


def _set(document: dict, where: tuple, value) -> dict:
    document = copy.deepcopy(document)
    target = document
    for key in where[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[where[-1]]
    else:
        target[where[-1]] = value
    return document


_DELETE = object()
OBJ1_F0 = ("objects", 0, "frames", "0")


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (("version",), 3, "version: 3 is newer"),
        (("version",), "1", 'version: expected one of 1, 2, got "1"'),
        (("version",), True, "version: expected one of 1, 2, got true"),
        (("version",), _DELETE, "version: missing"),
        (("format",), "labels", "format: expected 'napari-sam2 prompts'"),
        (("model",), "sam3", "model: unknown model"),
        (("video_axis",), "TZ", "video_axis: expected an axis letter or index"),
        (("frame_shape",), [12], r"frame_shape: expected \[height, width\]"),
        (("frame_shape",), [12, 0], r"frame_shape\[1\]: expected an integer >= 1"),
        (("normalization",), {"percentiles": [1, 99], "contrast_limits": [0, 1]}, "exactly one"),
        (("normalization", "contrast_limits"), [5, 5], "expected low < high"),
        (("normalization",), {"percentiles": [1, 120]}, "between 0 and 100"),
        (("objects",), {}, "objects: expected a list"),
        (("objects", 0, "id"), 0, r"objects\[0\].id: expected an integer >= 1"),
        (("objects", 1, "id"), 1, r"objects\[1\].id: 1 is used by an earlier object"),
        (("objects", 0, "id"), _DELETE, r"objects\[0\].id: missing"),
        (("objects", 1, "name"), 5, r"objects\[1\].name: expected a string"),
        (("objects", 1, "colour"), "red", r"objects\[1\].colour: expected \"#rrggbb\""),
        (("objects", 1, "shape"), "round", r"objects\[1\]: unknown field 'shape'"),
        (("objects", 0, "frames", "first"), {"box": [0, 0, 1, 1]}, "frame keys are frame"),
        (OBJ1_F0 + ("points", 0), [1, 2], r"frames\['0'\].points\[0\]: expected \[x, y, label\]"),
        (OBJ1_F0 + ("points", 1), [1, "a", 1], r"points\[1\]\[1\]: expected a finite number"),
        (OBJ1_F0 + ("points", 1), [1, 2, 3], r"points\[1\]\[2\]: a label is 1 .* or 0"),
        (OBJ1_F0 + ("box",), [1, 2, 3], r"frames\['0'\].box: expected \[x0, y0, x1, y1\]"),
        (OBJ1_F0 + ("point",), [[1, 2, 1]], r"frames\['0'\]: unknown field 'point'"),
        (OBJ1_F0, {}, r"frames\['0'\]: no points, box or mask"),
        (OBJ1_F0 + ("mask",), {"size": [12, 16], "counts": [192]}, "replaces points and boxes"),
        (("objects", 0, "frames", "3", "mask", "counts"), [1, 2], "runs cover 3 pixels"),
        (("objects", 0, "frames", "3", "mask", "size"), [16, 12], "differs from frame_shape"),
        (("objects", 0, "frames", "3", "mask", "counts"), [-1], "run lengths"),
    ],
)
def test_malformed_documents_name_the_field(where, value, message):
    with pytest.raises(SAM2Error, match=message) as error:
        parse_prompts(_set(_document(), where, value), "p.json")
    assert str(error.value).startswith("p.json: ")


def test_unreadable_files(tmp_path):
    with pytest.raises(SAM2Error, match="prompts file not found"):
        read_prompts(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text('{"version": 1,')
    with pytest.raises(SAM2Error, match="broken.json: not valid JSON .* line 1"):
        read_prompts(tmp_path / "broken.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(SAM2Error, match="list.json: expected a JSON object"):
        read_prompts(tmp_path / "list.json")


def test_minimal_document():
    prompts = parse_prompts(
        {"version": 1, "objects": [{"id": 2, "frames": {"4": {"points": [[1, 2, 1]]}}}]}
    )
    assert prompts.objects[0].frames[4].points == [(1.0, 2.0, 1)]
    assert prompts.model is None and prompts.normalization is None


@pytest.fixture(scope="module")
def tracker_parts():
    frames, _ = moving_cells(num_frames=3, height=40, width=56, centers=((12, 14), (28, 40)))
    return build_model("sam2.1_hiera_tiny", image_size=64), frames


def test_apply_then_extract_gives_the_prompts_back(tracker_parts):
    model, frames = tracker_parts
    mask = np.zeros((40, 56), dtype=bool)
    mask[20:36, 30:50] = True
    given = Prompts(
        objects=[
            ObjectPrompts(
                1,
                "",
                {0: FramePrompts(points=[(14.0, 12.0, 1), (3.5, 30.25, 0)], box=(2, 1, 26, 24))},
            ),
            ObjectPrompts(2, "", {1: FramePrompts(mask=mask)}),
        ],
        frame_shape=(40, 56),
    )
    tracker = Tracker(model, frames)
    apply_prompts(tracker, given)
    assert sorted(tracker.objects) == [1, 2]
    back = prompts_from_tracker(tracker)
    first = back.objects[0].frames[0]
    np.testing.assert_allclose(first.points, given.objects[0].frames[0].points, atol=1e-3)
    np.testing.assert_allclose(first.box, given.objects[0].frames[0].box, atol=1e-3)
    # a mask comes back through the model's input grid: nearly, not exactly, the same
    returned = back.objects[1].frames[1].mask
    assert (returned & mask).sum() / (returned | mask).sum() > 0.9


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ({5: FramePrompts(points=[(1, 1, 1)])}, r"frames\['5'\]: frame 5 is outside the stack"),
        ({0: FramePrompts(points=[(57, 1, 1)])}, r"points\[0\]: \(x=57, y=1\) is outside"),
        ({0: FramePrompts(box=(0, 0, 10, 41))}, r"box: \[0, 0, 10, 41\] reaches outside"),
        ({0: FramePrompts(mask=np.ones((40, 55), bool))}, r"mask: size \[40, 55\] differs"),
    ],
)
def test_prompts_outside_the_stack_change_nothing(tracker_parts, frame, message):
    model, frames = tracker_parts
    tracker = Tracker(model, frames)
    prompts = Prompts(
        objects=[
            ObjectPrompts(1, "", {0: FramePrompts(points=[(3, 3, 1)])}),
            ObjectPrompts(2, "", frame),
        ]
    )
    with pytest.raises(SAM2Error, match=message):
        apply_prompts(tracker, prompts, "p.json")
    assert tracker.objects == {}


def test_prompts_made_on_other_frames_are_refused(tracker_parts):
    model, frames = tracker_parts
    prompts = Prompts(objects=[], frame_shape=(40, 60))
    with pytest.raises(SAM2Error, match="frame_shape: the prompts were made on 40 x 60"):
        apply_prompts(Tracker(model, frames), prompts)


# -- hardening: each a clear SAM2Error before anything is allocated or applied ------------


def _read_text(tmp_path, text: str) -> Prompts:
    path = tmp_path / "p.json"
    path.write_text(text, encoding="utf-8")
    return read_prompts(path)


def test_deeply_nested_json_is_an_error_not_a_recursion_error(tmp_path):
    with pytest.raises(SAM2Error, match="p.json: JSON nested too deeply"):
        _read_text(tmp_path, "[" * 100_000 + "]" * 100_000)


def test_an_integer_of_thousands_of_digits_is_an_error(tmp_path):
    text = '{"version": 2, "objects": [{"id": ' + "9" * 5000 + "}]}"
    with pytest.raises(SAM2Error, match="p.json: not a usable JSON document"):
        _read_text(tmp_path, text)


def test_a_repeated_key_is_an_error_not_the_later_value(tmp_path):
    frames = '"frames": {"3": {"points": [[1, 1, 1]]}, "3": {"points": [[2, 2, 0]]}}'
    with pytest.raises(SAM2Error, match="p.json: the key '3' appears twice"):
        _read_text(tmp_path, '{"version": 2, "objects": [{"id": 1, ' + frames + "}]}")


def test_nan_and_infinity_literals_are_errors(tmp_path):
    text = '{"version": 2, "objects": [{"id": 1, "frames": {"0": {"points": [[NaN, 1, 1]]}}}]}'
    with pytest.raises(SAM2Error, match="NaN is not a number JSON allows"):
        _read_text(tmp_path, text)


@pytest.mark.parametrize("key", ["٣", "03", "+3", " 3", "3.0", "१"])
def test_frame_keys_are_plain_ascii_digits(key):
    document = {"version": 2, "objects": [{"id": 1, "frames": {key: {"points": [[1, 1, 1]]}}}]}
    with pytest.raises(SAM2Error, match="frame keys are frame indices"):
        parse_prompts(document, "p.json")


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (OBJ1_F0 + ("points", 1), [10**400, 2, 1], r"points\[1\]\[0\]: expected a finite number"),
        (OBJ1_F0 + ("box",), [0, 0, 1e308 * 10, 1], r"box\[2\]: expected a finite number"),
        (("objects", 0, "id"), 2**32, r"objects\[0\].id: 4294967296 is larger than"),
        (("objects", 0, "id"), 10**30, r"objects\[0\].id: .* is larger than"),
        (("frame_shape",), [10**9, 10**9], r"frame_shape\[0\]: .* is larger than"),
        (("frame_shape",), [60000, 60000], r"frame_shape: \[60000, 60000\] is larger"),
        (("image_size",), 100, "image_size: a model input size is a multiple of 32"),
        (("video_axis",), 10**20, "video_axis: expected an axis letter or index"),
        (("lineage",), {"7": 7}, "lineage: object 7 is its own ancestor"),
        (("lineage",), {"٧": 1}, r"lineage\['٧'\]: frame keys"),
        (("log",), {"op": "reset"}, "log: expected a list of operations"),
    ],
)
def test_absurd_numbers_are_errors(where, value, message):
    with pytest.raises(SAM2Error, match=message):
        parse_prompts(_set(_document(), where, value), "p.json")


def test_a_mask_size_is_checked_before_it_is_expanded():
    # 10^10 pixels declared with two runs: refused from the numbers alone, without a frame
    # shape to compare with, before any array is made
    document = _set(_document(), ("frame_shape",), None)
    huge = {"size": [100_000, 100_000], "counts": [0, 10**10]}
    with pytest.raises(SAM2Error, match=r"mask.size\[0\]: 100000 is larger than"):
        parse_prompts(_set(document, ("objects", 0, "frames", "3", "mask"), huge), "p.json")
    big = {"size": [65536, 65536], "counts": [0, 65536**2]}
    with pytest.raises(SAM2Error, match=r"mask.size: \[65536, 65536\] is larger than any frame"):
        parse_prompts(_set(document, ("objects", 0, "frames", "3", "mask"), big), "p.json")
    with pytest.raises(SAM2Error, match="runs do not cover"):
        decode_mask({"size": [4, 4], "counts": [0, 10**6]})


def test_a_version_1_file_reads_as_version_2(tmp_path):
    document = _document()
    v1 = {key: document[key] for key in ("format", "model", "video_axis", "frame_shape")}
    v1 |= {"version": 1, "normalization": document["normalization"]}
    v1["objects"] = [{k: o[k] for k in ("id", "name", "frames")} for o in document["objects"]]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1))
    prompts = read_prompts(path)
    _assert_same(prompts, _prompts())
    assert prompts.log is None and prompts.lineage == {} and prompts.image_size is None
    # written back, it is version 2 and reads the same
    again = read_prompts(write_prompts(tmp_path / "v2.json", prompts))
    _assert_same(again, _prompts())
    # version 2 fields are not version 1 fields
    with pytest.raises(SAM2Error, match="unknown field 'log'"):
        parse_prompts(v1 | {"log": []}, "v1.json")


def test_version_2_fields_round_trip(tmp_path):
    prompts = _prompts()
    prompts.objects[1].parent = 1
    prompts.objects[0].colour = "#ff8000"
    prompts.checkpoint, prompts.image_size, prompts.fixed = "/models/mine.pt", 512, (0, 3)
    prompts.num_frames, prompts.reappear = 9, False
    prompts.log = [{"op": "reset"}]
    back = read_prompts(write_prompts(tmp_path / "s.json", prompts))
    _assert_same(back, prompts)
    assert back.lineage == {7: 1} and back.objects[1].parent == 1
    assert back.objects[0].colour == "#ff8000"
    assert (back.checkpoint, back.image_size, back.fixed) == ("/models/mine.pt", 512, (0, 3))
    assert (back.num_frames, back.reappear, back.log) == (9, False, [{"op": "reset"}])


def test_a_byte_order_mark_is_read_past(tmp_path):
    path = tmp_path / "bom.json"
    path.write_text('{"version": 1, "objects": []}', encoding="utf-8-sig")
    assert read_prompts(path).objects == []


def test_a_file_too_large_to_be_prompts_is_refused_unread(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as sparse:
        sparse.truncate((1 << 30) + 1)  # sparse: no disk space used
    with pytest.raises(SAM2Error, match="huge.json: 1.0 GiB is too large for a prompts file"):
        read_prompts(path)
