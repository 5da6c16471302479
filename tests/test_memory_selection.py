"""The memory selection's two options beside SAM 2's (`prompt_memory_reach`,
`remember_absent`): what a tracked frame attends to with each, that SAM 2's configurations
keep SAM 2's selection, and that the Tracker follows the model's configuration."""

import dataclasses

import numpy as np
import pytest
import torch

from napari_sam2.engine import Tracker
from napari_sam2.errors import SAM2Error
from napari_sam2.model import FrameMemory, build_model, select_memories
from napari_sam2.model.config import CONFIGS, config_from_dict, config_to_dict
from napari_sam2.model.demo import DEMO_CONFIG

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def memory(tag: float, present: bool = True) -> FrameMemory:
    """A memory whose tensors carry `tag`, so the test can tell which frame a slot holds."""
    return FrameMemory(
        torch.full((1, 2, 1, 1), tag), torch.zeros(1, 2, 1, 1), torch.full((1, 4), tag), present
    )


def tags(inputs) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    spatial = [(slot, float(m.features[0, 0, 0, 0])) for slot, m in inputs.spatial]
    pointers = [(d, float(p[0, 0])) for d, p in inputs.pointers]
    return spatial, pointers


# the object clicked on frame 0, tracked on frames 1-9, judged absent on frames 7 and 8
CONDITIONING = {0: memory(0.0)}
TRACKED = {t: memory(float(t), present=t not in (7, 8)) for t in range(1, 10)}


def select(frame: int, **options):
    return select_memories(
        frame, CONDITIONING, TRACKED, num_frames=20, reverse=False, num_maskmem=4,
        max_obj_ptrs=16, **options,
    )  # fmt: skip


def test_sam2_s_selection_remembers_absent_frames_and_the_prompt_however_far():
    spatial, pointers = tags(select(10))
    assert spatial == [(0, 0.0), (1, 7.0), (2, 8.0), (3, 9.0)]
    assert [tag for _, tag in pointers] == [0.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]


def test_frames_where_the_object_was_absent_are_left_out_when_asked():
    spatial, pointers = tags(select(10, remember_absent=False))
    assert spatial == [(0, 0.0), (3, 9.0)]
    assert 7.0 not in [tag for _, tag in pointers] and 8.0 not in [tag for _, tag in pointers]
    assert [d for d, _ in pointers] == [10, 1, 4, 5, 6, 7, 8, 9]  # distances stay true


def test_a_far_prompt_is_attended_to_through_its_pointer_alone():
    spatial, pointers = tags(select(10, prompt_memory_reach=6))
    assert spatial == [(1, 7.0), (2, 8.0), (3, 9.0)]
    assert (10, 0.0) in pointers
    near, _ = tags(select(5, prompt_memory_reach=6))
    assert near == [(0, 0.0), (1, 2.0), (2, 3.0), (3, 4.0)]


def test_a_far_prompt_keeps_its_spatial_memory_when_no_tracked_frame_would_be_left():
    absent = {t: memory(float(t), present=False) for t in range(1, 10)}
    inputs = select_memories(
        10, CONDITIONING, absent, num_frames=20, reverse=False, num_maskmem=4, max_obj_ptrs=16,
        prompt_memory_reach=6, remember_absent=False,
    )  # fmt: skip
    spatial, pointers = tags(inputs)
    assert spatial == [(0, 0.0)]
    assert pointers == [(10, 0.0)]


def test_sam2_s_configurations_select_as_sam2_and_the_demo_model_does_not():
    for config in CONFIGS.values():
        assert (config.prompt_memory_reach, config.remember_absent) == (-1, True)
    assert (DEMO_CONFIG.prompt_memory_reach, DEMO_CONFIG.remember_absent) == (6, False)


@pytest.mark.parametrize("value", [-2, 2.5, True, "6"])
def test_a_bad_prompt_memory_reach_is_a_clear_error(value):
    data = config_to_dict(dataclasses.replace(DEMO_CONFIG))
    data["prompt_memory_reach"] = value
    with pytest.raises(SAM2Error, match="prompt_memory_reach"):
        config_from_dict(data)


def test_the_options_round_trip_through_a_checkpoint_s_configuration():
    config = config_from_dict(config_to_dict(DEMO_CONFIG))
    assert (config.prompt_memory_reach, config.remember_absent) == (6, False)


def blinking_cell() -> np.ndarray:
    """A bright disc on frames 0-3 and 7-9, an empty field on frames 4-6."""
    yy, xx = np.mgrid[:128, :128]
    frames = np.full((10, 128, 128), 100, np.uint16)
    for t in (0, 1, 2, 3, 7, 8, 9):
        frames[t][(yy - 64) ** 2 + (xx - 60 - t) ** 2 < 14**2] = 3000
    return frames


@pytest.mark.parametrize("remember_absent", [True, False])
def test_the_tracker_selects_as_the_model_s_configuration_says(monkeypatch, remember_absent):
    model = build_model("demo")
    model.config = dataclasses.replace(model.config, remember_absent=remember_absent)
    seen: list[tuple[int, list[bool]]] = []
    import napari_sam2.engine.tracker as tracker_module

    def spy(frame_idx, conditioning, tracked, **options):
        inputs = select_memories(frame_idx, conditioning, tracked, **options)
        seen.append((frame_idx, [m.present for _, m in inputs.spatial]))
        return inputs

    monkeypatch.setattr(tracker_module, "select_memories", spy)
    tracker = Tracker(model, blinking_cell())
    tracker.add_points(0, 1, [[60.0, 64.0]], [1])
    for _ in tracker.propagate("forward"):
        pass
    absent = [t for t, r in tracker.objects[1].tracked.items() if r.object_score <= 0]
    assert set(absent) & {4, 5, 6}, "the test needs frames where the cell is judged absent"
    attended_absent = any(not present for _, flags in seen for present in flags)
    assert attended_absent == remember_absent
