"""The npe2 manifest ships in the package, validates, and names callables that exist."""

import importlib

from npe2 import PluginManifest


def test_manifest_validates_and_its_commands_import():
    manifest = PluginManifest.from_distribution("napari-sam2")
    assert manifest.name == "napari-sam2"
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert {w.command for w in manifest.contributions.widgets} <= set(commands)
    assert {s.command for s in manifest.contributions.sample_data} <= set(commands)
    for python_name in commands.values():
        module, _, attribute = python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute))


def test_sample_data_are_the_synthetic_stacks_with_their_axes():
    from napari_sam2 import _sample_data, synthetic

    ((data, meta, kind),) = _sample_data.timelapse()
    assert kind == "image" and meta["axis_labels"] == ("T", "Y", "X")
    assert (data == synthetic.timelapse().frames).all()
    ((data, meta, kind),) = _sample_data.zstack()
    assert meta["axis_labels"] == ("Z", "Y", "X") and data.ndim == 3
