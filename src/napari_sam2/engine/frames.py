"""Frames of a stack as model input: read lazily, normalized by robust percentiles, resized.

Any array-like indexable along its first axis works (numpy, tifffile memmaps, zarr, dask): a
frame is read only when the model needs it, and the stack is never converted to float as a
whole. Intensities map to [0, 1] by percentiles of a subsample of the stack (or by given
contrast limits), grayscale is replicated to three channels, then the frame is resized to the
model's square input with antialiased bilinear interpolation and standardized with the
ImageNet mean and standard deviation, as SAM 2 was trained.
"""

import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SAM2Error

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# how much of the stack the percentiles look at
SAMPLE_FRAMES = 16
SAMPLE_PIXELS_PER_FRAME = 1 << 18


class FrameSource:
    """A (T, H, W) or (T, H, W, C) stack seen as a sequence of model inputs.

    channel: for (T, H, W, C) data, an index (one channel, shown as grayscale) or three
    indices (an RGB triple); by default C == 3 is RGB, C == 4 RGBA (alpha dropped), C == 1
    grayscale, and other C must be chosen. contrast_limits: (low, high) intensities mapped to
    0 and 1, e.g. a napari layer's; otherwise `percentiles` of a subsample are used.
    Non-finite pixels (NaN, inf) are shown to the model as 0 after normalization.
    """

    def __init__(
        self,
        frames,
        image_size: int,
        channel: int | Sequence[int] | None = None,
        contrast_limits: tuple[float, float] | None = None,
        percentiles: tuple[float, float] = (1.0, 99.8),
    ) -> None:
        shape = tuple(getattr(frames, "shape", ()))
        if len(shape) not in (3, 4):
            raise SAM2Error(
                f"frames must be a (T, H, W) or (T, H, W, C) array, got shape {shape or 'none'}; "
                "for a single 2-D image add a leading axis (image[None])"
            )
        if min(shape) == 0:
            raise SAM2Error(f"frames have an empty axis: shape {shape}")
        dtype = np.dtype(getattr(frames, "dtype", np.float32))
        if dtype.kind not in "buif":
            raise SAM2Error(f"frames of dtype {dtype} are not supported; use integers or floats")
        self.frames = frames
        self.image_size = image_size
        self.num_frames = shape[0]
        self.height, self.width = shape[1], shape[2]
        self.channels = self._pick_channels(shape, channel)
        self.joint_limits = channel is None  # RGB keeps its colour balance
        if contrast_limits is not None:
            low, high = (float(v) for v in contrast_limits)
            if not np.isfinite([low, high]).all() or high <= low:
                raise SAM2Error(
                    f"contrast limits must be finite with low < high, got {contrast_limits}"
                )
            self.limits = np.array([[low, high]] * len(self.channels or [0]), dtype=np.float64)
        else:
            self.limits = self._percentile_limits(percentiles)
        self._warned_nonfinite = False
        self._mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    @staticmethod
    def _pick_channels(shape: tuple[int, ...], channel) -> list[int] | None:
        """Channel indices to read, None for (T, H, W) data."""
        if len(shape) == 3:
            if channel not in (None, 0):
                raise SAM2Error("a channel was chosen but the frames have no channel axis")
            return None
        num = shape[3]
        if channel is None:
            if num == 1:
                return [0]
            if num in (3, 4):
                return [0, 1, 2]
            raise SAM2Error(
                f"frames have {num} channels; choose one channel or an RGB triple of channels"
            )
        picked = [channel] if isinstance(channel, int | np.integer) else list(channel)
        if len(picked) not in (1, 3) or not all(-num <= c < num for c in picked):
            raise SAM2Error(
                f"channel must be one index or three indices below {num}, got {channel}"
            )
        return [int(c) % num for c in picked]

    def read(self, t: int) -> np.ndarray:
        """Frame t as stored, channels picked: (H, W) or (H, W, K)."""
        if not -self.num_frames <= t < self.num_frames:
            raise SAM2Error(f"frame {t} is outside the stack of {self.num_frames} frames")
        try:
            frame = np.asarray(self.frames[t])
        except SAM2Error:
            raise
        except Exception as exc:  # zarr, dask, codecs: a damaged file fails only when read
            text = str(exc).splitlines()[0] if str(exc) else ""
            raise SAM2Error(
                f"frame {t} of the stack cannot be read, the file may be damaged "
                f"({type(exc).__name__}{': ' + text if text else ''})"
            ) from exc
        expected = (self.height, self.width)
        if frame.shape[:2] != expected or frame.ndim != len(self.frames.shape) - 1:
            raise SAM2Error(
                f"frame {t} has shape {frame.shape}, the stack's frames are "
                f"{tuple(self.frames.shape[1:])}; every frame must have one shape"
            )
        if self.channels is not None:
            frame = frame[..., self.channels]
            if len(self.channels) == 1:
                frame = frame[..., 0]
        return frame

    def _percentile_limits(self, percentiles: tuple[float, float]) -> np.ndarray:
        low_q, high_q = percentiles
        if not 0 <= low_q < high_q <= 100:
            raise SAM2Error(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
        picks = np.unique(np.linspace(0, self.num_frames - 1, SAMPLE_FRAMES).round().astype(int))
        step = max(1, int(np.sqrt(self.height * self.width / SAMPLE_PIXELS_PER_FRAME)))
        samples = []
        for t in picks:
            frame = self.read(int(t))[::step, ::step].astype(np.float64)
            samples.append(
                frame.reshape(-1, 1) if frame.ndim == 2 else frame.reshape(-1, frame.shape[-1])
            )
        values = np.concatenate(samples)
        values[~np.isfinite(values)] = np.nan
        if self.joint_limits:
            values = values.reshape(-1, 1)
        if np.isnan(values).all():
            raise SAM2Error("the stack holds no finite values (all NaN or inf)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN channels handled below
            low = np.nanpercentile(values, low_q, axis=0)
            high = np.nanpercentile(values, high_q, axis=0)
        low, high = np.nan_to_num(low), np.nan_to_num(high)
        # a flat channel (constant image) would divide by zero
        high = np.where(high > low, high, low + 1)
        limits = np.stack([low, high], axis=1)
        count = 1 if self.channels is None else len(self.channels)
        return np.repeat(limits, count, axis=0) if len(limits) == 1 else limits

    def normalized(self, t: int) -> np.ndarray:
        """Frame t as float32 in [0, 1] with three channels, (H, W, 3)."""
        frame = self.read(t).astype(np.float32)
        if frame.ndim == 2:
            frame = frame[..., None]
        low = self.limits[:, 0].astype(np.float32)
        high = self.limits[:, 1].astype(np.float32)
        frame = (frame - low) / (high - low)
        finite = np.isfinite(frame)
        if not finite.all():
            if not self._warned_nonfinite:
                warnings.warn(
                    "the stack holds NaN or infinite values; the model sees them as 0",
                    stacklevel=2,
                )
                self._warned_nonfinite = True
            frame = np.where(finite, frame, 0.0)
        frame = np.clip(frame, 0.0, 1.0)
        if frame.shape[-1] == 1:
            frame = np.repeat(frame, 3, axis=-1)
        return frame

    def frame_tensor(self, t: int) -> torch.Tensor:
        """The exact model input for frame t: float32 (3, S, S).

        The normalized frame is resized to S x S (aspect ratio not kept, as SAM 2 does) by
        bilinear interpolation with antialiasing, then standardized per channel.
        """
        image = torch.from_numpy(np.ascontiguousarray(self.normalized(t))).permute(2, 0, 1)
        size = (self.image_size, self.image_size)
        if image.shape[-2:] != size:
            image = F.interpolate(
                image[None], size=size, mode="bilinear", align_corners=False, antialias=True
            )[0]
        return (image - self._mean) / self._std

    def __len__(self) -> int:
        return self.num_frames
