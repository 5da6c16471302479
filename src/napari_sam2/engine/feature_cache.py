"""Image features kept between uses: in RAM, least recently used first out within a byte
budget, and optionally on disk, keyed by frame content, model and normalization.

Computing a frame's image features is the most expensive step; keeping them lets the user
click again on a frame or re-propagate after a correction without recomputing them, and the
disk cache lets a later session on the same stack skip the image encoder altogether.
"""

import hashlib
import os
import tempfile
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import SAM2Error
from ..model import FrameFeatures
from .frames import FrameSource
from .precision import feature_cache_suffix


def feature_bytes(features: FrameFeatures) -> int:
    tensors = [features.image_embed, *features.high_res]
    return sum(t.numel() * t.element_size() for t in tensors)


class FeatureCache:
    """Frame index -> FrameFeatures, holding at most `budget_bytes` (the newest entry is
    always kept, so a budget of 0 still caches one frame).

    Thread-safe: `get` may run in several threads at once. The computation runs outside the
    lock, so a thread asking for a cached frame never waits behind another frame being
    encoded; two threads asking for the same missing frame compute it once.
    """

    def __init__(self, budget_bytes: int = 1 << 30, disk: "DiskFeatureStore | None" = None):
        self._budget = int(budget_bytes)
        self.disk = disk
        self._entries: OrderedDict[int, FrameFeatures] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._in_flight: dict[int, threading.Event] = {}
        self.hits = 0
        self.misses = 0

    def get(self, t: int, compute: Callable[[int], FrameFeatures]) -> FrameFeatures:
        while True:
            with self._lock:
                features = self._entries.get(t)
                if features is not None:
                    self._entries.move_to_end(t)
                    self.hits += 1
                    return features
                running = self._in_flight.get(t)
                if running is None:
                    self.misses += 1
                    done = self._in_flight[t] = threading.Event()
                    break
            running.wait()  # another thread is encoding this frame; then look again
        try:
            features = self._load_or_compute(t, compute)
            with self._lock:
                self._insert(t, features)
        finally:
            with self._lock:
                del self._in_flight[t]
            done.set()
        return features

    def _load_or_compute(self, t: int, compute: Callable[[int], FrameFeatures]) -> FrameFeatures:
        features = self.disk.load(t) if self.disk is not None else None
        if features is None:
            features = compute(t)
            if self.disk is not None:
                self.disk.save(t, features)
        return features

    @property
    def budget_bytes(self) -> int:
        return self._budget

    @budget_bytes.setter
    def budget_bytes(self, value: int) -> None:
        """A new budget applies at once: the oldest entries beyond it are dropped."""
        with self._lock:
            self._budget = int(value)
            self._shrink()

    def _insert(self, t: int, features: FrameFeatures) -> None:
        self._entries[t] = features
        self._entries.move_to_end(t)
        self._bytes += feature_bytes(features)
        self._shrink()

    def _shrink(self) -> None:
        while self._bytes > self._budget and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= feature_bytes(dropped)

    def __contains__(self, t: int) -> bool:
        return t in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class DiskFeatureStore:
    """Per-frame feature files in `directory`, named by a key of everything that determines
    them: the model and its weights, the input size, the normalization, and the frame's raw
    content (so an edited frame is never served stale features).

    frame_bytes(t) returns the raw frame as stored (hashed); image_pos is the position
    encoding shared by all frames (not stored).
    """

    def __init__(
        self,
        directory: str | Path,
        model: torch.nn.Module,
        normalization: str,
        frame_bytes: Callable[[int], bytes],
        image_pos: Callable[[], torch.Tensor],
    ) -> None:
        self.directory = Path(directory)
        _check_writable(self.directory)
        self.writable = True  # until a write fails (a full disk): then memory only
        digest = hashlib.sha256()
        config = getattr(model, "config", None)
        digest.update(repr(config).encode())
        for name in ("no_mem_embed", "maskmem_tpos_enc"):  # a cheap weights fingerprint
            digest.update(getattr(model, name).detach().float().cpu().numpy().tobytes())
        first = next(model.image_encoder.parameters())
        digest.update(first.detach().float().cpu().numpy().tobytes())
        digest.update(normalization.encode())
        self._prefix = digest.hexdigest()[:16]
        self._frame_bytes = frame_bytes
        self._image_pos = image_pos
        self._keys: dict[int, str] = {}

    def path(self, t: int) -> Path:
        if t not in self._keys:
            self._keys[t] = hashlib.sha256(self._frame_bytes(t)).hexdigest()[:16]
        return self.directory / f"{self._prefix}-{self._keys[t]}.pt"

    def load(self, t: int) -> FrameFeatures | None:
        path = self.path(t)
        if not path.is_file():
            return None
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
            device = self._image_pos().device
            return FrameFeatures(
                stored["image_embed"].to(device),
                self._image_pos(),
                [stored["high_res_0"].to(device), stored["high_res_1"].to(device)],
            )
        except Exception:  # a damaged cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
            return None

    def save(self, t: int, features: FrameFeatures) -> None:
        """Store frame t's features; a failed write (a full disk, a folder gone) warns once
        and turns the disk cache off for this session, so tracking goes on from memory."""
        if not self.writable:
            return
        try:
            self._write(t, features)
        except OSError as exc:
            self.writable = False
            warnings.warn(
                f"could not write image features to the feature cache folder "
                f"{self.directory} ({exc}); keeping them in memory only from now on",
                stacklevel=2,
            )

    def _write(self, t: int, features: FrameFeatures) -> None:
        tensors = {
            "image_embed": features.image_embed.detach().cpu(),
            "high_res_0": features.high_res[0].detach().cpu(),
            "high_res_1": features.high_res[1].detach().cpu(),
        }
        path = self.path(t)
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".part")
        os.close(handle)
        try:
            torch.save(tensors, temporary)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)


def _check_writable(directory: Path) -> None:
    """A clear error now, rather than a failure at the first frame encoded."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=directory, suffix=".probe")
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise SAM2Error(
            f"the feature cache folder {directory} cannot be written ({exc.strerror or exc}); "
            "choose a folder you can write to, or no feature cache folder"
        ) from exc


def disk_store_for(
    directory: str | Path,
    model: torch.nn.Module,
    frames: FrameSource,
    precision: str,
    image_pos: Callable[[], torch.Tensor],
) -> DiskFeatureStore:
    """The disk store of a tracker's frames: its keys cover the channels and intensity
    limits the frames are normalized with and the precision the encoder runs in (a resolved
    `engine.precision` name; precisions that encode alike share the key)."""
    suffix = feature_cache_suffix(precision)
    return DiskFeatureStore(
        directory,
        model,
        normalization=f"{frames.channels}-{frames.limits.tolist()}{suffix}",
        frame_bytes=lambda t: np.ascontiguousarray(frames.read(t)).tobytes(),
        image_pos=image_pos,
    )
