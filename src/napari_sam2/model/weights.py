"""The official checkpoints of the model catalogue, downloaded on demand into a local cache.

Downloads go through pooch. Meta publishes no hashes for its checkpoints, so a downloaded
file is trusted only after it reads as a checkpoint (safely, `weights_only=True`) holding
exactly the parameter names and shapes of its model, all finite (and its sha256 where the
catalogue pins one); anything else is deleted, never loaded.
"""

import importlib.util
import logging
import os
import sys
import zipfile
from pathlib import Path

from ..errors import SAM2Error
from .assemble import parameter_shapes
from .catalogue import CATALOGUE, ModelEntry, model_entry
from .checkpoint import check_finite, read_state_dict
from .config import CONFIGS

CACHE_ENV = "NAPARI_SAM2_CACHE"
BASE_URL_ENV = "NAPARI_SAM2_WEIGHTS_URL"
# large enough that the progress bar and the Python loop cost nothing next to the network
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 30


# the official models, by name (the demo model ships with the package: nothing to download)
REGISTRY: dict[str, ModelEntry] = {n: e for n, e in CATALOGUE.items() if e.url is not None}


def registry_entry(name: str) -> ModelEntry:
    """The catalogue entry of a downloadable model, or a SAM2Error listing the choices."""
    entry = model_entry(name)
    if entry.url is None:
        raise SAM2Error(
            f"model {name!r} ships with the package and has nothing to download; the "
            f"downloadable models are: {', '.join(REGISTRY)}"
        )
    return entry


def download_url(name: str, base_url: str | None = None) -> str:
    """Where model `name` is downloaded from: its official address, or the same path under
    `base_url` (or $NAPARI_SAM2_WEIGHTS_URL), a mirror laid out like the official site."""
    entry = registry_entry(name)
    base = base_url or os.environ.get(BASE_URL_ENV)
    if not base:
        return entry.url
    if not base.startswith(("http://", "https://", "ftp://")):
        raise SAM2Error(
            f"the weights address {base!r} is not a web address; give one starting with "
            f"https:// (--url or ${BASE_URL_ENV})"
        )
    return f"{base.rstrip('/')}/{entry.url_path}"


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
    url = download_url(name, base_url)
    if path.exists():
        # left behind by an interrupted copy, or damaged since: fetch it again
        path.unlink()
    _download(url, path, progress, entry.sha256)
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


def _download(url: str, path: Path, progress: bool, sha256: str | None = None) -> None:
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
            url,
            known_hash=f"sha256:{sha256}" if sha256 else None,
            fname=path.name,
            path=path.parent,
            downloader=downloader,
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
    except ValueError as exc:  # pooch: the hash differs from the pinned one
        raise SAM2Error(
            f"the file downloaded from {url} is not the published {path.stem} checkpoint "
            f"({exc}); try again later, or download it yourself"
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
    state = read_state_dict(path)
    expected = parameter_shapes(CONFIGS[name])
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(state) if expected[k] != tuple(state[k].shape))
    problems = [
        f"{label} {', '.join(keys[:2])}{' ...' if len(keys) > 2 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("resized", reshaped))
        if keys
    ]
    if problems:
        raise SAM2Error(f"{path} does not hold {name} weights: {'; '.join(problems)}")
    check_finite(state, path)
