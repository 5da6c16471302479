"""Packaging: the engine and the command line install and run without napari or Qt (a cluster
node needs neither), and every package the library imports is declared."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "src" / "napari_sam2"
GUI = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy")
# imported only where present, with a fallback or an install hint (networkx comes with geff)
OPTIONAL = {"zarr", "tqdm", "napari", "geff", "networkx"}
IMPORT_TO_DISTRIBUTION = {"skimage": "scikit-image", "distributed": "dask", "dask": "dask"}

HEADLESS = f"""
import importlib.abc, sys
class NoGui(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {GUI!r}:
            raise ImportError(f"{{name}} is not installed (blocked by the test)")
sys.meta_path.insert(0, NoGui())
import napari_sam2.cli, napari_sam2.engine, napari_sam2.io, napari_sam2.model
from napari_sam2.cli import main
out = sys.argv[1]
assert main(["sample", out]) == 0
code = main(["segment", out + "/timelapse.tif", "--prompts", out + "/prompts.json",
             "--out", out + "/labels.tif", "--model", "demo", "--quiet"])
assert code == 0, code
assert main(["view", out + "/timelapse.tif"]) == 1  # napari missing: one line, exit 1
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {GUI!r})
assert not loaded, loaded
print("headless ok")
"""


def test_engine_and_cli_run_without_napari_or_qt(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", HEADLESS, str(tmp_path / "sample")],
        capture_output=True,
        text=True,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "headless ok" in result.stdout
    assert "napari-sam2: error: `napari-sam2 view` needs napari" in result.stderr
    assert (tmp_path / "sample" / "labels.tif").is_file()


def _declared() -> tuple[set[str], dict[str, list[str]]]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    name = lambda requirement: requirement.split(";")[0].split("[")[0].split(">")[0]  # noqa: E731
    required = {
        name(r).split("=")[0].split("<")[0].strip().lower() for r in project["dependencies"]
    }
    extras = {
        k: [name(r).strip().lower() for r in v] for k, v in project["optional-dependencies"].items()
    }
    return required, extras


def _third_party_imports(skip_gui: bool) -> set[str]:
    roots = set()
    for path in PACKAGE.rglob("*.py"):
        if skip_gui and "_qt" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    return roots - set(sys.stdlib_module_names) - {"napari_sam2"}


def test_every_import_is_declared_and_gui_packages_are_extras():
    required, extras = _declared()
    for module in _third_party_imports(skip_gui=True) - OPTIONAL:
        assert IMPORT_TO_DISTRIBUTION.get(module, module).lower() in required, module
    assert not required & {g.lower() for g in GUI}, "napari or Qt in the core dependencies"
    assert "napari" in extras["napari"] and "pyqt6" in extras["qt"]
    assert "geff" in extras["geff"] and "geff" in extras["testing"]
