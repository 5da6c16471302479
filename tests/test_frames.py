"""FrameSource: any array-like stack becomes model input, read lazily, normalized by robust
percentiles (or given contrast limits), channels picked, resized and standardized."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_sam2.engine import FrameSource
from napari_sam2.engine.frames import IMAGENET_MEAN, IMAGENET_STD, SAMPLE_FRAMES
from napari_sam2.errors import SAM2Error

SIZE = 32


def expected_normalized(frame: np.ndarray, low, high) -> np.ndarray:
    """(H, W) or (H, W, 3) values -> (H, W, 3) in [0, 1], computed independently."""
    frame = np.asarray(frame, dtype=np.float64)
    out = np.clip((frame - np.asarray(low)) / (np.asarray(high) - np.asarray(low)), 0.0, 1.0)
    if out.ndim == 2:
        out = np.repeat(out[..., None], 3, axis=-1)
    return out


def hand_frame_tensor(normalized: np.ndarray, size: int) -> torch.Tensor:
    """normalize -> replicate (done) -> bilinear antialiased resize -> ImageNet mean/std."""
    image = torch.tensor(normalized, dtype=torch.float32).permute(2, 0, 1)[None]
    image = F.interpolate(
        image, size=(size, size), mode="bilinear", align_corners=False, antialias=True
    )[0]
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (image - mean) / std


def ramp_stack(dtype, shape=(3, 20, 30), offset=0) -> np.ndarray:
    """Distinct values in shuffled order, so percentiles are known and spread over frames."""
    values = np.random.default_rng(1).permutation(np.prod(shape)) + offset
    return values.reshape(shape).astype(dtype)


# -- dtypes and percentile normalization ---------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32, np.float64])
def test_percentile_normalization_of_each_dtype(dtype):
    if dtype == np.uint8:
        stack = (ramp_stack(np.int64) % 256).astype(np.uint8)
    else:
        offset = 0 if np.dtype(dtype).kind == "u" else -900
        stack = ramp_stack(dtype, offset=offset)
    source = FrameSource(stack, image_size=SIZE)
    low, high = np.percentile(stack.astype(np.float64), [1.0, 99.8])
    np.testing.assert_allclose(source.limits, [[low, high]], rtol=1e-9)
    for t in range(len(stack)):
        got = source.normalized(t)
        assert got.dtype == np.float32 and got.shape == (20, 30, 3)
        np.testing.assert_allclose(got, expected_normalized(stack[t], low, high), atol=1e-6)
        assert torch.isfinite(source.frame_tensor(t)).all()
    if dtype != np.uint8:  # distinct values: 1 % of the pixels clip to 0, 0.2 % to 1
        everything = np.stack([source.normalized(t) for t in range(len(stack))])[..., 0]
        assert abs((everything <= 0).mean() - 0.01) < 0.001
        assert abs((everything >= 1).mean() - 0.002) < 0.001


def test_values_at_the_percentiles_map_to_zero_and_one_and_beyond_are_clipped():
    stack = np.arange(1000, dtype=np.float32).reshape(1, 20, 50)
    source = FrameSource(stack, image_size=SIZE)
    low, high = 0.01 * 999, 0.998 * 999  # np.percentile of 0..999 at 1 and 99.8
    np.testing.assert_allclose(source.limits[0], [low, high], rtol=1e-9)
    norm = source.normalized(0)[..., 0].ravel()
    expected = np.clip((np.arange(1000) - low) / (high - low), 0, 1)
    np.testing.assert_allclose(norm, expected, rtol=0, atol=1e-6)
    assert norm[:10].max() == 0.0  # values below the 1st percentile clip to 0
    assert norm[998:].min() == 1.0  # values above the 99.8th clip to 1
    assert 0.0 < norm[500] < 1.0


def test_custom_percentiles():
    stack = np.arange(1000, dtype=np.float64).reshape(1, 20, 50)
    source = FrameSource(stack, image_size=SIZE, percentiles=(10.0, 90.0))
    np.testing.assert_allclose(source.limits[0], [99.9, 899.1], rtol=1e-9)


@pytest.mark.parametrize("percentiles", [(50.0, 50.0), (90.0, 10.0), (-1.0, 99.0), (1.0, 101.0)])
def test_bad_percentiles_are_an_error(percentiles):
    with pytest.raises(SAM2Error, match="percentiles"):
        FrameSource(np.zeros((2, 8, 8)), image_size=SIZE, percentiles=percentiles)


def test_bool_stack_maps_false_to_zero_and_true_to_one():
    stack = np.random.default_rng(0).random((2, 16, 24)) > 0.5
    source = FrameSource(stack, image_size=SIZE)
    for t in range(2):
        np.testing.assert_array_equal(
            source.normalized(t), np.repeat(stack[t, ..., None], 3, -1).astype(np.float32)
        )
    assert torch.isfinite(source.frame_tensor(0)).all()


def test_constant_stack_does_not_divide_by_zero():
    source = FrameSource(np.full((2, 10, 10), 7, dtype=np.uint16), image_size=SIZE)
    norm = source.normalized(1)
    assert np.isfinite(norm).all()
    np.testing.assert_array_equal(norm, 0.0)
    assert torch.isfinite(source.frame_tensor(1)).all()


def test_explicit_contrast_limits_replace_percentiles():
    stack = ramp_stack(np.uint16)
    source = FrameSource(stack, image_size=SIZE, contrast_limits=(100, 1700))
    np.testing.assert_allclose(
        source.normalized(2), expected_normalized(stack[2], 100, 1700), atol=1e-6
    )
    assert source.normalized(2).min() == 0.0 and source.normalized(2).max() == 1.0


@pytest.mark.parametrize("limits", [(5.0, 5.0), (10.0, 2.0), (0.0, np.nan), (-np.inf, 1.0)])
def test_bad_contrast_limits_are_an_error(limits):
    with pytest.raises(SAM2Error, match="contrast limits"):
        FrameSource(np.zeros((2, 8, 8)), image_size=SIZE, contrast_limits=limits)


# -- non-finite values -------------------------------------------------------------


def test_nan_and_inf_are_masked_to_zero_with_a_warning_and_never_reach_the_model():
    stack = ramp_stack(np.float32, shape=(2, 20, 30))
    stack[0, 3, 4] = np.nan
    stack[0, 5, 6] = np.inf
    stack[0, 7, 8] = -np.inf
    stack[1, :, :5] = np.nan
    source = FrameSource(stack, image_size=SIZE)
    finite = stack[np.isfinite(stack)].astype(np.float64)
    low, high = np.percentile(finite, [1.0, 99.8])
    np.testing.assert_allclose(source.limits[0], [low, high], rtol=1e-6)
    with pytest.warns(UserWarning, match="NaN or infinite"):
        norm = source.normalized(0)
    assert np.isfinite(norm).all()
    for y, x in [(3, 4), (5, 6), (7, 8)]:
        np.testing.assert_array_equal(norm[y, x], 0.0)
    clean = np.where(np.isfinite(stack[0]), stack[0], low)
    np.testing.assert_allclose(norm, expected_normalized(clean, low, high), atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(2):
            tensor = FrameSource(stack, image_size=SIZE).frame_tensor(t)
            assert torch.isfinite(tensor).all()
            assert tensor.dtype == torch.float32 and tensor.shape == (3, SIZE, SIZE)


def test_nan_with_contrast_limits_is_masked_too():
    stack = np.full((1, 8, 8), np.nan, dtype=np.float64)
    stack[0, 0, 0] = 5.0
    source = FrameSource(stack, image_size=SIZE, contrast_limits=(0.0, 10.0))
    with pytest.warns(UserWarning):
        tensor = source.frame_tensor(0)
    assert torch.isfinite(tensor).all()


@pytest.mark.parametrize("fill", [np.nan, np.inf, -np.inf])
def test_stack_without_finite_values_is_an_error(fill):
    with pytest.raises(SAM2Error, match="no finite values"):
        FrameSource(np.full((3, 8, 8), fill, dtype=np.float32), image_size=SIZE)


# -- channels ------------------------------------------------------------------------


def rgb_stack(channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(2)
    stack = rng.integers(0, 4000, size=(2, 12, 16, channels)).astype(np.uint16)
    stack[..., 0] //= 4  # a dim red channel keeps its colour balance with joint limits
    return stack


def test_rgb_uses_joint_limits_and_keeps_channel_order():
    stack = rgb_stack(3)
    source = FrameSource(stack, image_size=SIZE)
    low, high = np.percentile(stack.astype(np.float64), [1.0, 99.8])
    np.testing.assert_allclose(source.limits, [[low, high]] * 3, rtol=1e-9)
    np.testing.assert_allclose(
        source.normalized(1), expected_normalized(stack[1], low, high), atol=1e-6
    )
    # the dim channel stays dim
    assert source.normalized(1)[..., 0].mean() < 0.5 * source.normalized(1)[..., 1].mean()


def test_rgba_drops_alpha():
    stack = rgb_stack(4)
    stack[..., 3] = 65535  # alpha must not influence the limits either
    rgba = FrameSource(stack, image_size=SIZE)
    rgb = FrameSource(np.ascontiguousarray(stack[..., :3]), image_size=SIZE)
    np.testing.assert_array_equal(rgba.limits, rgb.limits)
    np.testing.assert_array_equal(rgba.normalized(0), rgb.normalized(0))
    torch.testing.assert_close(rgba.frame_tensor(1), rgb.frame_tensor(1), rtol=0, atol=0)


def test_single_channel_axis_is_grayscale():
    stack = ramp_stack(np.uint16)[..., None]
    source = FrameSource(stack, image_size=SIZE)
    low, high = np.percentile(stack.astype(np.float64), [1.0, 99.8])
    np.testing.assert_allclose(
        source.normalized(0), expected_normalized(stack[0, ..., 0], low, high), atol=1e-6
    )


@pytest.mark.parametrize("channel", [2, -3, np.int64(2)])
def test_one_channel_of_many_is_shown_as_grayscale(channel):
    stack = rgb_stack(5)
    source = FrameSource(stack, image_size=SIZE, channel=channel)
    low, high = np.percentile(stack[..., 2].astype(np.float64), [1.0, 99.8])
    np.testing.assert_allclose(source.limits, [[low, high]], rtol=1e-9)
    np.testing.assert_allclose(
        source.normalized(1), expected_normalized(stack[1, ..., 2], low, high), atol=1e-6
    )


def test_rgb_triple_of_channels_in_the_given_order():
    stack = rgb_stack(5)
    source = FrameSource(stack, image_size=SIZE, channel=(4, 0, 2), contrast_limits=(0, 4000))
    np.testing.assert_allclose(
        source.normalized(0), expected_normalized(stack[0][..., [4, 0, 2]], 0, 4000), atol=1e-6
    )
    auto = FrameSource(stack, image_size=SIZE, channel=(4, 0, 2))
    for k, c in enumerate((4, 0, 2)):
        # each picked channel uses its own percentiles
        low, high = np.percentile(stack[..., c].astype(np.float64), [1.0, 99.8])
        np.testing.assert_allclose(auto.limits[k], [low, high], rtol=1e-9)


@pytest.mark.parametrize("channels", [2, 5])
def test_many_channels_without_a_choice_is_a_helpful_error(channels):
    with pytest.raises(SAM2Error, match=f"{channels} channels.*choose one channel"):
        FrameSource(rgb_stack(channels), image_size=SIZE)


@pytest.mark.parametrize("channel", [5, -6, (0, 1), (0, 1, 2, 3), (0, 1, 7)])
def test_bad_channel_choice_is_an_error(channel):
    with pytest.raises(SAM2Error, match="channel"):
        FrameSource(rgb_stack(5), image_size=SIZE, channel=channel)


def test_channel_on_data_without_channel_axis_is_an_error():
    with pytest.raises(SAM2Error, match="no channel axis"):
        FrameSource(np.zeros((2, 8, 8)), image_size=SIZE, channel=2)


# -- shapes --------------------------------------------------------------------------


def test_single_frame_stack():
    frame = ramp_stack(np.uint16, shape=(1, 20, 30))
    source = FrameSource(frame, image_size=SIZE)
    assert len(source) == 1
    low, high = np.percentile(frame.astype(np.float64), [1.0, 99.8])
    expected = hand_frame_tensor(expected_normalized(frame[0], low, high), SIZE)
    torch.testing.assert_close(source.frame_tensor(0), expected, rtol=0, atol=1e-6)
    with pytest.raises(SAM2Error, match="outside the stack"):
        source.read(1)


@pytest.mark.parametrize("shape", [(2, 24, 60), (2, 70, 20), (2, 32, 32), (2, 7, 9)])
def test_frame_tensor_matches_a_hand_computation(shape):
    stack = ramp_stack(np.float32, shape=shape, offset=-50)
    source = FrameSource(stack, image_size=SIZE)
    low, high = np.percentile(stack.astype(np.float64), [1.0, 99.8])
    for t in range(shape[0]):
        got = source.frame_tensor(t)
        assert got.dtype == torch.float32 and got.shape == (3, SIZE, SIZE)
        expected = hand_frame_tensor(expected_normalized(stack[t], low, high), SIZE)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    # the input is not a constant image: the resize really ran on the data
    assert float(source.frame_tensor(0).std()) > 0.1


def test_frame_tensor_of_rgb_matches_a_hand_computation():
    stack = rgb_stack(3)
    source = FrameSource(stack, image_size=SIZE)
    low, high = np.percentile(stack.astype(np.float64), [1.0, 99.8])
    expected = hand_frame_tensor(expected_normalized(stack[0], low, high), SIZE)
    torch.testing.assert_close(source.frame_tensor(0), expected, rtol=0, atol=1e-6)
    # channels differ: the RGB triple is not collapsed to gray
    assert not torch.allclose(expected[0], expected[1])


@pytest.mark.parametrize(
    "shape", [(8, 8), (2, 3, 8, 8, 1), (2, 3, 8, 8, 3), (0, 8, 8), (3, 0, 8), (8,)]
)
def test_bad_shapes_are_an_error(shape):
    with pytest.raises(SAM2Error, match="shape"):
        FrameSource(np.zeros(shape, dtype=np.uint8), image_size=SIZE)


def test_2d_error_says_how_to_fix_it():
    with pytest.raises(SAM2Error, match=r"image\[None\]"):
        FrameSource(np.zeros((8, 8)), image_size=SIZE)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.str_, object])
def test_unsupported_dtypes_are_an_error(dtype):
    with pytest.raises(SAM2Error, match="dtype"):
        FrameSource(np.zeros((2, 8, 8), dtype=dtype), image_size=SIZE)


def test_something_without_a_shape_is_an_error():
    with pytest.raises(SAM2Error, match="shape"):
        FrameSource([[[1, 2], [3, 4]]], image_size=SIZE)


def test_frame_index_outside_the_stack_is_an_error():
    source = FrameSource(np.zeros((3, 8, 8)), image_size=SIZE)
    with pytest.raises(SAM2Error, match="frame 3 is outside the stack of 3 frames"):
        source.frame_tensor(3)


# -- lazy reading ----------------------------------------------------------------------


class CountingFrames:
    """An array-like that records which frames are read and refuses whole conversion."""

    def __init__(self, data: np.ndarray) -> None:
        self.data = data
        self.shape = data.shape
        self.dtype = data.dtype
        self.ndim = data.ndim
        self.frames_read: list[int] = []

    def __getitem__(self, key):
        block = self.data[key]
        first = key[0] if isinstance(key, tuple) else key
        touched = np.arange(self.shape[0])[first]
        self.frames_read += [int(t) for t in np.atleast_1d(touched)] if block.size else []
        return block

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole stack was converted to an array")

    def __len__(self) -> int:
        return self.shape[0]


def subsample_frames(num_frames: int) -> set[int]:
    return set(np.linspace(0, num_frames - 1, SAMPLE_FRAMES).round().astype(int).tolist())


def test_array_like_is_read_frame_by_frame():
    data = ramp_stack(np.uint16, shape=(40, 12, 14))
    frames = CountingFrames(data)
    source = FrameSource(frames, image_size=SIZE)
    sampled = set(frames.frames_read)
    assert len(sampled) <= SAMPLE_FRAMES
    assert {0, 39} <= sampled  # the subsample spans the stack
    t = next(t for t in range(40) if t not in sampled)
    frames.frames_read.clear()
    tensor = source.frame_tensor(t)
    assert frames.frames_read == [t]
    eager = FrameSource(data, image_size=SIZE)
    torch.testing.assert_close(tensor, eager.frame_tensor(t), rtol=0, atol=0)


def test_dask_array_is_read_lazily():
    da = pytest.importorskip("dask.array")
    data = ramp_stack(np.float32, shape=(40, 12, 14))
    frames = CountingFrames(data)
    stack = da.from_array(frames, chunks=(1, 12, 14), asarray=False)
    source = FrameSource(stack, image_size=SIZE)
    read = set(frames.frames_read)
    assert read and read <= subsample_frames(40)
    t = next(t for t in range(40) if t not in read)
    frames.frames_read.clear()
    tensor = source.frame_tensor(t)
    assert set(frames.frames_read) == {t}
    torch.testing.assert_close(
        tensor, FrameSource(data, image_size=SIZE).frame_tensor(t), rtol=0, atol=0
    )


def test_zarr_array_is_read_lazily():
    zarr = pytest.importorskip("zarr")
    from zarr.storage import MemoryStore

    class CountingStore(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.keys: list[str] = []

        def get_sync(self, key, *args, **kwargs):
            self.keys.append(key)
            return super().get_sync(key, *args, **kwargs)

        async def get(self, key, *args, **kwargs):
            self.keys.append(key)
            return await super().get(key, *args, **kwargs)

    data = ramp_stack(np.uint16, shape=(40, 12, 14))
    store = CountingStore()
    stack = zarr.create_array(store=store, shape=data.shape, chunks=(1, 12, 14), dtype="uint16")
    stack[:] = data
    store.keys.clear()

    def frames_read() -> set[int]:
        return {int(k.split("/")[1]) for k in store.keys if k.startswith("c/")}

    source = FrameSource(stack, image_size=SIZE)
    read = frames_read()
    assert read and read <= subsample_frames(40)
    t = next(t for t in range(40) if t not in read)
    store.keys.clear()
    tensor = source.frame_tensor(t)
    assert frames_read() == {t}
    torch.testing.assert_close(
        tensor, FrameSource(data, image_size=SIZE).frame_tensor(t), rtol=0, atol=0
    )


def test_percentiles_come_from_a_subsample_of_a_long_stack():
    # frames outside the subsample hold extreme values that must not move the limits
    stack = np.tile(ramp_stack(np.float32, shape=(1, 12, 14)), (40, 1, 1))
    sampled = subsample_frames(40)
    unsampled = [t for t in range(40) if t not in sampled]
    stack[unsampled] = 1e6
    source = FrameSource(stack, image_size=SIZE)
    low, high = np.percentile(stack[sorted(sampled)].astype(np.float64), [1.0, 99.8])
    np.testing.assert_allclose(source.limits[0], [low, high], rtol=1e-6)
    assert high < 1000
