"""Train the shipped demo model from scratch on synthetic microscopy, then score it.

    python scripts/train_demo.py --out runs/demo            # train (resumes if interrupted)
    python scripts/train_demo.py --out runs/demo --install  # ... and ship the weights
    python scripts/train_demo.py --out runs/demo --eval-only   # scores runs/demo/model.pt
    python scripts/train_demo.py --out runs/demo --from-shipped-v2   # phase 4 only, from v2
    python scripts/train_demo.py --out runs/demo --long-steps 400   # + phase 5 (not shipped)
    python scripts/train_demo.py --out runs/demo --contrast-steps 800   # + phase 6 (not shipped)
    python scripts/train_demo.py --out runs/demo --plain-steps 600      # + phase 7 (not shipped)
    python scripts/train_demo.py --out runs/demo --rollout-steps 400    # + phase 8
    python scripts/train_demo.py --out runs/demo --from-shipped-v4 --horizon-steps 300  # phase 9
    python scripts/train_demo.py --out runs/demo --reach-steps 300   # + phase 10
    python scripts/train_demo.py --out runs/m --from-shipped-v4 --memory-steps 300  # phase 11
    python scripts/train_demo.py --out runs/m --stretch-steps 300   # + phase 12
    python scripts/train_demo.py --out runs/m --watch-steps 300     # phase 13, from phase 11
    python scripts/train_demo.py --out runs/m --rewatch-steps 300   # + phase 14
    python scripts/train_demo.py --out runs/e --from-shipped-v5 --edges-steps 1500  # phase 15
    python scripts/train_demo.py --out runs/e --recall-steps 300 --threads 2   # + phase 16
    python scripts/train_demo.py --out runs/f --from-shipped-v6 --motion-steps 1000  # phase 17
    (phases 9, 10, 12, 13, 14, 16 and 17 were tried and not shipped either: docs/demo_model.md)

Everything is seeded: the training stacks (seeds 0..), the validation stacks (10000..), the
evaluation stacks (20000..), and every clip and prompt of the run. One CPU thread is the
default because on a shared CPU several threads mostly wait for each other.
"""

import argparse
import functools
import hashlib
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from napari_sam2.model import build_model
from napari_sam2.model.demo import DEMO_CONFIG, with_demo_memory_selection
from napari_sam2.synthetic import timelapse, zstack
from napari_sam2.training import (
    LabelledStack,
    LossWeights,
    Recipe,
    TrainOptions,
    evaluate_stack,
    evaluate_zstack,
    init_from_scratch,
    init_memory_attention,
    save_model,
    summarize,
    train,
)
from napari_sam2.training import load_trained as load_checkpoint

# From scratch a focal term 20 times the dice term first drives every mask to background;
# a lighter focal term learns the objects several times faster (measured here).
WEIGHTS_FROM_SCRATCH = LossWeights(focal=2.0, dice=1.0)
WIDEN_WEIGHTS = LossWeights(focal=2.0, dice=1.0, absent_focal=1.0)

WEIGHTS = Path(__file__).resolve().parents[1] / "src/napari_sam2/model/weights_demo/demo.pt"
# phases 1-2 end here (float16, as first shipped); a run folder holding it resumes at phase 3
PHASE2_FILE = "phase2_fp16.pt"
# the shipped weights are phase 3 stopped here (its schedule is --widen-steps long)
SHIPPED_WIDEN_STEPS = 1000
# phase 3 ends here (float16, as shipped as v2); a run folder holding it resumes at phase 4
PHASE3_FILE = "phase3_fp16.pt"
# phase 4 ends here (float16); model.pt is then the blend of phases 3 and 4 (see blend);
# a run folder holding it resumes at phase 5
PHASE4_FILE = "phase4_fp16.pt"
# the blend of phases 3 and 4 rounded to float16 (the shipped v3 demo.pt); phase 5 starts here
BLEND4_FILE = "blend4_fp16.pt"
# phase 5 ends here (float16); model.pt is then these weights
PHASE5_FILE = "phase5_fp16.pt"
# phase 6 ends here (float16); model.pt is then these weights
PHASE6_FILE = "phase6_fp16.pt"
# phase 7 ends here (float16); model.pt is then these weights
PHASE7_FILE = "phase7_fp16.pt"
# phase 8 ends here (float16); model.pt is then these weights
PHASE8_FILE = "phase8_fp16.pt"
# phase 9 ends here (float16); model.pt is then these weights
PHASE9_FILE = "phase9_fp16.pt"
# phase 10 ends here (float16); model.pt is then these weights
PHASE10_FILE = "phase10_fp16.pt"
# phase 11 ends here (float16); model.pt is then these weights
PHASE11_FILE = "phase11_fp16.pt"
# phase 12 ends here (float16); model.pt is then these weights
PHASE12_FILE = "phase12_fp16.pt"
# phase 13 ends here (float16); model.pt is then these weights
PHASE13_FILE = "phase13_fp16.pt"
# phase 14 ends here (float16); model.pt is then these weights
PHASE14_FILE = "phase14_fp16.pt"
# phase 15 ends here (float16); model.pt is then these weights
PHASE15_FILE = "phase15_fp16.pt"
# phase 16 ends here (float16); model.pt is then these weights
PHASE16_FILE = "phase16_fp16.pt"
PHASE17_FILE = "phase17_fp16.pt"
# SHA-256 of the v5 demo.pt (phase 11 rounded to float16, with the demo's memory selection in
# its configuration): --from-shipped-v5 starts phase 15 from it only while it is still v5
V5_SHA256 = "e7e04b1bfce4c9a5312776a65cae9b9c70cbd39f96d668220e6148bb0119d957"
# SHA-256 of the v6 demo.pt (phase 15 rounded to float16): --from-shipped-v6 starts phase 16
# or 17 from it only while it is still v6
V6_SHA256 = "710fdbb2f37e44b3716edf3a397b551994747bbc5871a79315cb3756fa2f5d95"
# SHA-256 of the v4 demo.pt (phase 8 rounded to float16): --from-shipped-v4 starts phase 9 or 11
# from the shipped weights only while they are still v4
V4_SHA256 = "d1cbbbb3046df033387e4ec7ee4986e46c4de3cb4d59cb5282542e732aaddc08"
# SHA-256 of the v2 demo.pt (phase 3 rounded to float16): --from-shipped-v2 starts phase 4
# from the shipped weights only while they are still v2, so a rerun never starts from v3
V2_SHA256 = "892412195aabbbecd8141624774b3c6ef5ef11c5ad6192b5613ab21a592fdfb9"


def load_trained(path: Path):
    """A run file's model, tracking as the shipped demo model does (files written before
    2026-12-03 store SAM 2's memory selection; training does not use it)."""
    model = load_checkpoint(path)
    model.config = with_demo_memory_selection(model.config)
    return model


def random_timelapse(seed: int, num_frames: int) -> LabelledStack:
    """A time-lapse with imaging and cell parameters drawn from the seed."""
    return _drawn_timelapse(seed, 1, num_frames, radius=(9, 18), density=(0.1, 0.25))


def _drawn_timelapse(
    seed: int,
    stream: int,
    num_frames: int,
    radius: tuple[float, float],
    density: tuple[float, float],
    bleaching: tuple[float, float] = (0.0, 0.03),
    psf: tuple[float, float] = (0.8, 2.0),
    noise: tuple[float, float] = (2, 8),
    more=None,
) -> LabelledStack:
    """A fluorescence time-lapse whose size, cells and imaging are drawn from the seed (in
    this order, so that each kind's stacks stay what they were); `more(rng)` draws further
    `timelapse` options after them."""
    rng = np.random.default_rng([seed, stream])
    height, width = (int(v) for v in rng.choice([192, 256, 320], 2))
    cell_radius = rng.uniform(*radius)
    cells = int(np.clip(height * width / (np.pi * cell_radius**2) * rng.uniform(*density), 2, 16))
    drawn = dict(
        cell_radius=cell_radius,
        num_divisions=int(rng.integers(0, 4)),
        brightness=rng.uniform(80, 600),
        background=rng.uniform(10, 60),
        bleaching=rng.uniform(*bleaching),
        psf_sigma=rng.uniform(*psf),
        read_noise=rng.uniform(*noise),
    )
    if more is not None:
        drawn.update(more(rng))
    stack = timelapse(num_frames, height, width, cells, seed=seed, **drawn)
    return LabelledStack(stack.frames, stack.labels, stack.lineage)


def random_zstack(seed: int, depth: int) -> LabelledStack:
    """A nuclei z-stack with imaging and nucleus parameters drawn from the seed."""
    rng = np.random.default_rng([seed, 2])
    height, width = (int(v) for v in rng.choice([192, 256, 320], 2))
    radius = rng.uniform(9, 18)
    nuclei = int(np.clip(height * width / (np.pi * radius**2) * rng.uniform(0.1, 0.3), 2, 20))
    stack = zstack(
        depth,
        height,
        width,
        nuclei,
        seed=seed,
        nucleus_radius=radius,
        z_radius=rng.uniform(3, 7),
        brightness=rng.uniform(150, 800),
        background=rng.uniform(10, 60),
        attenuation=rng.uniform(0.0, 0.6),
        read_noise=rng.uniform(2, 8),
    )
    return LabelledStack(stack.frames, stack.labels, stack.lineage)


def widened_timelapse(seed: int, num_frames: int, contrast: str | None = None) -> LabelledStack:
    """A time-lapse from the widened range: cell radius 8-50 px, elongated and irregular cells,
    flat or textured, fluorescence, absorption or phase contrast, stage drift, uneven
    illumination, out-of-focus frames, bleaching and divisions, all drawn from the seed.
    `contrast` overrides the drawn contrast (the rest of the stack is drawn as without it)."""
    rng = np.random.default_rng([seed, 3])
    height, width = (int(v) for v in rng.choice([192, 256, 320], 2))
    radius = float(np.exp(rng.uniform(np.log(8), np.log(50))))
    cells = int(np.clip(height * width / (np.pi * radius**2) * rng.uniform(0.1, 0.3), 1, 20))
    drawn = str(rng.choice(["fluorescence", "absorption", "phase"], p=[0.5, 0.25, 0.25]))
    contrast = contrast or drawn
    stack = timelapse(
        num_frames,
        height,
        width,
        cells,
        seed=seed,
        cell_radius=radius,
        num_divisions=int(rng.integers(0, 5)),
        brightness=rng.uniform(80, 600),
        background=rng.uniform(10, 200),
        bleaching=rng.uniform(0.0, 0.04),
        psf_sigma=rng.uniform(0.8, 2.5),
        read_noise=rng.uniform(2, 10),
        contrast=contrast,
        aspect=(1.05, rng.uniform(1.4, 3.0)),
        irregularity=rng.uniform(0.5, 3.0),
        texture=rng.uniform(0.2, 1.5),
        leaving=bool(rng.random() < 0.5),
        drift=tuple(rng.uniform(-1.0, 1.0, 2) * (rng.random() < 0.4)),
        uneven=rng.uniform(0.0, 0.4),
        defocus=rng.uniform(0.0, 0.08),
    )
    return LabelledStack(stack.frames, stack.labels, stack.lineage)


def widened_zstack(seed: int, depth: int) -> LabelledStack:
    """A nuclei z-stack from the widened range: radius 8-40 px, 3-8 slices deep, axial blur
    1-3 slices, so the model learns where a nucleus ends under various point spreads."""
    return _nuclei_zstack(
        np.random.default_rng([seed, 4]), seed, depth, radius=(8, 40), z_radius=(3, 8),
        min_nuclei=1, max_background=100, max_attenuation=0.6,
    )  # fmt: skip


def _nuclei_zstack(
    rng: np.random.Generator,
    seed: int,
    depth: int,
    *,
    radius: tuple[float, float],
    z_radius: tuple[float, float],
    min_nuclei: int,
    max_background: float,
    max_attenuation: float,
) -> LabelledStack:
    """A nuclei z-stack whose imaging and sizes are drawn from `rng` within the given ranges
    (always in the same order, so each phase's stacks stay what they were)."""
    height, width = (int(v) for v in rng.choice([192, 256, 320], 2))
    r = float(np.exp(rng.uniform(np.log(radius[0]), np.log(radius[1]))))
    nuclei = int(np.clip(height * width / (np.pi * r**2) * rng.uniform(0.1, 0.3), min_nuclei, 24))
    stack = zstack(
        depth,
        height,
        width,
        nuclei,
        seed=seed,
        nucleus_radius=r,
        z_radius=rng.uniform(*z_radius),
        brightness=rng.uniform(150, 800),
        background=rng.uniform(10, max_background),
        attenuation=rng.uniform(0.0, max_attenuation),
        psf_sigma=(rng.uniform(1.0, 3.0), rng.uniform(0.8, 1.5), rng.uniform(0.8, 1.5)),
        read_noise=rng.uniform(2, 8),
    )
    return LabelledStack(stack.frames, stack.labels, stack.lineage)


def widened_stacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Phase 3's extra data: as many z-stacks as time-lapses, since stopping where a nucleus
    ends is what the first phases taught least."""
    return [
        widened_zstack(seed, 28) if seed % 2 else widened_timelapse(seed, 32)
        for seed in range(first_seed, first_seed + count)
    ]


def focus_zstack(seed: int, depth: int) -> LabelledStack:
    """A nuclei z-stack for phase 4: radius 8-30 px, half-depth 2.5-9 slices, axial blur
    1-3 slices, so nuclei of many sizes rise, shrink and end within one clip."""
    return _nuclei_zstack(
        np.random.default_rng([seed, 5]), seed, depth, radius=(8, 30), z_radius=(2.5, 9),
        min_nuclei=2, max_background=80, max_attenuation=0.7,
    )  # fmt: skip


def long_timelapse(seed: int, num_frames: int) -> LabelledStack:
    """A longer fluorescence time-lapse for phase 4: cells that mostly stay in view, little
    bleaching, slow stage drift in some, divisions; clips of it start anywhere, so the model
    sees cells far from where they began."""

    def more(rng) -> dict:
        return dict(
            leaving=bool(rng.random() < 0.5),
            drift=tuple(rng.uniform(-0.3, 0.3, 2) * (rng.random() < 0.5)),
        )

    return _drawn_timelapse(
        seed, 6, num_frames, (8, 20), (0.1, 0.25), bleaching=(0.0, 0.01), more=more
    )


def focus_stacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Phase 4's extra data: two z-stacks for every long time-lapse, aimed at the goals v2
    missed (z-stack volume J, long runs)."""
    return [
        long_timelapse(seed, 96) if seed % 3 == 2 else focus_zstack(seed, 32)
        for seed in range(first_seed, first_seed + count)
    ]


def long_stacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Phase 5's extra data: long time-lapses (64 frames) of cells that stay in view, so
    that 16-frame clips see a cell far from its prompt and from where it began."""
    return [long_timelapse(seed, 64) for seed in range(first_seed, first_seed + count)]


def longer_stacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Phase 10's extra data: phase 5's long time-lapses at 128 frames."""
    return [long_timelapse(seed, 128) for seed in range(first_seed, first_seed + count)]


def longest_stacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Phase 12's extra data: phase 5's long time-lapses at 192 frames."""
    return [long_timelapse(seed, 192) for seed in range(first_seed, first_seed + count)]


def contrast_stacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Phase 6's extra data: widened time-lapses in transmitted light only, absorption and
    phase contrast in turn, where v3 lost to the classical baseline (J 0.22-0.59 against
    0.76-0.85 on the widened evaluation stacks)."""
    return [
        widened_timelapse(seed, 32, contrast="absorption" if seed % 2 else "phase")
        for seed in range(first_seed, first_seed + count)
    ]


def plain_timelapse(seed: int, num_frames: int) -> LabelledStack:
    """A fluorescence time-lapse of plain cells: evenly bright or with the nucleus-like
    centre, little texture, smooth outlines, wandering up to 2.5 times as fast as by default,
    sizes 6-20 px; cells that v3 let shrink and vanish within 20 frames where a threshold
    followed them."""

    def more(rng) -> dict:
        return dict(
            aspect=(1.0, rng.uniform(1.1, 1.7)),
            irregularity=rng.uniform(0.0, 0.6),
            texture=rng.uniform(0.0, 0.4),
            leaving=bool(rng.random() < 0.3),
            speed=rng.uniform(1.0, 2.5),
            flat=bool(rng.random() < 0.6),
        )

    return _drawn_timelapse(
        seed, 5, num_frames, (6, 20), (0.05, 0.2), psf=(0.7, 2.0), noise=(2, 10), more=more
    )


def mixed_timelapse(seed: int, num_frames: int) -> LabelledStack:
    """A fluorescence time-lapse whose cells differ in size within the stack (each first
    cell's radius drawn from about half to one and a half times the stack's), plain or
    textured; every earlier kind draws a stack's cells within 15 % of one size. Scored by
    `evaluate_demo.py --sections mixed`, trained on in phase 17."""

    def more(rng) -> dict:
        return dict(
            sizes=(rng.uniform(0.45, 0.8), rng.uniform(1.2, 1.6)),
            aspect=(1.0, rng.uniform(1.1, 1.8)),
            irregularity=rng.uniform(0.0, 1.0),
            texture=rng.uniform(0.0, 1.0),
            leaving=bool(rng.random() < 0.3),
            speed=rng.uniform(1.0, 2.0),
            flat=bool(rng.random() < 0.5),
        )

    return _drawn_timelapse(
        seed, 7, num_frames, (8, 18), (0.1, 0.25), psf=(0.7, 2.0), noise=(2, 10), more=more
    )


def plain_stacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Phase 7's extra data: plain time-lapses (`plain_timelapse`), 32 frames."""
    return [plain_timelapse(seed, 32) for seed in range(first_seed, first_seed + count)]


def fast_timelapse(seed: int, num_frames: int) -> LabelledStack:
    """A fluorescence time-lapse of fast cells: a random walk 2-4 times the default's step
    and, in half of them, a stage drift of up to 2 px per frame, cells of mixed sizes. v6
    keeps of a cell moving 3-4 px per frame (a tenth of its width) only what overlaps its
    last mask, so the mask is eaten away from the leading edge and gone within ten frames."""

    def more(rng) -> dict:
        return dict(
            sizes=(rng.uniform(0.6, 0.9), rng.uniform(1.1, 1.5)),
            aspect=(1.0, rng.uniform(1.1, 2.0)),
            irregularity=rng.uniform(0.0, 1.0),
            texture=rng.uniform(0.0, 1.0),
            leaving=bool(rng.random() < 0.3),
            speed=rng.uniform(2.0, 4.0),
            drift=tuple(rng.uniform(-2.0, 2.0, 2) * (rng.random() < 0.5)),
            flat=bool(rng.random() < 0.4),
        )

    return _drawn_timelapse(
        seed, 8, num_frames, (8, 20), (0.08, 0.2), psf=(0.7, 2.0), noise=(2, 10), more=more
    )


def motion_stacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Phase 17's extra data: `count` time-lapses of fast cells (`fast_timelapse`, seeds
    from first_seed + 100,000) and a quarter as many of mixed sizes (`mixed_timelapse`, from
    first_seed), 24 and 32 frames."""
    fast = [
        fast_timelapse(s, 24) for s in range(first_seed + 100_000, first_seed + 100_000 + count)
    ]
    return fast + [mixed_timelapse(s, 32) for s in range(first_seed, first_seed + count // 4)]


def watch_stacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Phase 13's extra data: phase 11's 128-frame time-lapses (seeds 700,000 on, 24 of
    them) and `count` plain time-lapses (`plain_timelapse`) of 64 frames from `first_seed`."""
    plain = [plain_timelapse(seed, 64) for seed in range(first_seed, first_seed + count)]
    return longer_stacks(700_000, 24) + plain


def training_stacks(count: int) -> list[LabelledStack]:
    """Two time-lapses for every z-stack."""
    return [
        random_zstack(seed, 28) if seed % 3 == 2 else random_timelapse(seed, 32)
        for seed in range(count)
    ]


def evaluation_stacks(first_seed: int, count: int, num_frames: int) -> list[LabelledStack]:
    """Held-out default-parameter time-lapses (the generator's defaults, as in the docs)."""
    out = []
    for seed in range(first_seed, first_seed + count):
        s = timelapse(num_frames, 256, 256, 8, seed=seed)
        out.append(LabelledStack(s.frames, s.labels, s.lineage))
    return out


def image_phase(steps: int, seed: int, lr: float) -> TrainOptions:
    """Phase 1: one-frame clips (images, as SAM 2 mixes into its video training) with clicks
    and boxes on up to 6 objects each: different clicks on one image asking for different
    masks is what teaches a random model to use the click; cheap steps."""
    return TrainOptions(
        steps=steps,
        clips_per_step=2,
        clip_length=1,
        max_objects=6,
        lr=lr,
        weight_decay=0.01,
        warmup_steps=50,
        final_lr_fraction=0.2,
        dropout=0.0,
        recipe=Recipe(
            first_prompt_probs=(0.0, 0.75, 0.25),
            correction_clicks=2,
            weights=WEIGHTS_FROM_SCRATCH,
        ),
        seed=seed,
        checkpoint_every=100,
        log_every=100,
    )


def video_phase(steps: int, seed: int, lr: float) -> TrainOptions:
    """Phase 2: the video recipe on 8-frame clips (mask, click or box first, corrections)."""
    return TrainOptions(
        steps=steps,
        lr=lr,
        weight_decay=0.01,
        warmup_steps=50,
        final_lr_fraction=0.05,
        dropout=0.0,
        recipe=Recipe(correction_clicks=2, weights=WEIGHTS_FROM_SCRATCH),
        seed=seed + 1,
        checkpoint_every=50,
        validate_every=300,
        validation_frames=16,
        validation_objects=4,
        log_every=25,
    )


def widen_phase(steps: int, seed: int, lr: float, stop_at: int | None = None) -> TrainOptions:
    """Phase 3: the video recipe again, from the phase-2 weights, on the original and the
    widened stacks; a lower peak rate, since the model already tracks. Masks are also scored
    on frames where the object is absent but the model says present: without it, the first
    slice past a nucleus came out as a blob several times the nucleus (measured at step 550 of
    a first attempt). stop_at ends the run partway through the schedule."""
    return TrainOptions(
        steps=steps,
        stop_at=stop_at,
        lr=lr,
        weight_decay=0.01,
        warmup_steps=50,
        final_lr_fraction=0.05,
        dropout=0.0,
        recipe=Recipe(correction_clicks=2, weights=WIDEN_WEIGHTS),
        seed=seed + 2,
        checkpoint_every=25,
        validate_every=500,
        validation_frames=16,
        validation_objects=4,
        log_every=25,
    )


def focus_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None = None):
    """Phase 4: the phase-3 recipe (absent-frame loss included) from the v2 weights, on all
    earlier stacks plus the phase-4 ones, at a lower peak rate, so what v2 does well is kept
    while z-stacks and long runs improve."""
    return TrainOptions(
        steps=steps,
        stop_at=stop_at,
        lr=lr,
        weight_decay=0.01,
        warmup_steps=25,
        final_lr_fraction=0.1,
        dropout=0.0,
        clip_length=clip_length,
        recipe=Recipe(correction_clicks=2, weights=WIDEN_WEIGHTS),
        seed=seed + 3,
        checkpoint_every=25,
        validate_every=0,
        log_every=25,
    )


def long_phase(
    steps: int,
    seed: int,
    lr: float,
    clip_length: int,
    first_frame_weight: float,
    stop_at: int | None = None,
):
    """Phase 5: the phase-4 recipe from the shipped v3 weights (the phase 3/4 blend) on
    longer clips, where a cell is followed from its prompt through 15 frames of the model's
    own memories: the held-out time-lapses lose whole cells (a few in 40), not pixels at
    their edges. 400 steps lowered the held-out one-click IoU from 0.847 to 0.829; counting
    the clicked frame's loss twice (`first_frame_weight` 2) did not keep it (0.830)."""
    options = focus_phase(steps, seed, lr, clip_length, stop_at)
    recipe = replace(options.recipe, first_frame_weight=first_frame_weight)
    return replace(options, recipe=recipe, seed=seed + 4)


def contrast_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 6: the phase-4 recipe from the shipped v3 weights, on all earlier stacks plus
    transmitted-light time-lapses, at the phase-5 rate, so dark cells on a bright field are
    learnt while what v3 does on fluorescence is kept."""
    options = focus_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, seed=seed + 5)


def plain_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 7: the phase-4 recipe from the shipped v3 weights, on all earlier stacks plus
    plain time-lapses (`plain_timelapse`), so evenly bright, faster cells are followed as
    well as the textured ones of the default stacks."""
    options = focus_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, seed=seed + 6)


def rollout_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 8: the phase-4 recipe from the shipped v3 weights on long clips whose first
    frames after the prompt are tracked without gradients or losses (`Recipe.rollout_frames`,
    all but the last 8), so that the scored frames start from the model's own drifted memory:
    the long runs lose cells that shrink over 50-100 frames, which clips tracked from a fresh
    prompt never show."""
    options = focus_phase(steps, seed, lr, clip_length, stop_at)
    recipe = replace(options.recipe, rollout_frames=clip_length)  # all but 8 scored frames
    return replace(options, recipe=recipe, seed=seed + 7)


def horizon_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 9: phase 8 again from its own (v4) weights on longer clips (56 frames, 47 rolled
    out; the phase-8 data), the clicked frame's loss counted twice: v4 still lost
    cells that shrink over 50-100 frames, and the longer the rollout in phase 8 the more it
    kept (15 frames: long run 0.356; 31: 0.430). The seed is phase 8's."""
    options = rollout_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, recipe=replace(options.recipe, first_frame_weight=2.0))


def reach_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 10: from phase 9, clips that roll out up to 87 frames, how many drawn per clip
    (`Recipe.rollout_drawn`: 0 to 96, at most 87 in a 96-frame clip, then the 8 scored
    frames), so the model scores frames from memories of up to 88 frames of its own
    predictions and still right after the prompt; the clicked frame's loss counted twice,
    on the phase-4 data plus 128-frame time-lapses (`longer_stacks`). The seed is phase 8's.
    """
    options = horizon_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, recipe=replace(options.recipe, rollout_drawn=True))


def memory_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 11: phase 10's clips and data from v4, training only what tracked frames read
    from (`TrainOptions.train_only_memory`): each rollout phase cost the clicked frame about
    0.02 of IoU, and a prompted frame's masks do not depend on the memory, so here they stay
    v4's to the bit while the memory learns to hold a cell through up to 88 frames of its own
    predictions."""
    options = reach_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, train_only_memory=True, seed=seed + 10)


def stretch_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 12: phase 11 again from its own weights (the memory alone) on clips that roll
    out up to 183 frames (192-frame clips), with 192-frame time-lapses added
    (`longest_stacks`): the cells phase 11 still loses in the 600-frame runs go between
    frames 75 and 350, past its 88-frame horizon."""
    options = memory_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, seed=seed + 11)


def watch_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 13: phase 11 again from its own (v5) weights, the memory alone, with plain,
    faster cells added (`watch_stacks`): on the independent generator's evenly bright cells
    v5 lets isolated cells shrink and vanish within 20 frames where a threshold follows them,
    and phase 7, which trained the whole model on such cells, cost the click."""
    options = memory_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, seed=seed + 12)


def rewatch_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 14: phase 13 again from its own weights, on its data: phase 13 kept the plain
    cells a little better (J +0.01-0.02) and whether more steps keep more is the question."""
    options = watch_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, seed=seed + 13)


# what draws a mask's outline: the neck's projections of the stride-4 and stride-8 trunk
# levels (read by nothing else), the decoder's high-resolution projections, its upscaling and
# its per-token hypernetworks. The decoder's transformer, and so the object pointers, object
# scores and IoU predictions, stay as they were, as does every feature the memory reads.
OUTLINE_PARTS = (
    "image_encoder.neck.convs.2",
    "image_encoder.neck.convs.3",
    *(
        f"sam_mask_decoder.{part}"
        for part in ("conv_s0", "conv_s1", "output_upscaling", "output_hypernetworks_mlps")
    ),
)


def edges_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 15: from v5, only what draws the outlines (`OUTLINE_PARTS`), scored at the input's
    resolution (`Recipe.full_resolution_loss`): every earlier phase scored the 4-times-smaller
    masks the decoder outputs, against targets rounded to its 4 x 4-pixel cells, so outlines
    came out blocky (frame-0 IoU 0.85-0.93 on evenly bright ellipses that a threshold gets to
    0.96-0.99, and that the same 4-times-smaller grid can hold to 0.96). Short clips with up to
    six objects, on phase 4's data plus plain cells with sharp outlines (`plain_stacks`)."""
    options = focus_phase(steps, seed, lr, clip_length, stop_at)
    recipe = replace(options.recipe, full_resolution_loss=True)
    return replace(options, recipe=recipe, train_only=OUTLINE_PARTS, max_objects=6, seed=seed + 14)


def recall_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 16: phase 11 again (the memory alone, 96-frame clips with up to 87 frames rolled
    out, its data) from phase 15's weights: phase 11 taught the memory to hold cells drawn
    with v4's blocky outlines, and what a tracked frame remembers is its own mask."""
    options = memory_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, seed=seed + 15)


def motion_phase(steps: int, seed: int, lr: float, clip_length: int, stop_at: int | None):
    """Phase 17: from v6, only what tracked frames read from (`train_only_memory`), on 8-frame
    clips with up to six objects, on phase 4's data plus fast cells and cells of mixed sizes
    (`motion_stacks`): v6 keeps of a cell that moves a tenth of its width per frame only
    what overlaps its last masks, and loses it within ten frames. The outline parts stay
    v6's, so the quarter-resolution loss is enough. Tried, not shipped: more fast cells kept,
    the default stacks and the README example worse (docs/demo_model.md)."""
    options = focus_phase(steps, seed, lr, clip_length, stop_at)
    return replace(options, train_only_memory=True, max_objects=6, seed=seed + 16)


def snapshot_every(model, out: Path, every: int):
    """An on_step callback that keeps the model's float16 weights every `every` steps (a
    partial run is usable, and the best of them can be picked afterwards)."""

    def on_step(step: int, record: dict) -> None:
        if step % every == 0:
            save_model(model, out / f"step_{step:05d}.pt", half=True)

    return on_step


def train_phase(model, stacks: list[LabelledStack], run: Path, options: TrainOptions):
    """A phase after phase 3: no validation, float16 snapshots every 100 steps."""
    return train(model, stacks, run, options, on_step=snapshot_every(model, run / "snapshots", 100))


def blend(start: torch.nn.Module, tuned: torch.nn.Module, weight: float) -> torch.nn.Module:
    """`start` with its weights moved `weight` of the way to `tuned`'s (weight-space
    ensembling of a fine-tune with its starting point): phase 4 alone raised the time-lapse
    scores but lost nuclei through z that v2 kept; half-way keeps most of both (measured)."""
    ours, theirs = start.state_dict(), tuned.state_dict()
    start.load_state_dict(
        {
            k: (1 - weight) * v + weight * theirs[k] if v.is_floating_point() else theirs[k]
            for k, v in ours.items()
        }
    )
    return start


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def copy_shipped(parser, to: Path, version: str, digest: str, phase: str, commit: str) -> None:
    """Start a run folder from the shipped weights, only while they are still `version`."""
    if sha256(WEIGHTS) != digest:
        parser.error(
            f"{WEIGHTS} is no longer {version}; run {phase} instead, or put {version} at {to}: "
            f"git show {commit}:src/napari_sam2/model/weights_demo/demo.pt > {to}"
        )
    shutil.copyfile(WEIGHTS, to)


def evaluation_zstacks(first_seed: int, count: int) -> list[LabelledStack]:
    """Held-out default-parameter nuclei z-stacks."""
    out = []
    for seed in range(first_seed, first_seed + count):
        s = zstack(32, 256, 256, 12, seed=seed)
        out.append(LabelledStack(s.frames, s.labels, s.lineage))
    return out


def evaluate(model_path: Path, out: Path, count: int, num_frames: int, zstacks: int) -> dict:
    model = load_trained(model_path)
    results = []
    for stack in evaluation_stacks(20_000, count, num_frames):
        results.append(evaluate_stack(model, stack, num_frames))
        print(f"  evaluated stack {len(results)}/{count}: {summarize(results[-1:])}", flush=True)
    summary = summarize(results)
    per_object = [
        {"click_iou": c, "J": m.j, "F": m.f, "J&F corrected": k.jf}
        for r in results
        for c, m, k in zip(r.click_iou, r.masklet, r.corrected, strict=True)
    ]
    z_results = []
    for stack in evaluation_zstacks(20_000, zstacks):
        z_results.append(evaluate_zstack(model, stack))
        print(f"  evaluated z-stack {len(z_results)}/{zstacks}: {summarize(z_results[-1:])}")
    z_summary = summarize(z_results) if z_results else {}
    z_objects = [
        {"click_iou": c, "J": m.j, "F": m.f, "volume_iou": v}
        for r in z_results
        for c, m, v in zip(r.click_iou, r.masklet, r.volume_iou, strict=True)
    ]
    report = {
        "summary": summary,
        "stacks": count,
        "frames": num_frames,
        "objects": per_object,
        "zstack_summary": z_summary,
        "zstacks": zstacks,
        "zstack_objects": z_objects,
    }
    (out / "evaluation.json").write_text(json.dumps(report, indent=2) + "\n")
    return {"time-lapses": summary, "z-stacks": z_summary}


def add_phase_options(
    parser,
    name: str,
    number: int,
    stacks: int,
    clip_length: int,
    start: str = "v3",
    lr: float = 1e-4,
) -> None:
    """--NAME-steps, -stacks, -lr, -clip-length and -stop of a phase from `start`'s weights."""
    parser.add_argument(
        f"--{name}-steps", type=int, default=0, help=f"phase {number} steps, from {start} (0: none)"
    )
    parser.add_argument(
        f"--{name}-stacks", type=int, default=stacks, help=f"phase {number} extra stacks"
    )
    parser.add_argument(f"--{name}-lr", type=float, default=lr)
    parser.add_argument(f"--{name}-clip-length", type=int, default=clip_length)
    parser.add_argument(f"--{name}-stop", type=int, default=None, help=f"end phase {number} early")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--image-steps", type=int, default=2000, help="phase 1 steps")
    parser.add_argument("--steps", type=int, default=1200, help="phase 2 (video) steps")
    parser.add_argument("--stacks", type=int, default=36, help="synthetic training stacks")
    parser.add_argument("--widen-steps", type=int, default=1000, help="phase 3 steps")
    parser.add_argument("--widened-stacks", type=int, default=48, help="phase 3 extra stacks")
    parser.add_argument("--widen-lr", type=float, default=5e-4)
    parser.add_argument(
        "--widen-stop",
        type=int,
        default=SHIPPED_WIDEN_STEPS,
        help="end phase 3 after this many of its steps (default: as shipped)",
    )
    parser.add_argument("--focus-steps", type=int, default=0, help="phase 4 steps (0: none)")
    parser.add_argument("--focus-stacks", type=int, default=36, help="phase 4 extra stacks")
    parser.add_argument("--focus-lr", type=float, default=2e-4)
    parser.add_argument("--focus-clip-length", type=int, default=8)
    parser.add_argument("--focus-stop", type=int, default=None, help="end phase 4 early")
    parser.add_argument(
        "--focus-blend", type=float, default=0.5, help="how far to move v2 towards phase 4"
    )
    parser.add_argument(
        "--from-shipped-v2",
        action="store_true",
        help="start phase 4 from the shipped weights (only while they are v2) when the run "
        f"folder has no {PHASE3_FILE}",
    )
    add_phase_options(parser, "long", 5, stacks=24, clip_length=16)
    parser.add_argument(
        "--long-first-frame-weight",
        type=float,
        default=1.0,
        help="phase 5: how many times the clicked first frame's loss counts (2 was tried)",
    )
    add_phase_options(parser, "contrast", 6, stacks=48, clip_length=8)
    add_phase_options(parser, "plain", 7, stacks=48, clip_length=8)
    add_phase_options(parser, "rollout", 8, stacks=24, clip_length=24)
    add_phase_options(parser, "horizon", 9, stacks=24, clip_length=56, start="v4")
    add_phase_options(parser, "reach", 10, stacks=24, clip_length=96, start="phase 9")
    add_phase_options(parser, "memory", 11, stacks=24, clip_length=96, start="v4", lr=2e-4)
    add_phase_options(parser, "stretch", 12, stacks=60, clip_length=192, start="phase 11")
    add_phase_options(parser, "watch", 13, stacks=48, clip_length=96, start="phase 11", lr=2e-4)
    add_phase_options(parser, "rewatch", 14, stacks=48, clip_length=96, start="phase 13", lr=2e-4)
    add_phase_options(parser, "edges", 15, stacks=24, clip_length=4, start="v5", lr=5e-4)
    add_phase_options(parser, "recall", 16, stacks=24, clip_length=96, start="phase 15", lr=2e-4)
    add_phase_options(parser, "motion", 17, stacks=96, clip_length=8, start="phase 15", lr=1e-3)
    parser.add_argument(
        "--from-shipped-v4",
        action="store_true",
        help="start phase 9 or 11 from the shipped weights (only while they are v4) when the run "
        f"folder has no {PHASE8_FILE}",
    )
    parser.add_argument(
        "--from-shipped-v5",
        action="store_true",
        help="start phase 15 from the shipped weights (only while they are v5) when the run "
        f"folder has no {PHASE11_FILE}",
    )
    parser.add_argument(
        "--from-shipped-v6",
        action="store_true",
        help="start phase 16 or 17 from the shipped weights (only while they are v6) when the "
        f"run folder has no {PHASE15_FILE}",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-stacks", type=int, default=5)
    parser.add_argument("--eval-frames", type=int, default=30)
    parser.add_argument("--eval-zstacks", type=int, default=5)
    parser.add_argument("--eval-only", action="store_true")
    parser.add_argument("--install", action="store_true", help="copy fp16 weights into the package")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / "model.pt"

    if not args.eval_only:
        began = time.monotonic()
        stacks = training_stacks(args.stacks)
        validation = evaluation_stacks(10_000, 2, 16)
        print(
            f"{len(stacks)} training stacks ready in {time.monotonic() - began:.0f} s", flush=True
        )
        history = {}
        phase3 = args.out / PHASE3_FILE
        if args.from_shipped_v2 and not phase3.is_file():
            if sha256(WEIGHTS) != V2_SHA256:
                parser.error(f"{WEIGHTS} is no longer v2; run phases 1-3 instead")
            shutil.copyfile(WEIGHTS, phase3)
        phase8, phase11 = args.out / PHASE8_FILE, args.out / PHASE11_FILE
        if args.from_shipped_v4 and not phase8.is_file():
            copy_shipped(parser, phase8, "v4", V4_SHA256, "phase 8", "c39bbbc")
        if args.from_shipped_v5 and not phase11.is_file():
            copy_shipped(parser, phase11, "v5", V5_SHA256, "phase 11", "c750aa8")
        phase15 = args.out / PHASE15_FILE
        if args.from_shipped_v6 and not phase15.is_file():
            copy_shipped(parser, phase15, "v6", V6_SHA256, "phase 15", "b6f8ced")
        # a run folder holding the start of phase 9, 11, 15, 16 or 17 needs no earlier weights:
        # phase 4's data is all the later phases take from before
        if not any(f.is_file() for f in (phase3, phase8, phase11, phase15)):
            phase2 = args.out / PHASE2_FILE
            if not phase2.is_file():
                torch.manual_seed(args.seed)
                model = build_model(DEMO_CONFIG)
                init_from_scratch(model)
                images = train(
                    model,
                    stacks,
                    args.out / "images",
                    image_phase(args.image_steps, args.seed, args.lr),
                )
                print(
                    f"image phase done after {(time.monotonic() - began) / 60:.1f} min", flush=True
                )
                # one-frame clips never use the memory: it is still as initialized (resumed runs
                # load their own state over this)
                model = init_memory_attention(load_trained(images.model_path))
                video = train(
                    model,
                    stacks,
                    args.out / "video",
                    video_phase(args.steps, args.seed, args.lr),
                    validation,
                )
                # phase 3 starts from the float16 rounding, which is the first shipped demo.pt
                save_model(load_trained(video.model_path), phase2, half=True)
                history.update(images=images.history, video=video.history)
            print(f"phase 2 weights: {phase2}", flush=True)
            widened = widened_stacks(100_000, args.widened_stacks)
            print(f"{len(widened)} widened stacks ready", flush=True)
            widen = train(
                load_trained(phase2),
                stacks + widened,
                args.out / "widen",
                widen_phase(args.widen_steps, args.seed, args.widen_lr, args.widen_stop),
                validation,
            )
            last = min(args.widen_steps, args.widen_stop or args.widen_steps)
            if widen.steps == last:
                # phase 4 starts from the float16 rounding, which is the shipped v2 demo.pt
                save_model(load_trained(widen.model_path), phase3, half=True)
            shutil.copyfile(widen.model_path, model_path)
            print(f"trained to {widen.steps} phase-3 steps", flush=True)
            history["widen"] = widen.history
        if phase3.is_file():
            print(f"phase 3 weights: {phase3}", flush=True)
        phase4 = args.out / PHASE4_FILE

        @functools.cache
        def phase4_stacks() -> list[LabelledStack]:
            """Phases 1-3's stacks, the widened ones and phase 4's (built once per run)."""
            focus = focus_stacks(200_000, args.focus_stacks)
            widened = widened_stacks(100_000, args.widened_stacks)
            print(f"{len(focus)} phase-4 and {len(widened)} widened stacks ready", flush=True)
            return stacks + widened + focus

        if args.focus_steps and not phase4.is_file():
            options = focus_phase(
                args.focus_steps, args.seed, args.focus_lr, args.focus_clip_length, args.focus_stop
            )
            result = train_phase(load_trained(phase3), phase4_stacks(), args.out / "focus", options)
            tuned = load_trained(result.model_path)
            finished = result.steps == min(args.focus_steps, args.focus_stop or args.focus_steps)
            if finished:
                # the blend is of the float16 roundings, as shipped
                tuned = load_trained(save_model(tuned, phase4, half=True))
            save_model(blend(load_trained(phase3), tuned, args.focus_blend), model_path)
            if finished:
                save_model(load_trained(model_path), args.out / BLEND4_FILE, half=True)
            print(f"trained to {result.steps} phase-4 steps", flush=True)
            history["focus"] = result.history

        def phase_from(number: int, start_file: str, folder: str, extra, options, out_file: str):
            """A phase from a run folder's float16 weights, on phase 4's data plus `extra()`."""
            start = args.out / start_file
            if not start.is_file():
                parser.error(f"phase {number} starts from {start}: run the phase before it first")
            stacks = extra()
            print(f"{len(stacks)} phase-{number} stacks ready", flush=True)
            result = train_phase(
                load_trained(start), phase4_stacks() + stacks, args.out / folder, options
            )
            save_model(load_trained(result.model_path), args.out / out_file, half=True)
            shutil.copyfile(args.out / out_file, model_path)
            print(f"trained to {result.steps} phase-{number} steps", flush=True)
            history[folder] = result.history

        # phases 5-8 start from v3, the later ones from the weights their row names; each
        # trains on phase 4's data plus its own stacks (seeds from `first`)
        weighted = functools.partial(long_phase, first_frame_weight=args.long_first_frame_weight)
        for number, name, phase, make_stacks, first, start_file, out_file in (
            (5, "long", weighted, long_stacks, 300_000, BLEND4_FILE, PHASE5_FILE),
            (6, "contrast", contrast_phase, contrast_stacks, 400_000, BLEND4_FILE, PHASE6_FILE),
            (7, "plain", plain_phase, plain_stacks, 500_000, BLEND4_FILE, PHASE7_FILE),
            (8, "rollout", rollout_phase, long_stacks, 600_000, BLEND4_FILE, PHASE8_FILE),
            (9, "horizon", horizon_phase, long_stacks, 600_000, PHASE8_FILE, PHASE9_FILE),
            (10, "reach", reach_phase, longer_stacks, 700_000, PHASE9_FILE, PHASE10_FILE),
            (11, "memory", memory_phase, longer_stacks, 700_000, PHASE8_FILE, PHASE11_FILE),
            (12, "stretch", stretch_phase, longest_stacks, 800_000, PHASE11_FILE, PHASE12_FILE),
            (13, "watch", watch_phase, watch_stacks, 900_000, PHASE11_FILE, PHASE13_FILE),
            (14, "rewatch", rewatch_phase, watch_stacks, 900_000, PHASE13_FILE, PHASE14_FILE),
            (15, "edges", edges_phase, plain_stacks, 500_000, PHASE11_FILE, PHASE15_FILE),
            (16, "recall", recall_phase, longer_stacks, 700_000, PHASE15_FILE, PHASE16_FILE),
            (17, "motion", motion_phase, motion_stacks, 1_000_000, PHASE15_FILE, PHASE17_FILE),
        ):
            steps = getattr(args, f"{name}_steps")
            if not steps:
                continue
            given = {key: getattr(args, f"{name}_{key}") for key in ("lr", "clip_length", "stop")}
            options = phase(
                steps, args.seed, given["lr"], given["clip_length"], stop_at=given["stop"]
            )
            extra = functools.partial(make_stacks, first, getattr(args, f"{name}_stacks"))
            phase_from(number, start_file, name, extra, options, out_file)
        minutes = (time.monotonic() - began) / 60
        print(f"this run took {minutes:.1f} min", flush=True)
        (args.out / "history.json").write_text(json.dumps(history) + "\n")

    summary = evaluate(model_path, args.out, args.eval_stacks, args.eval_frames, args.eval_zstacks)
    print("evaluation:", json.dumps(summary), flush=True)
    if args.install:
        save_model(load_trained(model_path), args.out / "demo_fp16.pt", half=True)
        shutil.copyfile(args.out / "demo_fp16.pt", WEIGHTS)
        print(f"installed {WEIGHTS} ({WEIGHTS.stat().st_size / 1e6:.1f} MB)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
