"""What the image encoder does only at inference, exactly as a plain run computes it: the
position embedding kept between images, and global attention in chunks of queries on a CPU
(each chunk a module call, where a background encode can stop or wait for a click)."""

import pytest
import torch

from napari_sam2.model import hiera
from napari_sam2.model.hiera import Hiera, MultiScaleAttention, query_chunks


def small_trunk() -> Hiera:
    torch.manual_seed(0)
    trunk = Hiera(
        embed_dim=8, stages=(1, 1, 1, 1), window_spec=(4, 4, 4, 4), global_att_blocks=(2,)
    )
    with torch.no_grad():  # a fresh trunk's embeddings are zeros, which would hide mistakes
        trunk.pos_embed.normal_()
        trunk.pos_embed_window.normal_()
    return trunk.eval()


def test_the_position_embedding_is_kept_only_while_nothing_it_depends_on_changes():
    trunk = small_trunk()
    with torch.no_grad():
        first = trunk._position_embedding(32, 32)
        assert trunk._position_embedding(32, 32) is first  # kept
        assert torch.equal(first, trunk._compute_position_embedding(32, 32))
        assert trunk._position_embedding(16, 16).shape[1:3] == (16, 16)  # another grid

        trunk.pos_embed.add_(1.0)  # as an optimizer step or a loaded checkpoint does
        changed = trunk._position_embedding(16, 16)
        assert torch.equal(changed, trunk._compute_position_embedding(16, 16))
        trunk.pos_embed_window.mul_(2.0)
        assert torch.equal(
            trunk._position_embedding(16, 16), trunk._compute_position_embedding(16, 16)
        )
        trunk.pos_embed.data.add_(1.0)  # through .data: no version counted
        assert torch.equal(
            trunk._position_embedding(16, 16), trunk._compute_position_embedding(16, 16)
        )
        trunk.pos_embed.data = torch.randn_like(trunk.pos_embed)  # new storage, maybe the old one's
        assert torch.equal(
            trunk._position_embedding(16, 16), trunk._compute_position_embedding(16, 16)
        )

        with torch.autocast("cpu", dtype=torch.bfloat16):
            cast = trunk._position_embedding(16, 16)
            assert torch.equal(cast, trunk._compute_position_embedding(16, 16))
    kept = trunk._kept_position_embedding
    trunk.to(torch.float64)  # a new dtype: computed again in it
    with torch.no_grad():
        assert trunk._position_embedding(16, 16).dtype == torch.float64
    assert trunk._kept_position_embedding is not kept


def test_a_trunk_built_in_inference_mode_or_without_storage_encodes():
    image = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        trunk = small_trunk()  # its parameters have no version counter
        first, again = trunk(image), trunk(image)
        trunk._kept_position_embedding = None
        fresh = trunk(image)
    assert all(map(torch.equal, first, again)) and all(map(torch.equal, first, fresh))
    with torch.device("meta"), torch.no_grad():
        shapes = [f.shape for f in Hiera(embed_dim=8, stages=(1, 1, 1, 1))(image.to("meta"))]
    assert shapes == [f.shape for f in first]


def test_while_training_the_position_embedding_is_computed_with_its_gradient():
    trunk = small_trunk().train()
    with torch.no_grad():
        trunk._position_embedding(16, 16)
    embedding = trunk._position_embedding(16, 16)
    assert embedding.requires_grad
    embedding.sum().backward()
    assert trunk.pos_embed.grad is not None and trunk.pos_embed.grad.abs().sum() > 0


def test_encoding_twice_gives_the_same_features_as_a_fresh_trunk():
    trunk = small_trunk()
    image = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        first = trunk(image)
        second = trunk(image)
        trunk._kept_position_embedding = None
        fresh = trunk(image)
    for a, b, c in zip(first, second, fresh, strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)


@pytest.mark.parametrize(
    ("count", "sizes"),
    [
        (1024, [1024]),
        (1500, [1500]),
        (1792, [1024, 768]),
        (2304, [1024, 1280]),
        (4096, [1024] * 4),
        (4000, [1024, 1024, 1024, 928]),
    ],
)
def test_queries_are_split_in_chunks_of_at_least_768(count, sizes):
    assert query_chunks(count) == sizes


def test_with_autograd_a_global_attention_runs_in_one_call():
    """Training gets the gradient of one call (chunks change it in the last bits)."""
    attention = MultiScaleAttention(64, 64, num_heads=2)
    calls = []
    attention.attend.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape))
    attention(torch.randn(1, 48, 48, 64, requires_grad=True)).sum().backward()
    assert len(calls) == 1 and calls[0][2] == 48 * 48


@pytest.mark.parametrize("bfloat16", [False, True])
@pytest.mark.parametrize("side", [64, 48])
def test_global_attention_in_chunks_equals_one_call_to_the_bit(monkeypatch, bfloat16, side):
    """tiny's global attention at 1024 (64 x 64 tokens, 4 heads of 96) and at 768 (48 x 48)."""
    torch.manual_seed(0)
    attention = MultiScaleAttention(384, 384, num_heads=4).eval()
    tokens = torch.randn(1, side, side, 384)
    expected = query_chunks(side * side)
    calls = []
    attention.attend.register_forward_pre_hook(lambda module, args: calls.append(args[0].shape))
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=bfloat16):
        chunked = attention(tokens)
        monkeypatch.setattr(hiera, "QUERY_CHUNK", 1 << 20)  # one call for all queries
        whole = attention(tokens)
    assert [shape[2] for shape in calls[:-1]] == expected
    assert len(expected) > 1 and calls[-1][2] == side * side
    assert torch.equal(chunked, whole)
