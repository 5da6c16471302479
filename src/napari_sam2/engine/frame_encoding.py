"""Image features of a tracker's frames: computed when a click or propagation needs them, or
ahead of time (background encoding), and kept in the feature cache within its budget."""

import torch

from ..errors import SAM2Error
from ..model import FrameFeatures
from .budgets import CacheBudgets
from .precision import autocast, float32_features, float32_heads, steps_under_autocast


class FrameEncoding:
    """The `Tracker`'s methods for image features and cache budgets; it provides `model`,
    `device`, `frames`, `features` (a `FeatureCache`), `precision` (resolved, see
    `engine.precision`), `result_budget_bytes` and `_check_frame`."""

    @property
    def bfloat16(self) -> bool:
        """Whether the steps run under bfloat16 autocast (all but the SAM heads in
        "bfloat16-heavy")."""
        return steps_under_autocast(self.precision)

    @property
    def float32_heads(self) -> bool:
        """Whether the prompt encoder and mask decoder leave the steps' autocast."""
        return float32_heads(self.precision)

    def _autocast(self):
        return autocast(self.device, self.bfloat16)

    # never with autograd: cached features with a graph would keep every activation of the
    # encoder alive (2.4 GB at tiny@1024) for as long as they stay in the cache
    @torch.no_grad()
    def _compute_features(self, t: int) -> FrameFeatures:
        image = self.frames.frame_tensor(t).to(self.device)[None]
        if not float32_features(self.precision):
            with self._autocast():
                return self.model.encode_image(image)
        with autocast(self.device, True):
            features = self.model.encode_image(image)
        # kept in float32: the SAM heads take them as they are, a click casts nothing
        return FrameFeatures(
            features.image_embed.float(),
            features.image_pos.float(),
            [level.float() for level in features.high_res],
        )

    def _image_pos(self) -> torch.Tensor:
        """The image position encoding, the same for every frame."""
        size = self.model.config.image_embedding_size
        probe = torch.zeros(1, 1, size, size, device=self.device)
        return self.model.shared_tensor(self.model.image_encoder.neck.position_encoding(probe))

    @property
    def budgets(self) -> CacheBudgets:
        """Bytes the feature cache and the kept results may hold (set a new `CacheBudgets`
        to change them; a smaller feature budget drops the oldest features at once)."""
        return CacheBudgets(self.features.budget_bytes, self.result_budget_bytes)

    @budgets.setter
    def budgets(self, budgets: CacheBudgets) -> None:
        if min(budgets.features, budgets.results) < 0:
            raise SAM2Error(f"cache budgets must be at least 0 bytes, got {budgets}")
        self.features.budget_bytes = int(budgets.features)
        self.result_budget_bytes = int(budgets.results)

    def frame_features(self, t: int) -> FrameFeatures:
        return self.features.get(t, self._compute_features)

    def encode(self, t: int) -> bool:
        """Compute and cache frame t's image features ahead of a click (background
        encoding). Returns True if they were computed now, False if already cached.

        The one method that may run in other threads while the tracker is used: any number
        of worker threads may call `encode` while one thread calls the other methods. A click
        on a frame already encoded never waits for a background encode; a click on the frame
        being encoded waits for that encode instead of computing it again.
        """
        t = self._check_frame(t)
        if t in self.features:
            return False
        with torch.inference_mode():
            self.frame_features(t)
        return True

    def is_encoded(self, t: int) -> bool:
        """Whether frame t's image features are cached (a click there skips the encoder)."""
        return self._check_frame(t) in self.features
