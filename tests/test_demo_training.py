"""scripts/train_demo.py's phase-4 ending: the shipped weights are a blend of the weights a
phase started from and those it trained to."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from train_demo import blend  # noqa: E402

from napari_sam2.model.build import build_from_config  # noqa: E402
from napari_sam2.model.demo import DEMO_CONFIG  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(seed: int):
    torch.manual_seed(seed)
    return build_from_config(DEMO_CONFIG).eval()


@pytest.mark.parametrize("weight", [0.0, 0.5, 1.0])
def test_blend_moves_the_start_weight_of_the_way_to_the_tuned_weights(weight):
    start, tuned = _model(0), _model(1)
    before = {k: v.clone() for k, v in start.state_dict().items()}
    after = tuned.state_dict()
    blended = blend(start, tuned, weight).state_dict()
    floats = [k for k, v in before.items() if v.is_floating_point() and v.numel() > 1]
    assert floats and any(not torch.equal(before[k], after[k]) for k in floats)
    for k in floats:
        expected = (1 - weight) * before[k] + weight * after[k]
        torch.testing.assert_close(blended[k], expected, rtol=0, atol=0)
