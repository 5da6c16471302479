"""Parity of memory attention with the reference `sam2` (random weights, same inputs).

The reference takes sequence-first tokens, ours batch-first; the tests transpose between them.
"""

import pytest
import torch

from napari_sam2.model import CONFIGS
from napari_sam2.model.build import memory_attention_of
from napari_sam2.model.memory_attention import MemoryAttention

from reference import build_reference, perturb_

NAMES = ["sam2.1_hiera_tiny", "sam2_hiera_tiny"]
D_MODEL, MEM_DIM = 256, 64


def _ours(image_size: int) -> MemoryAttention:
    """Our memory attention, built as the official models build it."""
    return memory_attention_of(CONFIGS["sam2.1_hiera_tiny"].at_image_size(image_size))


def _pair(name: str, image_size: int | None):
    reference = build_reference(name, image_size=image_size).memory_attention.eval()
    perturb_(reference, seed=1)
    ours = _ours(image_size or 1024).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours


def _inputs(batch: int, side: int, num_frames: int, num_ptr_tokens: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hw = side * side
    num_memory = num_frames * hw + num_ptr_tokens
    curr = torch.randn(batch, hw, D_MODEL, generator=g)
    curr_pos = torch.randn(batch, hw, D_MODEL, generator=g)
    memory = torch.randn(batch, num_memory, MEM_DIM, generator=g)
    memory_pos = torch.randn(batch, num_memory, MEM_DIM, generator=g)
    return curr, curr_pos, memory, memory_pos


def _max_difference(reference, ours, curr, curr_pos, memory, memory_pos, num_ptr_tokens):
    with torch.no_grad():
        expected = reference(
            curr=[curr.transpose(0, 1)],
            curr_pos=[curr_pos.transpose(0, 1)],
            memory=memory.transpose(0, 1),
            memory_pos=memory_pos.transpose(0, 1),
            num_obj_ptr_tokens=num_ptr_tokens,
        ).transpose(0, 1)
        out = ours(curr, curr_pos, memory, memory_pos, num_obj_ptr_tokens=num_ptr_tokens)
    assert out.shape == curr.shape
    return (out - expected).abs().max().item()


@pytest.fixture(scope="module", params=NAMES)
def pair_256(request):
    return _pair(request.param, 256)


def test_state_dict_matches_reference(pair_256):
    reference, _ = pair_256
    ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    our_shapes = {k: tuple(v.shape) for k, v in _ours(256).state_dict().items()}
    assert our_shapes == ref_shapes


@pytest.mark.parametrize("num_ptr_tokens", [16, 0])
def test_forward_matches_reference(pair_256, num_ptr_tokens):
    reference, ours = pair_256
    inputs = _inputs(batch=2, side=16, num_frames=3, num_ptr_tokens=num_ptr_tokens)
    assert _max_difference(reference, ours, *inputs, num_ptr_tokens) < 1e-4


def test_objects_of_one_frame_share_its_tokens(pair_256):
    """The frame's tokens given once for three objects' memories: the reference's result for
    the tokens repeated per object, and a bad batch is refused."""
    reference, ours = pair_256
    curr, curr_pos, memory, memory_pos = _inputs(batch=3, side=16, num_frames=2, num_ptr_tokens=16)
    curr, curr_pos = curr[:1], curr_pos[:1]
    with torch.no_grad():
        expected = reference(
            curr=[curr.expand(3, -1, -1).transpose(0, 1)],
            curr_pos=[curr_pos.expand(3, -1, -1).transpose(0, 1)],
            memory=memory.transpose(0, 1),
            memory_pos=memory_pos.transpose(0, 1),
            num_obj_ptr_tokens=16,
        ).transpose(0, 1)
        shared = ours(curr, curr_pos, memory, memory_pos, num_obj_ptr_tokens=16)
    assert shared.shape == (3, *curr.shape[1:])
    assert (shared - expected).abs().max().item() < 1e-4
    # each object's own memory still decides its result
    assert (shared[0] - shared[1]).abs().max().item() > 1e-2
    with pytest.raises(ValueError, match="memory batch 3"):
        ours(torch.cat([curr, curr]), curr_pos, memory, memory_pos, num_obj_ptr_tokens=16)


def test_object_pointers_are_not_rotated(pair_256):
    """Declaring the pointer tokens must change the result; treating them as grid tokens
    (rotated) would be a different function."""
    _, ours = pair_256
    curr, curr_pos, memory, memory_pos = _inputs(batch=1, side=16, num_frames=1, num_ptr_tokens=256)
    with torch.no_grad():
        as_pointers = ours(curr, curr_pos, memory, memory_pos, num_obj_ptr_tokens=256)
        as_frame = ours(curr, curr_pos, memory, memory_pos, num_obj_ptr_tokens=0)
    assert (as_pointers - as_frame).abs().max() > 1e-3


def test_dropout_only_in_training(pair_256):
    _, ours = pair_256
    inputs = _inputs(batch=1, side=16, num_frames=1, num_ptr_tokens=0)
    with torch.no_grad():
        first, second = ours(*inputs), ours(*inputs)
        assert torch.equal(first, second)
        ours.train()
        try:
            trained = ours(*inputs)
        finally:
            ours.eval()
    assert not torch.allclose(trained, first)


@pytest.mark.slow
def test_forward_matches_reference_at_1024():
    reference, ours = _pair("sam2.1_hiera_tiny", None)
    inputs = _inputs(batch=1, side=64, num_frames=1, num_ptr_tokens=16)
    assert _max_difference(reference, ours, *inputs, 16) < 1e-4
