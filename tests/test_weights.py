"""The weights registry: downloads through pooch from a local HTTP server serving a checkpoint
written here from a random-init model; truncated or broken downloads are removed and
reported; a cached file is used without the network."""

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from napari_sam2.errors import SAM2Error
from napari_sam2.model import MODEL_NAMES, build_model, weights

NAME = "sam2.1_hiera_tiny"
RELEASE = weights.REGISTRY[NAME].release


def write_random_checkpoint(path: Path, name: str = NAME) -> Path:
    """A `{"model": state_dict}` file of a randomly initialized model (any input size fits)."""
    torch.manual_seed(0)
    model = build_model(name, image_size=128)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, path)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


class _LyingHandler(_QuietHandler):
    """Promises the whole file, sends half of it, then hangs up: a broken connection."""

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True


@contextlib.contextmanager
def serve(directory: Path, handler=_QuietHandler) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 at an ephemeral port; yields the base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    """A folder laid out like the official site, holding one random-weight checkpoint."""
    root = tmp_path_factory.mktemp("mirror")
    write_random_checkpoint(root / RELEASE / f"{NAME}.pt")
    return root


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch):
    monkeypatch.delenv(weights.CACHE_ENV, raising=False)
    monkeypatch.delenv(weights.BASE_URL_ENV, raising=False)


def test_registry_lists_the_eight_official_files():
    assert set(weights.REGISTRY) == set(MODEL_NAMES)
    assert weights.download_url("sam2.1_hiera_large") == (
        "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt"
    )
    assert weights.download_url("sam2_hiera_base_plus") == (
        "https://dl.fbaipublicfiles.com/segment_anything_2/072824/sam2_hiera_base_plus.pt"
    )
    assert weights.download_url("sam2_hiera_tiny", "http://mirror/x/") == (
        "http://mirror/x/072824/sam2_hiera_tiny.pt"
    )
    assert all(entry.download_mb > 100 for entry in weights.REGISTRY.values())
    with pytest.raises(SAM2Error, match="ships with the package"):
        weights.download_url("demo")


def test_cache_directory_argument_then_environment_then_platform(tmp_path, monkeypatch):
    platform = weights.cache_directory()
    assert "napari-sam2" in str(platform)
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "env"))
    assert weights.cache_directory() == tmp_path / "env"
    assert weights.cache_directory(tmp_path / "arg") == tmp_path / "arg"


def test_download_validates_and_caches(mirror, tmp_path, capsys):
    cache = tmp_path / "cache"
    with serve(mirror) as url:
        path = weights.fetch_checkpoint(NAME, cache_dir=cache, base_url=url)
    assert path == cache / f"{NAME}.pt"
    assert path.read_bytes() == (mirror / RELEASE / f"{NAME}.pt").read_bytes()
    assert weights.is_cached(NAME, cache)
    assert url in capsys.readouterr().err  # the user sees what is downloaded
    # no server now: the cached file is used as is
    assert weights.fetch_checkpoint(NAME, cache_dir=cache, base_url=url) == path


def test_build_model_auto_uses_the_environment(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    with serve(mirror) as url:
        monkeypatch.setenv(weights.BASE_URL_ENV, url)
        model = build_model(NAME, checkpoint="auto", image_size=128)
    expected = torch.load(mirror / RELEASE / f"{NAME}.pt", weights_only=True)["model"]
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in expected.items())
    assert (tmp_path / "cache" / f"{NAME}.pt").is_file()


def test_truncated_file_is_detected_removed_and_reported(mirror, tmp_path):
    cut = tmp_path / "cut"
    data = (mirror / RELEASE / f"{NAME}.pt").read_bytes()
    (cut / RELEASE).mkdir(parents=True)
    (cut / RELEASE / f"{NAME}.pt").write_bytes(data[: len(data) // 3])
    cache = tmp_path / "cache"
    with serve(cut) as url, pytest.raises(SAM2Error) as error:
        weights.fetch_checkpoint(NAME, cache_dir=cache, base_url=url, progress=False)
    message = str(error.value)
    assert "not a valid sam2.1_hiera_tiny checkpoint" in message and "deleted" in message
    assert "truncated or corrupt" in message
    assert list(cache.iterdir()) == []


def test_wrong_model_in_the_file_is_removed(mirror, tmp_path):
    # served under the SAM 2.0 tiny name, the file holds SAM 2.1 tiny weights
    other = tmp_path / "other"
    release = weights.REGISTRY["sam2_hiera_tiny"].release
    (other / release).mkdir(parents=True)
    os.symlink(mirror / RELEASE / f"{NAME}.pt", other / release / "sam2_hiera_tiny.pt")
    cache = tmp_path / "cache"
    with serve(other) as url, pytest.raises(SAM2Error, match="does not hold sam2_hiera_tiny"):
        weights.fetch_checkpoint("sam2_hiera_tiny", cache_dir=cache, base_url=url, progress=False)
    assert list(cache.iterdir()) == []


def test_broken_connection_leaves_nothing(mirror, tmp_path):
    cache = tmp_path / "cache"
    with serve(mirror, _LyingHandler) as url, pytest.raises(SAM2Error) as error:
        weights.fetch_checkpoint(NAME, cache_dir=cache, base_url=url, progress=False)
    assert "transfer broke off" in str(error.value)
    assert not any(cache.iterdir())


def test_server_down_says_what_to_do_offline(tmp_path):
    with serve(tmp_path) as url:
        pass  # the port is closed again: nothing listens there
    with pytest.raises(SAM2Error) as error:
        weights.fetch_checkpoint(NAME, cache_dir=tmp_path / "cache", base_url=url, progress=False)
    message = str(error.value)
    assert f"{url}/{RELEASE}/{NAME}.pt" in message
    assert "--checkpoint" in message and weights.CACHE_ENV in message


def test_missing_file_on_the_server_reports_the_status(tmp_path):
    with serve(tmp_path) as url, pytest.raises(SAM2Error, match="HTTP 404"):
        weights.fetch_checkpoint(NAME, cache_dir=tmp_path / "cache", base_url=url, progress=False)


def test_damaged_cache_file_is_fetched_again(mirror, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"{NAME}.pt").write_bytes(b"PK\x03\x04 not really a zip")
    assert not weights.is_cached(NAME, cache)
    with serve(mirror) as url:
        path = weights.fetch_checkpoint(NAME, cache_dir=cache, base_url=url, progress=False)
    assert path.stat().st_size == (mirror / RELEASE / f"{NAME}.pt").stat().st_size


def test_unknown_model_lists_the_names(tmp_path):
    with pytest.raises(SAM2Error, match="sam2.1_hiera_tiny"):
        weights.fetch_checkpoint("sam3_hiera_huge", cache_dir=tmp_path)


def test_unwritable_cache_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SAM2Error, match=weights.CACHE_ENV):
        weights.fetch_checkpoint(NAME, cache_dir=blocker / "cache", base_url="http://127.0.0.1:9")
