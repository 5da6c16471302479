"""Image features kept between uses: in RAM, least recently used first out within a byte
budget, and optionally on disk, keyed by frame content, model and normalization.

Computing a frame's image features is the most expensive step; keeping them lets the user
click again on a frame or re-propagate after a correction without recomputing them, and the
disk cache lets a later session on the same stack skip the image encoder altogether.
"""

import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import torch

from ..model import FrameFeatures


def feature_bytes(features: FrameFeatures) -> int:
    tensors = [features.image_embed, *features.high_res]
    return sum(t.numel() * t.element_size() for t in tensors)


class FeatureCache:
    """Frame index -> FrameFeatures, holding at most `budget_bytes` (the newest entry is
    always kept, so a budget of 0 still caches one frame)."""

    def __init__(self, budget_bytes: int = 1 << 30, disk: "DiskFeatureStore | None" = None):
        self.budget_bytes = budget_bytes
        self.disk = disk
        self._entries: OrderedDict[int, FrameFeatures] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, t: int, compute: Callable[[int], FrameFeatures]) -> FrameFeatures:
        features = self._entries.get(t)
        if features is not None:
            self._entries.move_to_end(t)
            self.hits += 1
            return features
        self.misses += 1
        features = self.disk.load(t) if self.disk is not None else None
        if features is None:
            features = compute(t)
            if self.disk is not None:
                self.disk.save(t, features)
        self._entries[t] = features
        self._bytes += feature_bytes(features)
        while self._bytes > self.budget_bytes and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= feature_bytes(dropped)
        return features

    def __contains__(self, t: int) -> bool:
        return t in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
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
        self.directory.mkdir(parents=True, exist_ok=True)
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
