"""How much memory the tracker's caches may hold: by default a share of what the machine
(and, for tensors kept on a GPU, the device) has available when the tracker is made."""

from dataclasses import dataclass

import psutil
import torch

MIB = 1 << 20
# image features: reused by clicks and re-propagation (16 MiB per frame at 1024)
FEATURE_SHARE, FEATURE_RANGE = 1 / 8, (64 * MIB, 1024 * MIB)
# results of tracked frames beyond what the memory bank needs (0.75 MiB per frame at 1024)
RESULT_SHARE, RESULT_RANGE = 1 / 64, (16 * MIB, 256 * MIB)


@dataclass(frozen=True)
class CacheBudgets:
    """Bytes the feature cache and the kept per-frame results may hold."""

    features: int
    results: int


def available_bytes(device: torch.device) -> int:
    """Memory free for caches on `device`: the machine's available RAM, or the GPU's free
    memory when the caches' tensors live there."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def _share(available: int, share: float, bounds: tuple[int, int]) -> int:
    low, high = bounds
    return int(min(high, max(low, available * share)))


def default_budgets(device: torch.device) -> CacheBudgets:
    """Budgets for a new tracker: 1/8 of the available memory for image features (64 MiB to
    1 GiB) and 1/64 for kept results (16 to 256 MiB)."""
    available = available_bytes(device)
    return CacheBudgets(
        features=_share(available, FEATURE_SHARE, FEATURE_RANGE),
        results=_share(available, RESULT_SHARE, RESULT_RANGE),
    )
