"""The model catalogue: one list of names for every caller, no torch to read it, and a model
package whose builder and checkpoint reader no longer import each other."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from napari_sam2.errors import SAM2Error
from napari_sam2.model.catalogue import CATALOGUE, DEMO_NAME, model_entry, model_names

MODEL_DIR = Path(__file__).parents[1] / "src" / "napari_sam2" / "model"


def test_names_are_the_eight_official_models_and_the_demo():
    assert model_names() == [
        *(f"sam2_hiera_{s}" for s in ("tiny", "small", "base_plus", "large")),
        *(f"sam2.1_hiera_{s}" for s in ("tiny", "small", "base_plus", "large")),
        DEMO_NAME,
    ]
    demo = model_entry(DEMO_NAME)
    assert demo.shipped and demo.url is None and demo.family == "demo"
    tiny = model_entry("sam2.1_hiera_tiny")
    assert tiny.family == "sam2.1" and tiny.size == "tiny" and not tiny.shipped
    assert tiny.url.endswith("/092824/sam2.1_hiera_tiny.pt") and tiny.release == "092824"
    # Meta publishes no hashes: none is made up
    assert all(entry.sha256 is None for entry in CATALOGUE.values())


@pytest.mark.parametrize("name", ["sam2.1_hiera_huge", "", "DEMO", None, 3])
def test_unknown_name_lists_the_choices(name):
    with pytest.raises(SAM2Error, match="unknown model .*choose one of: sam2_hiera_tiny.*demo"):
        model_entry(name)


def test_every_entry_builds_at_its_catalogue_size():
    from napari_sam2.model import model_config

    for name, entry in CATALOGUE.items():
        config = model_config(name)
        assert config.name == name and config.image_size == entry.image_size


def test_reading_the_catalogue_imports_no_torch():
    code = (
        "import sys; from napari_sam2.model import model_names, model_entry; "
        "model_entry('demo'); assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _imports(module: str) -> set[str]:
    tree = ast.parse((MODEL_DIR / f"{module}.py").read_text())
    return {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    }


def test_no_import_circle_between_building_and_reading_checkpoints():
    # build is the top: nothing it uses imports it back, and reading a checkpoint never
    # imports the builder
    for module in ("assemble", "checkpoint", "weights", "demo", "catalogue", "config"):
        assert "build" not in _imports(module), module
    assert "checkpoint" not in _imports("assemble")
    assert "weights" not in _imports("checkpoint")
    assert _imports("catalogue") == set()
