"""The registry of the eight official checkpoints, downloaded on demand into a local cache.

Downloads go through pooch. Meta publishes no hashes we could check here, so a downloaded
file is trusted only after it reads as a checkpoint (safely, `weights_only=True`) holding
exactly the parameter names and shapes of its model; anything else is deleted, never loaded.
"""

import importlib.util
import logging
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SAM2Error
from .checkpoint import read_state_dict
from .config import CONFIGS, MODEL_NAMES

OFFICIAL_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"
CACHE_ENV = "NAPARI_SAM2_CACHE"
BASE_URL_ENV = "NAPARI_SAM2_WEIGHTS_URL"
# large enough that the progress bar and the Python loop cost nothing next to the network
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30


@dataclass(frozen=True)
class Checkpoint:
    """One official checkpoint: its model, where it lives under the base URL, its size."""

    name: str
    release: str  # the dated folder of the release, e.g. "092824" for SAM 2.1
    size_mb: int  # approximate, for listings only; never used to judge a file

    @property
    def filename(self) -> str:
        return f"{self.name}.pt"

    def url(self, base_url: str | None = None) -> str:
        base = base_url or os.environ.get(BASE_URL_ENV) or OFFICIAL_BASE_URL
        return f"{base.rstrip('/')}/{self.release}/{self.filename}"


REGISTRY: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint("sam2_hiera_tiny", "072824", 156),
        Checkpoint("sam2_hiera_small", "072824", 184),
        Checkpoint("sam2_hiera_base_plus", "072824", 324),
        Checkpoint("sam2_hiera_large", "072824", 898),
        Checkpoint("sam2.1_hiera_tiny", "092824", 149),
        Checkpoint("sam2.1_hiera_small", "092824", 176),
        Checkpoint("sam2.1_hiera_base_plus", "092824", 309),
        Checkpoint("sam2.1_hiera_large", "092824", 856),
    )
}
assert set(REGISTRY) == set(MODEL_NAMES)


def registry_entry(name: str) -> Checkpoint:
    """The registry entry of an official model name, or a SAM2Error listing the names."""
    if name not in REGISTRY:
        raise SAM2Error(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}")
    return REGISTRY[name]


def cache_directory(path: str | Path | None = None) -> Path:
    """Where checkpoints are kept: `path`, else $NAPARI_SAM2_CACHE, else the platform cache."""
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import pooch

    return Path(pooch.os_cache("napari-sam2"))


def cached_path(name: str, cache: str | Path | None = None) -> Path:
    """The file a model's checkpoint has (or would have) in the cache."""
    return cache_directory(cache) / registry_entry(name).filename


def is_cached(name: str, cache: str | Path | None = None) -> bool:
    """Whether the cache holds a plausible checkpoint of `name` (a cheap check, no loading)."""
    return _looks_complete(cached_path(name, cache))


def _looks_complete(path: Path) -> bool:
    # a torch checkpoint is a zip whose directory sits at the end of the file, so opening it
    # catches an empty or truncated file without reading the weights
    try:
        if path.stat().st_size == 0:
            return False
        with zipfile.ZipFile(path):
            return True
    except (OSError, zipfile.BadZipFile):
        return False


def fetch_checkpoint(
    name: str,
    cache_dir: str | Path | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> Path:
    """The path of the official checkpoint of model `name`, downloaded first if not cached.

    cache_dir: see `cache_directory()`; base_url: replaces the official address (also
    $NAPARI_SAM2_WEIGHTS_URL), e.g. a mirror. A fresh download is validated against the
    model's parameter names and shapes, and deleted if it does not fit.
    """
    entry = registry_entry(name)
    path = cached_path(name, cache_dir)
    if _looks_complete(path):
        return path
    url = entry.url(base_url)
    if path.exists():
        # left behind by an interrupted copy, or damaged since: fetch it again
        path.unlink()
    _download(url, path, progress)
    try:
        validate_checkpoint(path, name)
    except SAM2Error as exc:
        path.unlink(missing_ok=True)
        raise SAM2Error(
            f"the file downloaded from {url} is not a valid {name} checkpoint and was "
            f"deleted ({exc}); try again, or download it yourself and pass its path as the "
            f"checkpoint"
        ) from exc
    return path


def _download(url: str, path: Path, progress: bool) -> None:
    import pooch
    import requests

    offline_hint = (
        f"without internet, download {url} on another machine and pass the file as the "
        f"checkpoint (CLI: --checkpoint FILE), or copy it to {path} (the cache folder is "
        f"set by ${CACHE_ENV}); or try the small demo model shipped with the package "
        f"(CLI: --model demo)"
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SAM2Error(
            f"cannot create the weights cache folder {path.parent} ({exc.strerror}); "
            f"set ${CACHE_ENV} to a writable folder"
        ) from exc
    show_bar = progress and importlib.util.find_spec("tqdm") is not None
    if progress:
        print(f"downloading {url} to {path}", file=sys.stderr)
    downloader = pooch.HTTPDownloader(
        progressbar=show_bar, chunk_size=CHUNK_BYTES, timeout=TIMEOUT_S
    )
    logger = pooch.get_logger()
    level = logger.level
    # pooch would advise pinning the file's hash; we validate the contents instead
    logger.setLevel(logging.WARNING)
    try:
        # pooch writes to a temporary file beside `path` and renames it only when complete
        pooch.retrieve(
            url, known_hash=None, fname=path.name, path=path.parent, downloader=downloader
        )
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise SAM2Error(f"downloading {url} failed (HTTP {status}); {offline_hint}") from exc
    except requests.exceptions.RequestException as exc:
        reason = type(exc).__name__
        raise SAM2Error(
            f"downloading {url} failed ({reason}: no network, or the transfer broke off); "
            f"{offline_hint}"
        ) from exc
    except OSError as exc:
        raise SAM2Error(
            f"saving the download of {url} to {path} failed ({exc}); set ${CACHE_ENV} to a "
            f"folder with enough free space"
        ) from exc
    finally:
        logger.setLevel(level)


def validate_checkpoint(path: str | Path, name: str) -> None:
    """Raise a SAM2Error unless `path` reads safely as a checkpoint that fits model `name`."""
    from .build import build_from_config

    state = read_state_dict(path)
    with torch.device("meta"):
        expected = build_from_config(CONFIGS[name]).state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(
        k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)
    )
    problems = [
        f"{label} {', '.join(keys[:2])}{' ...' if len(keys) > 2 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("resized", reshaped))
        if keys
    ]
    if problems:
        raise SAM2Error(f"{path} does not hold {name} weights: {'; '.join(problems)}")
