"""FeatureCache: image features kept least-recently-used first out, within a byte budget."""

import numpy as np
import pytest
import torch

from napari_sam2.engine import FeatureCache
from napari_sam2.engine.feature_cache import feature_bytes
from napari_sam2.model import FrameFeatures

ENTRY_BYTES = 1000


def fake_features(t: int, scale: int = 1) -> FrameFeatures:
    """Features of `scale` * 1000 bytes: image_embed 800 + high_res 100 + 100 bytes
    (image_pos is shared bookkeeping and not counted)."""
    return FrameFeatures(
        image_embed=torch.full((1, 200 * scale), float(t)),
        image_pos=torch.zeros(1, 50),
        high_res=[torch.zeros(1, 25 * scale), torch.zeros(1, 25 * scale)],
    )


class Computer:
    """compute(t) that records every call."""

    def __init__(self, scales: dict[int, int] | None = None) -> None:
        self.calls: list[int] = []
        self.scales = scales or {}

    def __call__(self, t: int) -> FrameFeatures:
        self.calls.append(t)
        return fake_features(t, self.scales.get(t, 1))


def test_feature_bytes_counts_embedding_and_high_res_maps():
    assert feature_bytes(fake_features(0)) == ENTRY_BYTES
    assert feature_bytes(fake_features(0, 3)) == 3 * ENTRY_BYTES
    half = FrameFeatures(
        torch.zeros(1, 200, dtype=torch.bfloat16), torch.zeros(1), [torch.zeros(1, 10)]
    )
    assert feature_bytes(half) == 400 + 40


def test_hits_return_the_cached_features_without_computing():
    cache = FeatureCache(budget_bytes=10 * ENTRY_BYTES)
    compute = Computer()
    first = cache.get(3, compute)
    again = cache.get(3, compute)
    assert again is first
    assert compute.calls == [3]
    assert (cache.hits, cache.misses) == (1, 1)
    cache.get(4, compute)
    cache.get(3, compute)
    cache.get(4, compute)
    assert compute.calls == [3, 4]
    assert (cache.hits, cache.misses) == (3, 2)
    assert float(cache.get(4, compute).image_embed[0, 0]) == 4.0


def test_least_recently_used_is_dropped_beyond_the_budget():
    cache = FeatureCache(budget_bytes=int(2.5 * ENTRY_BYTES))
    compute = Computer()
    for t in range(5):
        cache.get(t, compute)
        assert cache.nbytes <= cache.budget_bytes
    assert len(cache) == 2
    assert 3 in cache and 4 in cache
    assert all(t not in cache for t in range(3))
    assert cache.nbytes == 2 * ENTRY_BYTES
    # a dropped frame is computed again
    cache.get(0, compute)
    assert compute.calls == [0, 1, 2, 3, 4, 0]
    assert 0 in cache and 4 in cache and 3 not in cache
    assert (cache.hits, cache.misses) == (0, 6)


def test_access_refreshes_recency():
    cache = FeatureCache(budget_bytes=2 * ENTRY_BYTES)
    compute = Computer()
    cache.get(0, compute)
    cache.get(1, compute)
    cache.get(0, compute)  # 0 is now the most recent
    cache.get(2, compute)
    assert 0 in cache and 2 in cache and 1 not in cache
    assert compute.calls == [0, 1, 2]
    assert (cache.hits, cache.misses) == (1, 3)


def test_exact_budget_keeps_entries_that_fit():
    cache = FeatureCache(budget_bytes=3 * ENTRY_BYTES)
    compute = Computer()
    for t in range(3):
        cache.get(t, compute)
    assert len(cache) == 3 and cache.nbytes == 3 * ENTRY_BYTES


def test_newest_entry_is_kept_even_over_budget():
    for budget in (0, ENTRY_BYTES // 2):
        cache = FeatureCache(budget_bytes=budget)
        compute = Computer()
        for t in range(3):
            features = cache.get(t, compute)
            assert len(cache) == 1 and t in cache
            assert cache.get(t, compute) is features
        assert compute.calls == [0, 1, 2]
        assert cache.nbytes == ENTRY_BYTES


def test_a_large_entry_evicts_several_small_ones():
    cache = FeatureCache(budget_bytes=4 * ENTRY_BYTES)
    compute = Computer(scales={9: 3})
    for t in range(4):
        cache.get(t, compute)
    assert len(cache) == 4
    cache.get(9, compute)
    assert [t for t in range(4) if t in cache] == [3]
    assert 9 in cache and cache.nbytes == 4 * ENTRY_BYTES


def test_clear_forgets_every_entry():
    cache = FeatureCache()
    compute = Computer()
    cache.get(0, compute)
    cache.get(0, compute)
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and 0 not in cache
    cache.get(0, compute)
    assert compute.calls == [0, 0]
    assert cache.nbytes == ENTRY_BYTES


def test_default_budget_of_a_bare_cache_is_one_gibibyte():
    assert FeatureCache().budget_bytes == 1 << 30


def test_disk_cache_serves_a_later_session_and_never_stale_features(tmp_path, monkeypatch):
    import torch

    from napari_sam2.engine import Tracker
    from napari_sam2.model import build_model
    from napari_sam2.synthetic import moving_cells

    model = build_model("sam2.1_hiera_tiny", image_size=128)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(8.0)
    frames, _ = moving_cells(num_frames=4, height=48, width=64, centers=((15, 20), (30, 44)))
    calls = {"n": 0}
    encode = model.encode_image

    def counting(images):
        calls["n"] += 1
        return encode(images)

    monkeypatch.setattr(model, "encode_image", counting)

    def session(stack):
        tracker = Tracker(model, stack, feature_cache_dir=tmp_path)
        tracker.add_points(0, 1, [[20, 15]], [1])
        return [logits for _, _, logits in tracker.propagate()]

    first = session(frames)
    assert calls["n"] == 4 and len(list(tmp_path.glob("*.pt"))) == 4
    second = session(frames)
    assert calls["n"] == 4  # every frame came from disk
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)

    edited = frames.copy()
    edited[2] = edited[2][::-1]
    session(edited)
    assert calls["n"] == 5  # only the edited frame was encoded again

    for path in tmp_path.glob("*.pt"):
        path.write_bytes(b"damaged")
    again = session(frames)
    assert calls["n"] == 9  # damaged files are recomputed, not trusted
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_unwritable_feature_cache_folder_is_a_clear_error(tmp_path):
    from napari_sam2.engine import Tracker
    from napari_sam2.errors import SAM2Error
    from napari_sam2.model import build_model
    from napari_sam2.synthetic import moving_cells

    model = build_model("sam2.1_hiera_tiny", image_size=128)
    frames, _ = moving_cells(num_frames=2, height=48, width=64)
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with pytest.raises(SAM2Error, match="feature cache folder .* cannot be written"):
        Tracker(model, frames, feature_cache_dir=blocker / "features")


def test_a_full_disk_mid_run_warns_and_keeps_features_in_memory(tmp_path, monkeypatch):
    import errno

    from napari_sam2.engine import Tracker, feature_cache
    from napari_sam2.model import build_model
    from napari_sam2.synthetic import moving_cells

    model = build_model("sam2.1_hiera_tiny", image_size=128)
    frames, _ = moving_cells(num_frames=4, height=48, width=64)
    expected = [logits for _, _, logits in _clicked_run(Tracker(model, frames))]
    writes = []
    save = torch.save

    def filling_disk(obj, path):
        writes.append(path)
        if len(writes) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        save(obj, path)

    monkeypatch.setattr(feature_cache.torch, "save", filling_disk)
    tracker = Tracker(model, frames, feature_cache_dir=tmp_path)
    with pytest.warns(UserWarning, match="No space left on device.*memory only"):
        got = [logits for _, _, logits in _clicked_run(tracker)]
    assert len(writes) == 2  # no further attempts once the disk was full
    assert len(tracker.features) == 4 and tracker.features.disk.writable is False
    assert list(tmp_path.glob("*.part")) == []  # the failed write left nothing behind
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def _clicked_run(tracker):
    tracker.add_points(0, 1, [[20, 15]], [1])
    return list(tracker.propagate())
