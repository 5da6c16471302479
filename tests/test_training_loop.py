"""The training loop on a tiny model: the loss falls on a fixed clip, the output checkpoint
loads with build_model (weights only), and an interrupted run resumes where it stopped and
ends where an uninterrupted run ends."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from napari_sam2.errors import SAM2Error
from napari_sam2.model import build_model
from napari_sam2.model.config import config_from_dict, config_to_dict
from napari_sam2.training import (
    ClipSampler,
    Recipe,
    TrainOptions,
    clip_step,
    fine_tune,
    init_from_scratch,
    load_trained,
    read_config,
    train,
)
from napari_sam2.training.loop import PROMPTED_FRAME_PATH, learning_rate
from training_helpers import TINY, drifting_discs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _options(**changes) -> TrainOptions:
    values = dict(steps=4, lr=1e-3, warmup_steps=1, checkpoint_every=2, log_every=1, seed=3)
    values.update(changes)
    return TrainOptions(**values)


def test_training_steps_reduce_the_loss_on_a_fixed_clip():
    torch.manual_seed(0)
    model = build_model(TINY).train()
    clip = ClipSampler([drifting_discs()], 64).sample(np.random.default_rng(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        # the same prompts every time: only the weights change
        result = clip_step(model, clip, np.random.default_rng(0), Recipe())
        optimizer.zero_grad()
        result.loss.backward()
        optimizer.step()
        losses.append(float(result.loss))
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])
    assert all(np.isfinite(losses))


def test_shrunk_memories_remember_eroded_masks_of_tracked_frames_only(monkeypatch):
    """With shrunk_memory_prob 1 the prompted frame is remembered as predicted and each
    tracked frame from its mask eroded: inside the predicted mask, and smaller."""
    torch.manual_seed(0)
    model = build_model(TINY).train()
    clip = ClipSampler([drifting_discs()], 64).sample(np.random.default_rng(0))
    remembered = []
    encode = model.encode_memory

    def recording(features, masks, *args, **kwargs):
        remembered[-1].append(masks.detach().clone())
        return encode(features, masks, *args, **kwargs)

    monkeypatch.setattr(model, "encode_memory", recording)
    # clicks only, no corrective clicks: both runs draw the same prompts
    plain = Recipe(first_prompt_probs=(0.0, 1.0, 0.0), correction_clicks=0)
    for recipe in (plain, replace(plain, shrunk_memory_prob=1.0, shrunk_memory_px=3)):
        remembered.append([])
        torch.manual_seed(1)  # the same dropout in both
        clip_step(model, clip, np.random.default_rng(5), recipe)
    before, after = remembered
    first = len(clip.masks)  # one encode per object on the prompted frame
    for a, b in zip(before[:first], after[:first], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    tracked_before, tracked_after = before[first] > 0, after[first] > 0  # frame 1, all objects
    assert tracked_after.sum() < tracked_before.sum()
    assert not (tracked_after & ~tracked_before).any()
    with pytest.raises(ValueError, match="shrunk_memory_px must be at least 1"):
        Recipe(shrunk_memory_prob=0.5, shrunk_memory_px=0)


def test_the_first_frame_weight_scales_the_prompted_frame_s_loss_only():
    """Weight w on the first frame: a one-frame clip's loss is w times as large; in a longer
    clip the tracked frames' losses stay as they were, so the loss grows by (w - 1) times
    the first frame's part and no more."""
    torch.manual_seed(0)
    model = build_model(TINY).train()
    plain = Recipe(first_prompt_probs=(0.0, 1.0, 0.0), correction_clicks=0)
    loss = {}
    for length in (1, 4):
        clip = ClipSampler([drifting_discs()], 64, length=length).sample(np.random.default_rng(0))
        for w in (1.0, 2.0, 3.0):
            torch.manual_seed(1)  # the same dropout in every run
            recipe = replace(plain, first_frame_weight=w)
            loss[length, w] = float(clip_step(model, clip, np.random.default_rng(5), recipe).loss)
    assert loss[1, 3.0] == pytest.approx(3 * loss[1, 1.0], rel=1e-5)
    first_part = loss[4, 2.0] - loss[4, 1.0]
    assert 0 < first_part < loss[4, 1.0]  # the tracked frames add to the loss too
    assert loss[4, 3.0] - loss[4, 1.0] == pytest.approx(2 * first_part, rel=1e-4)
    with pytest.raises(ValueError, match="first_frame_weight must be positive"):
        Recipe(first_frame_weight=0.0)


def test_rolled_out_frames_are_tracked_without_gradients_or_losses(monkeypatch):
    """rollout_frames 2 on a 5-frame clip: frames 1 and 2 are tracked and remembered with no
    graph and no loss; the prompted frame and frames 3-4 are scored as without it, frames
    3-4 predicted from the same (rolled-out) memories, so with the same values."""
    from napari_sam2.training.step import ClipStep

    torch.manual_seed(0)
    model = build_model(TINY).train()
    clip = ClipSampler([drifting_discs()], 64, length=5).sample(np.random.default_rng(0))
    plain = Recipe(first_prompt_probs=(0.0, 1.0, 0.0), correction_clicks=0)
    scored, remembered = [], []
    score, remember = ClipStep.score, ClipStep.remember

    def recording_score(self, prediction, t, objects):
        scored[-1].append((t, prediction.low_res_multimasks.detach().clone()))
        return score(self, prediction, t, objects)

    def recording_remember(self, f, outputs, from_clicks):
        memory = remember(self, f, outputs, from_clicks)
        remembered[-1].append(memory.features.requires_grad)
        return memory

    monkeypatch.setattr(ClipStep, "score", recording_score)
    monkeypatch.setattr(ClipStep, "remember", recording_remember)
    # 3 scored frames after the rollout: 5 frames roll out only 1..2 of the 9 asked for
    for recipe in (plain, replace(plain, rollout_frames=9, scored_after_rollout=2)):
        scored.append([])
        remembered.append([])
        torch.manual_seed(1)  # the same dropout in both
        result = clip_step(model, clip, np.random.default_rng(5), recipe)
        assert result.loss.requires_grad
    full, rolled = scored
    assert [t for t, _ in full if t > 0] == [1, 2, 3, 4]
    assert [t for t, _ in rolled if t > 0] == [3, 4]
    later = [m for t, m in full if t > 2]
    for a, (_, b) in zip(later, [s for s in rolled if s[0] > 2], strict=True):
        torch.testing.assert_close(a, b)
    assert remembered[1] == [True, False, False, True, True]
    with pytest.raises(ValueError, match="rollout_frames must be at least 0"):
        Recipe(rollout_frames=-1)


def test_a_drawn_rollout_varies_from_clip_to_clip(monkeypatch):
    """rollout_drawn: each clip rolls out 0..rollout_frames frames (here 0..2 of a 5-frame
    clip) and is cut 2 scored frames after them, so which frames are scored differs between
    clips and their number does not; without it every clip rolls out all of them."""
    from napari_sam2.training.step import ClipStep

    torch.manual_seed(0)
    model = build_model(TINY).train()
    clip = ClipSampler([drifting_discs()], 64, length=5).sample(np.random.default_rng(0))
    plain = Recipe(first_prompt_probs=(0.0, 1.0, 0.0), correction_clicks=0, max_correction_frames=1)
    scored: list[list[int]] = []
    score = ClipStep.score

    def recording_score(self, prediction, t, objects):
        scored[-1].append(t)
        return score(self, prediction, t, objects)

    monkeypatch.setattr(ClipStep, "score", recording_score)
    patterns = {}
    for drawn in (False, True):
        recipe = replace(plain, rollout_frames=2, scored_after_rollout=2, rollout_drawn=drawn)
        seen = set()
        for seed in range(8):
            scored.append([])
            clip_step(model, clip, np.random.default_rng(seed), recipe)
            seen.add(tuple(t for t in scored[-1] if t > 0))
        patterns[drawn] = seen
    assert patterns[False] == {(3, 4)}
    assert patterns[True] <= {(1, 2), (2, 3), (3, 4)} and len(patterns[True]) > 1


def test_a_frozen_image_encoder_does_not_change(tmp_path):
    torch.manual_seed(0)
    model = build_model(TINY)
    encoder = {k: v.clone() for k, v in model.image_encoder.state_dict().items()}
    heads = model.sam_mask_decoder.conv_s0.weight.clone()
    train(model, [drifting_discs()], tmp_path, _options(freeze_image_encoder=True), progress=False)
    assert all(torch.equal(v, model.image_encoder.state_dict()[k]) for k, v in encoder.items())
    assert not torch.equal(heads, model.sam_mask_decoder.conv_s0.weight)


def test_training_only_the_memory_keeps_the_prompted_frame_path_as_it_was(tmp_path):
    torch.manual_seed(0)
    model = build_model(TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, [drifting_discs()], tmp_path, _options(train_only_memory=True), progress=False)
    after = model.state_dict()
    changed = {k.split(".")[0] for k, v in before.items() if not torch.equal(v, after[k])}
    assert changed and not changed & set(PROMPTED_FRAME_PATH)
    assert {"memory_attention", "memory_encoder"} <= changed


def test_training_only_named_parts_leaves_every_other_parameter_as_it_was(tmp_path):
    torch.manual_seed(0)
    model = build_model(TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    chosen = ("sam_mask_decoder.output_upscaling", "image_encoder.neck.convs.3")
    train(model, [drifting_discs()], tmp_path, _options(train_only=chosen), progress=False)
    after = model.state_dict()
    changed = {k for k, v in before.items() if not torch.equal(v, after[k])}
    assert changed, "the chosen parts did not train"
    assert all(k.startswith(chosen) for k in changed), changed
    # both parts learnt: the high-resolution features reach the upscaling
    assert any(k.startswith(chosen[1]) for k in changed)


def test_training_only_a_part_the_model_lacks_names_it(tmp_path):
    model = build_model(TINY)
    options = _options(train_only=("sam_mask_decoder.upscaling",))
    with pytest.raises(SAM2Error, match=r"sam_mask_decoder\.upscaling.*match no parameter"):
        train(model, [drifting_discs()], tmp_path, options, progress=False)


def test_the_output_loads_with_build_model_and_weights_only(tmp_path):
    torch.manual_seed(0)
    model = build_model(TINY)
    result = train(model, [drifting_discs()], tmp_path, _options(), progress=False)
    assert result.model_path == tmp_path / "model.pt" and result.steps == 4
    assert [r["step"] for r in result.history] == [1, 2, 3, 4]
    ckpt = torch.load(result.model_path, weights_only=True)
    assert set(ckpt) == {"model", "config"}
    assert read_config(result.model_path) == TINY
    assert json.loads(result.model_path.with_suffix(".json").read_text())["d_model"] == 32
    loaded = build_model(read_config(result.model_path), checkpoint=result.model_path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert not load_trained(result.model_path).training


def test_config_round_trips_through_plain_data():
    data = config_to_dict(TINY)
    assert json.loads(json.dumps(data)) == data
    assert config_from_dict(data) == TINY
    with pytest.raises(SAM2Error, match="unknown model configuration fields"):
        config_from_dict({**data, "wings": 2})


def test_a_resumed_run_continues_from_the_saved_step_and_matches_an_uninterrupted_run(tmp_path):
    stacks = [drifting_discs()]
    torch.manual_seed(0)
    whole = build_model(TINY)
    start = {k: v.clone() for k, v in whole.state_dict().items()}
    train(whole, stacks, tmp_path / "whole", _options(), progress=False)

    interrupted = build_model(TINY)
    interrupted.load_state_dict(start)
    train(interrupted, stacks, tmp_path / "split", _options(steps=2), progress=False)
    # a fresh process: new model object with other weights, same folder
    resumed = build_model(TINY)
    seen = []
    result = train(
        resumed,
        stacks,
        tmp_path / "split",
        _options(),
        progress=False,
        on_step=lambda step, record: seen.append(step),
    )
    assert seen == [3, 4]
    assert [r["step"] for r in result.history] == [1, 2, 3, 4]
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=1e-5, atol=1e-6)


def test_resuming_with_another_model_is_refused(tmp_path):
    train(build_model(TINY), [drifting_discs()], tmp_path, _options(steps=2), progress=False)
    other = TINY.at_image_size(96)
    with pytest.raises(SAM2Error, match="another model configuration"):
        train(build_model(other), [drifting_discs()], tmp_path, _options(), progress=False)


def test_learning_rate_warms_up_then_decays():
    options = TrainOptions(steps=100, lr=1.0, warmup_steps=10, final_lr_fraction=0.1)
    rates = [learning_rate(options, s) for s in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:], strict=False))
    assert rates[-1] == pytest.approx(0.1, abs=0.01)


def test_fine_tune_takes_frame_label_pairs_and_validates(tmp_path, capsys):
    stack = drifting_discs()
    torch.manual_seed(0)
    result = fine_tune(
        [(stack.frames, stack.labels)],
        tmp_path,
        model=build_model(TINY),
        steps=2,
        validation=[(stack.frames[:6], stack.labels[:6])],
        validate_every=2,
    )
    assert "val J&F" in result.history[-1] and 0 <= result.history[-1]["val J&F"] <= 1
    assert "validation at step 2" in capsys.readouterr().err


def test_init_from_scratch_ties_attention_keys_to_queries_and_starts_present():
    torch.manual_seed(0)
    model = build_model(TINY)
    query = model.sam_mask_decoder.transformer.final_attn_token_to_image.q_proj.weight.clone()
    init_from_scratch(model)
    attention = model.sam_mask_decoder.transformer.final_attn_token_to_image
    torch.testing.assert_close(attention.q_proj.weight, 3.0 * query)
    assert torch.equal(attention.k_proj.weight, attention.q_proj.weight)
    assert float(model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias) == 2.0
    memory = model.memory_attention.layers[0].cross_attn_image
    assert (memory.q_proj.bias == 3.0).all() and (memory.k_proj.bias == 3.0).all()


def test_stop_at_ends_a_run_partway_through_its_schedule_and_a_later_run_finishes_it(tmp_path):
    stacks = [drifting_discs()]
    options = _options(warmup_steps=1, final_lr_fraction=0.01)
    torch.manual_seed(0)
    whole = build_model(TINY)
    start = {k: v.clone() for k, v in whole.state_dict().items()}
    train(whole, stacks, tmp_path / "whole", options, progress=False)

    part = build_model(TINY)
    part.load_state_dict(start)
    stopped = replace(options, stop_at=2)
    result = train(part, stacks, tmp_path / "split", stopped, progress=False)
    assert result.steps == 2 and [r["step"] for r in result.history] == [1, 2]
    # the learning rates were those of the whole schedule, not of a 2-step one
    assert [r["lr"] for r in result.history] == [learning_rate(options, s) for s in (0, 1)]
    assert load_trained(result.model_path).state_dict().keys() == start.keys()
    resumed = build_model(TINY)
    train(resumed, stacks, tmp_path / "split", options, progress=False)
    for key, value in whole.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=1e-5, atol=1e-6)
