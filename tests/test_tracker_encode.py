"""Background encoding: `Tracker.encode` in a worker thread fills the feature cache, a click
on an encoded frame does not wait behind another frame's encode, and nothing is computed
twice."""

import threading

import numpy as np
import pytest
import torch

from napari_sam2.engine import Tracker
from napari_sam2.engine.automatic_masks import MaskGeneratorSettings
from napari_sam2.engine.cell_seeds import automatic_labels
from napari_sam2.engine.feature_cache import FeatureCache
from napari_sam2.errors import SAM2Error
from napari_sam2.model import FrameFeatures, build_model
from napari_sam2.synthetic import moving_cells

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fake(name: str) -> FrameFeatures:
    """Stand-in features of a few bytes, named so tests can tell them apart."""
    features = FrameFeatures(torch.zeros(1), torch.zeros(1), [torch.zeros(1), torch.zeros(1)])
    features.name = name
    return features


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("sam2.1_hiera_tiny", image_size=128)


@pytest.fixture(scope="module")
def frames():
    return moving_cells(num_frames=4, height=48, width=64)[0]


def test_encode_in_a_worker_fills_the_cache_and_a_click_reuses_it(model, frames):
    tracker = Tracker(model, frames)
    assert not tracker.is_encoded(2)
    worker = threading.Thread(target=tracker.encode, args=(2,))
    worker.start()
    worker.join()
    assert tracker.is_encoded(2) and tracker.features.misses == 1
    assert tracker.encode(2) is False
    fresh = Tracker(model, frames).add_points(2, 1, [[30.0, 20.0]], [1])
    clicked = tracker.add_points(2, 1, [[30.0, 20.0]], [1])
    assert tracker.features.misses == 1
    np.testing.assert_allclose(clicked, fresh, rtol=0, atol=1e-5)
    with pytest.raises(SAM2Error, match="frame 4 does not exist"):
        tracker.encode(4)


def test_a_cached_frame_is_served_while_another_frame_is_being_encoded():
    cache = FeatureCache()
    cache.get(0, lambda t: fake("features 0"))
    started, release = threading.Event(), threading.Event()

    def slow(t):
        started.set()
        release.wait(timeout=30)
        return fake(f"features {t}")

    worker = threading.Thread(target=cache.get, args=(5, slow))
    worker.start()
    assert started.wait(timeout=30)
    # the encode of frame 5 is still running: frame 0 comes back all the same
    assert cache.get(0, slow).name == "features 0"
    assert not release.is_set() and worker.is_alive()
    release.set()
    worker.join()
    assert 5 in cache


def test_two_threads_asking_for_one_frame_compute_it_once():
    cache = FeatureCache()
    calls, started, release = [], threading.Event(), threading.Event()

    def compute(t):
        calls.append(t)
        started.set()
        release.wait(timeout=30)
        return fake("features")

    results = []
    first = threading.Thread(target=lambda: results.append(cache.get(3, compute)))
    first.start()
    assert started.wait(timeout=30)
    second = threading.Thread(target=lambda: results.append(cache.get(3, compute)))
    second.start()
    release.set()
    first.join()
    second.join()
    assert calls == [3] and results[0] is results[1]
    assert cache.misses == 1 and cache.hits == 1


def test_a_failed_encode_does_not_block_the_next_one():
    cache = FeatureCache()

    def broken(t):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cache.get(1, broken)
    assert cache.get(1, lambda t: fake("features")).name == "features"


def test_features_computed_outside_inference_mode_carry_no_graph(model, frames):
    """Automatic seeds and division clicks ask for a frame's features with autograd on; the
    cached features must not hold the encoder's graph (2.4 GB of activations at 1024)."""
    assert torch.is_grad_enabled()
    tracker = Tracker(model, frames)
    features = tracker.frame_features(0)
    tensors = [features.image_embed, features.image_pos, *features.high_res]
    assert all(t.grad_fn is None and not t.requires_grad for t in tensors)
    automatic_labels(tracker, 1, MaskGeneratorSettings(points_per_side=4), min_area=1)
    features = tracker.frame_features(1)
    assert tracker.is_encoded(1) and features.image_embed.grad_fn is None
