"""An N-D array seen as a video: one axis is time (or z), the other leading axes are fixed.

napari images can be 4-D and more (T, Z, Y, X; C, T, Y, X ...). The tracker wants
(T, H, W) or (T, H, W, C); this view picks the video axis, fixes the others at the indices
the viewer currently shows, and reads a frame only when indexed.
"""

from collections.abc import Sequence

import numpy as np

from ..errors import SAM2Error


class VideoAxisView:
    """Lazy (T, H, W[, C]) view of `data` along `video_axis`.

    data: array-like of ndim >= 2 (+1 when `rgb`); the last two spatial axes are (Y, X), and
    with rgb the last axis is the channel. fixed: index of every other leading axis (one per
    leading axis; the entry for the video axis is ignored). A 2-D image, or video_axis None
    with every leading axis fixed, is a 1-frame video.
    """

    def __init__(self, data, video_axis: int | None, fixed: Sequence[int] = (), rgb: bool = False):
        self.data = data
        self.rgb = rgb
        shape = tuple(data.shape)
        spatial_ndim = len(shape) - (1 if rgb else 0)
        if spatial_ndim < 2:
            raise SAM2Error(f"an image needs at least 2 spatial dimensions, got shape {shape}")
        self.leading = spatial_ndim - 2
        if self.leading == 0:
            video_axis = None
        elif video_axis is not None and not 0 <= video_axis < self.leading:
            raise SAM2Error(
                f"the video axis must be one of the leading axes 0..{self.leading - 1} "
                f"of shape {shape}, got {video_axis}"
            )
        fixed = list(fixed) + [0] * (self.leading - len(fixed))
        for axis, index in enumerate(fixed[: self.leading]):
            if axis != video_axis and not 0 <= index < shape[axis]:
                raise SAM2Error(f"index {index} is outside axis {axis} of length {shape[axis]}")
        self.video_axis = video_axis
        self.fixed = [int(i) for i in fixed[: self.leading]]
        frames = 1 if video_axis is None else shape[video_axis]
        tail = shape[spatial_ndim - 2 :]
        self.shape = (frames, *tail)
        self.dtype = np.dtype(getattr(data, "dtype", np.float32))
        self.ndim = len(self.shape)

    def index(self, t: int) -> tuple:
        """The index into `data` of frame t."""
        leading = list(self.fixed)
        if self.video_axis is not None:
            leading[self.video_axis] = int(t)
        return tuple(leading)

    def __getitem__(self, t) -> np.ndarray:
        if not isinstance(t, int | np.integer):
            raise TypeError("a VideoAxisView is indexed by one frame number")
        if not -self.shape[0] <= t < self.shape[0]:
            raise IndexError(f"frame {t} outside {self.shape[0]} frames")
        t = int(t) % self.shape[0]
        return np.asarray(self.data[self.index(t)])

    def __len__(self) -> int:
        return self.shape[0]
