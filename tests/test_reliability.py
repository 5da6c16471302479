"""Bad inputs and faults: each becomes one clear SAM2Error (CLI: one line, exit status 1) or
correct behaviour, and loses nothing. One test per row of docs/reliability.md."""

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from napari_sam2.engine import FrameSource
from napari_sam2.errors import SAM2Error
from napari_sam2.io import open_stack, read_labels, video_frames, write_labels

STACK = np.random.default_rng(0).integers(0, 4000, (6, 64, 80)).astype(np.uint16)


def _truncated(tmp_path, name: str, fraction: float, **options):
    path = tmp_path / name
    tifffile.imwrite(path, STACK, **options)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _read_all(path):
    frames = video_frames(open_stack(path))
    return FrameSource(frames, 256), [frames[t] for t in range(len(frames))]


@pytest.mark.parametrize(
    "options",
    [
        dict(photometric="minisblack"),
        dict(imagej=True, metadata={"axes": "TYX"}),
        dict(photometric="minisblack", compression="zlib"),
        dict(imagej=True, metadata={"axes": "TYX"}, compression="zlib"),
    ],
    ids=["plain", "imagej", "plain-zlib", "imagej-zlib"],
)
@pytest.mark.parametrize("fraction", [0.001, 0.5, 0.97, 0.999])
def test_truncated_tiff_is_an_error_not_fewer_frames(tmp_path, options, fraction):
    path = _truncated(tmp_path, "cut.tif", fraction, **options)
    with pytest.raises(SAM2Error, match="cut.tif|frame"):
        _read_all(path)


def _damage_page(path, page_index: int, pattern: int = 0x5A) -> None:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[page_index]
        start, count = page.dataoffsets[0], page.databytecounts[0]
    data = bytearray(path.read_bytes())
    for i in range(start + 2, start + count):
        data[i] ^= pattern
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("imagej", [False, True])
def test_corrupted_compressed_pixels_are_an_error_when_read(tmp_path, imagej):
    path = tmp_path / "bad.tif"
    options = dict(imagej=True, metadata={"axes": "TYX"}) if imagej else {}
    tifffile.imwrite(path, STACK, compression="zlib", photometric="minisblack", **options)
    _damage_page(path, 2)
    stack = open_stack(path)  # the header is fine: the damage shows when frame 2 is decoded
    with pytest.raises(SAM2Error, match="frame 2 of the stack cannot be read"):
        FrameSource(video_frames(stack), 256).read(2)


def test_pages_of_another_shape(tmp_path):
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as tif:
        for frame in (STACK[0], STACK[1, :32], STACK[2]):
            tif.write(frame, photometric="minisblack")
    with pytest.raises(SAM2Error, match="page 1 is 32x80 uint16 but page 0 is 64x80"):
        open_stack(path)


def test_pages_written_one_by_one_are_one_stack(tmp_path):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        for frame in STACK[:3]:
            tif.write(frame, photometric="minisblack")
    frames = video_frames(open_stack(path))
    assert frames.shape == (3, 64, 80)
    np.testing.assert_array_equal(frames[2], STACK[2])


def test_frame_of_another_shape_from_an_array_like():
    class Ragged:
        shape, dtype, ndim = (3, 8, 8), np.dtype(np.uint8), 3

        def __getitem__(self, t):
            return np.zeros((8, 8) if t != 1 else (4, 8), np.uint8)

    source = FrameSource(Ragged(), 64, contrast_limits=(0, 1))
    with pytest.raises(SAM2Error, match="frame 1 has shape \\(4, 8\\)"):
        source.read(1)


@pytest.mark.parametrize("suffix", [".tif", ".npy"])
def test_file_truncated_while_it_is_read(tmp_path, suffix):
    """Pixels are read with file reads, not a memory map: a file that shrinks under the reader
    is an error message, never a SIGBUS."""
    path = tmp_path / f"stack{suffix}"
    if suffix == ".npy":
        np.save(path, STACK)
    else:
        tifffile.imwrite(path, STACK, photometric="minisblack")
    frames = video_frames(open_stack(path))
    np.testing.assert_array_equal(frames[5], STACK[5])
    with open(path, "r+b") as file:
        file.truncate(path.stat().st_size // 2)
    with pytest.raises(SAM2Error, match="became shorter while it was read"):
        frames[5]
    with pytest.raises(SAM2Error, match="truncated"):
        open_stack(path)


@pytest.mark.parametrize("shape", [(0, 8, 8), (3, 0, 8), (3, 8, 0)])
def test_empty_stacks(tmp_path, shape):
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros(shape, np.uint8))
    np.save(tmp_path / "empty.npy", np.zeros(shape, np.uint8))
    for name in ("empty.tif", "empty.npy"):
        with pytest.raises(SAM2Error):
            _read_all(tmp_path / name)


def test_one_frame_stack_is_a_one_frame_video(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", STACK[:1], photometric="minisblack")
    tifffile.imwrite(tmp_path / "image.tif", STACK[0], photometric="minisblack")
    for name in ("one.tif", "image.tif"):
        source, frames = _read_all(tmp_path / name)
        assert len(frames) == 1 and source.frame_tensor(0).shape == (3, 256, 256)


def test_nan_and_inf_stacks(tmp_path):
    stack = STACK.astype(np.float32)
    stack[1, :10] = np.nan
    stack[2, :5] = np.inf
    np.save(tmp_path / "some.npy", stack)
    source, _ = _read_all(tmp_path / "some.npy")
    with pytest.warns(UserWarning, match="NaN or infinite"):
        tensor = source.frame_tensor(1)
    assert torch.isfinite(tensor).all()
    np.save(tmp_path / "all.npy", np.full((2, 8, 8), np.nan, np.float32))
    with pytest.raises(SAM2Error, match="no finite values"):
        _read_all(tmp_path / "all.npy")


def test_unknown_extension_and_folder_given_as_file(tmp_path):
    (tmp_path / "stack.png").write_bytes(b"\x89PNG")
    with pytest.raises(SAM2Error, match="supported are"):
        open_stack(tmp_path / "stack.png")
    (tmp_path / "folder.tif").mkdir()
    with pytest.raises(SAM2Error):
        open_stack(tmp_path / "folder.tif")


@pytest.mark.parametrize("shape", [(2, 1, 1), (1, 1, 1), (3, 1, 9)])
def test_tiny_label_volumes_read_back(tmp_path, shape):
    labels = np.arange(np.prod(shape), dtype=np.uint16).reshape(shape)
    path = write_labels(tmp_path / "tiny.tif", labels, axes="TYX")
    back, axes = read_labels(path)
    assert axes == "TYX" and back.shape == shape
    np.testing.assert_array_equal(back, labels)
    frames = video_frames(open_stack(path))  # read back as a stack, too
    assert frames.shape == shape
    np.testing.assert_array_equal(frames[shape[0] - 1], labels[-1])


# --- the command line: one line on stderr, a non-zero exit status, nothing lost -------------


@pytest.fixture
def timelapse(tmp_path):
    """A 3-frame TYX TIFF and a prompts file clicking one cell on frame 0 (demo model)."""
    from napari_sam2.synthetic import moving_cells

    frames, _ = moving_cells(num_frames=3, height=48, width=64, centers=((14, 16),))
    stack = tmp_path / "cells.tif"
    tifffile.imwrite(stack, frames, imagej=True, metadata={"axes": "TYX"})
    prompts = tmp_path / "prompts.json"
    prompts.write_text(
        '{"format": "napari-sam2 prompts", "version": 1, "objects": '
        '[{"id": 1, "frames": {"0": {"points": [[19.0, 16.0, 1]]}}}]}'
    )
    return stack, prompts


def _segment(stack, prompts, out, *extra) -> int:
    from napari_sam2.cli import main

    argv = ["segment", stack, "--prompts", prompts, "--out", out, "--model", "demo", "--quiet"]
    return main([str(a) for a in [*argv, *extra]])


def _one_error_line(capsys, pattern: str) -> None:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("napari-sam2: error: "), lines
    assert re.search(pattern, lines[0]), lines[0]


def _our_temporaries(folder):
    return [p for p in folder.iterdir() if p.name.endswith(".napari-sam2-tmp")]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("signal_name, status, word", [("SIGTERM", 143, "terminated"),
                                                       ("SIGINT", 130, "interrupted")])  # fmt: skip
def test_a_signal_while_writing_keeps_the_old_output(
    tmp_path, timelapse, monkeypatch, capsys, signal_name, status, word
):
    import os
    import signal

    out = tmp_path / "labels.tif"
    out.write_bytes(b"the user's labels")

    def killed_while_writing(path, *args, **kwargs):
        Path(path).write_bytes(b"half a label volume")
        os.kill(os.getpid(), getattr(signal, signal_name))

    monkeypatch.setattr(tifffile, "imwrite", killed_while_writing)
    # A host process (napari, dask, Qt) may have changed SIGINT: Ctrl-C must still stop cleanly.
    host_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert _segment(*timelapse, out, "--overwrite") == status
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the host's handler restored
    finally:
        signal.signal(signal.SIGINT, host_sigint)
    assert word in capsys.readouterr().err
    assert out.read_bytes() == b"the user's labels"
    assert _our_temporaries(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_stale_temporaries_of_a_killed_run_are_removed(tmp_path):
    import os
    import subprocess
    import sys

    from napari_sam2.io.atomic import _host, check_writable

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = _host()
    other_host = "000000" if here != "000000" else "ffffff"
    stale = tmp_path / f".labels.tif.{here}-{dead.pid}-0123abcd.napari-sam2-tmp"
    probe = tmp_path / f".labels.tif.{here}-{dead.pid}-89abcdef.probe.napari-sam2-tmp"
    alive = tmp_path / f".labels.tif.{here}-{os.getppid()}-0123abcd.napari-sam2-tmp"
    # a run on another node of a cluster writing to a shared folder: its pid means nothing here
    elsewhere = tmp_path / f".labels.tif.{other_host}-{dead.pid}-0123abcd.napari-sam2-tmp"
    foreign = tmp_path / ".labels.tif.1234.tmp"  # not ours: never touched
    for path in (stale, probe, alive, elsewhere, foreign):
        path.write_bytes(b"x")
    check_writable(tmp_path / "other.tif")
    assert not stale.exists() and not probe.exists()
    assert alive.exists() and elsewhere.exists() and foreign.exists()


def test_a_250_character_output_name_is_written(tmp_path):
    name = "x" * 246 + ".tif"
    path = write_labels(tmp_path / name, np.ones((2, 4, 4), np.uint16))
    assert read_labels(path)[0].shape == (2, 4, 4)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    with pytest.raises(SAM2Error, match="too long"):
        write_labels(tmp_path / ("y" * 252 + ".tif"), np.ones((2, 4, 4), np.uint16))


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("which", ["stack", "prompts"])
def test_out_equal_to_an_input_is_refused(tmp_path, timelapse, capsys, which):
    stack, prompts = timelapse
    target = stack if which == "stack" else prompts
    before = target.read_bytes()
    assert _segment(stack, prompts, target, "--overwrite") == 1
    _one_error_line(capsys, "is the input")
    assert target.read_bytes() == before


@pytest.mark.parametrize(
    "options, pattern",
    [
        (["--image-size", "100"], "multiple of 32"),
        (["--image-size", "0"], "multiple of 32"),
        (["--image-size", "-64"], "multiple of 32"),
        (["--fix", "Z"], "AXIS=INDEX"),
        (["--fix", "Z=-1"], "AXIS=INDEX"),
        (["--fix", "Z=0"], "no Z axis|cannot be fixed"),
        (["--axis", "Q"], "no Q axis"),
        (["--axis", "7"], "no axis 7"),
        (["--axis", "X"], "part of the image"),
        (["--model", "sam3"], "unknown model"),
        (["--device", "cuda"], "not available"),
    ],
)
@pytest.mark.usefixtures("one_torch_thread")
def test_nonsense_options(tmp_path, timelapse, capsys, options, pattern):
    import torch

    if options == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "labels.tif"
    assert _segment(*timelapse, out, *options) == 1
    _one_error_line(capsys, pattern)
    assert not out.exists() and _our_temporaries(tmp_path) == []


@pytest.mark.parametrize("where", ["missing", "file", "unwritable"])
def test_output_folder_missing_or_unwritable(tmp_path, timelapse, capsys, monkeypatch, where):
    import os

    folder = tmp_path / "results"
    if where == "file":
        folder.write_text("a file")
    elif where == "unwritable":
        folder.mkdir()
        folder.chmod(0o500)
        if os.access(folder, os.W_OK):  # root writes anywhere: the file system says no instead
            opener = Path.open

            def refuse(self, mode="r", *args, **kwargs):
                if self.parent == folder and "x" in mode:
                    raise PermissionError(13, "Permission denied")
                return opener(self, mode, *args, **kwargs)

            monkeypatch.setattr(Path, "open", refuse)
    assert _segment(*timelapse, folder / "labels.tif") == 1
    _one_error_line(capsys, "output folder")
    if where == "unwritable":
        assert list(folder.iterdir()) == []


@pytest.mark.parametrize("kind", ["folder", "missing", "extension"])
def test_bad_stack_paths_on_the_command_line(tmp_path, timelapse, capsys, kind):
    _, prompts = timelapse
    stack = {"folder": tmp_path, "missing": tmp_path / "no.tif", "extension": prompts}[kind]
    assert _segment(stack, prompts, tmp_path / "labels.tif") == 1
    _one_error_line(capsys, "stack|supported|zarr")


# --- models and checkpoints ----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_state():
    from napari_sam2.model import build_model

    return build_model("demo").state_dict()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_checkpoint_with_nan_or_inf_weights_is_refused(tmp_path, demo_state, value):
    from napari_sam2.model import build_model, build_model_from_checkpoint
    from napari_sam2.model.config import config_to_dict
    from napari_sam2.model.demo import DEMO_CONFIG

    state = {k: v.clone() for k, v in demo_state.items()}
    for key in list(state)[:5]:
        if state[key].is_floating_point():
            state[key].fill_(value)
    path = tmp_path / "diverged.pt"
    torch.save({"model": state, "config": config_to_dict(DEMO_CONFIG)}, path)
    with pytest.raises(SAM2Error, match="NaN or infinite weights"):
        build_model_from_checkpoint(path)
    with pytest.raises(SAM2Error, match="NaN or infinite weights"):
        build_model("demo", checkpoint=path)


@pytest.mark.parametrize(
    "change, field",
    [
        ({"image_size": 33}, "image_size"),
        ({"image_size": 10**9}, "image_size"),
        ({"image_size": "1024"}, "image_size"),
        ({"d_model": 0}, "d_model"),
        ({"d_model": -64}, "d_model"),
        ({"decoder_heads": 0}, "decoder_heads"),
        ({"decoder_heads": 3}, "decoder_heads"),
        ({"mem_dim": 48}, "mem_dim"),
        ({"num_maskmem": 0}, "num_maskmem"),
        ({"memory_attention_layers": 10**6}, "memory_attention_layers"),
        ({"sigmoid_scale_for_mem_enc": float("nan")}, "sigmoid_scale_for_mem_enc"),
        ({"binarize_mask_from_pts_for_mem_enc": "yes"}, "binarize_mask_from_pts_for_mem_enc"),
        ({"trunk": {"embed_dim": 0}}, "trunk.embed_dim"),
        ({"trunk": {"num_heads": 3}}, "divisible"),
        ({"trunk": {"stages": [1, 1, 2]}}, "trunk.stages"),
        ({"trunk": {"stages": [1, 1, 10**6, 1]}}, "trunk.stages"),
        ({"trunk": {"global_att_blocks": [99]}}, "global_att_blocks"),
        ({"trunk": {"window_spec": [8, 4, 0, 4]}}, "window_spec"),
    ],
)
def test_checkpoint_with_an_impossible_configuration_is_refused(
    tmp_path, demo_state, change, field
):
    from napari_sam2.model import build_model_from_checkpoint
    from napari_sam2.model.config import config_to_dict
    from napari_sam2.model.demo import DEMO_CONFIG

    config = config_to_dict(DEMO_CONFIG)
    for key, value in change.items():
        if key == "trunk":
            config["trunk"].update(value)
        else:
            config[key] = value
    path = tmp_path / "odd.pt"
    torch.save({"model": demo_state, "config": config}, path)
    with pytest.raises(SAM2Error, match=f"impossible model configuration.*{re.escape(field)}"):
        build_model_from_checkpoint(path)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps", "gpu", "tpu:0"])
def test_a_device_this_machine_lacks(device):
    from napari_sam2.model import build_model

    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(SAM2Error, match="device"):
        build_model("demo", device=device)


@pytest.mark.parametrize("name", ["sam3", "", "demo.pt", "SAM2.1_HIERA_TINY"])
def test_unknown_model_names_through_the_api(name):
    from napari_sam2.model import build_model

    with pytest.raises(SAM2Error, match="unknown model .*choose one of"):
        build_model(name)


def test_folder_given_as_checkpoint(tmp_path):
    from napari_sam2.model import build_model, build_model_from_checkpoint

    with pytest.raises(SAM2Error, match="is a folder"):
        build_model_from_checkpoint(tmp_path)
    with pytest.raises(SAM2Error, match="is a folder"):
        build_model("demo", checkpoint=tmp_path)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_big_endian_tiff_reads_the_same_pixels(tmp_path, byteorder):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, STACK, byteorder=byteorder, photometric="minisblack")
    frames = video_frames(open_stack(path))
    np.testing.assert_array_equal(frames[4], STACK[4])


def test_disk_full_while_writing_keeps_the_old_output(tmp_path, monkeypatch):
    import errno

    out = tmp_path / "labels.tif"
    out.write_bytes(b"the user's labels")

    def disk_full(path, *args, **kwargs):
        Path(path).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", disk_full)
    with pytest.raises(SAM2Error, match="No space left on device"):
        write_labels(out, np.ones((2, 4, 4), np.uint16), overwrite=True)
    assert out.read_bytes() == b"the user's labels"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.tif"]


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize(
    "options, pattern",
    [
        (["--fix", "T=²"], "AXIS=INDEX"),  # a digit to str.isdigit, not to int()
        (["--fix", "T=１"], "AXIS=INDEX"),
        (["--axis", "²"], "has no ² axis"),
        (["--fix", "=3"], "AXIS=INDEX"),
    ],
)
def test_non_ascii_digits_in_options(tmp_path, timelapse, capsys, options, pattern):
    assert _segment(*timelapse, tmp_path / "labels.tif", *options) == 1
    _one_error_line(capsys, pattern)


def test_numpy_integer_image_size_and_a_weights_address_that_is_no_url():
    from napari_sam2.model import build_model, weights

    assert build_model("demo", image_size=np.int64(128)).image_size == 128
    with pytest.raises(SAM2Error, match="not a web address"):
        weights.download_url("sam2.1_hiera_tiny", "notaurl")


def test_corrupted_zarr_chunk_is_an_error_when_read(tmp_path):
    zarr = pytest.importorskip("zarr")
    array = zarr.open_array(
        str(tmp_path / "stack.zarr"), mode="w", shape=STACK.shape, chunks=(1, 64, 80),
        dtype=STACK.dtype, zarr_format=2,
    )  # fmt: skip
    array[:] = STACK
    chunk = tmp_path / "stack.zarr" / "3.0.0"
    chunk.write_bytes(b"not a compressed chunk")
    frames = video_frames(open_stack(tmp_path / "stack.zarr"))
    source = FrameSource(frames, 256, contrast_limits=(0, 4000))
    np.testing.assert_array_equal(source.read(2), STACK[2])
    with pytest.raises(SAM2Error, match="frame 3 of the stack cannot be read"):
        source.read(3)


def test_complex_pixels_are_refused(tmp_path):
    np.save(tmp_path / "complex.npy", STACK.astype(np.complex64))
    with pytest.raises(SAM2Error, match="not supported"):
        _read_all(tmp_path / "complex.npy")


@pytest.mark.parametrize("lost", [17, 59, 100, 300])
def test_tiff_that_lost_its_last_bytes(tmp_path, lost):
    """The pixels survive, the last page's directory does not: still a truncated file."""
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, STACK, imagej=True, metadata={"axes": "TYX"}, resolution=(2.0, 2.0))
    path.write_bytes(path.read_bytes()[:-lost])
    with pytest.raises(SAM2Error, match="truncated"):
        open_stack(path)


@pytest.mark.parametrize("value", [None, 3, "", 3.5])
def test_things_that_are_not_file_names(value):
    from napari_sam2.model import build_model, build_model_from_checkpoint

    calls = [
        lambda: open_stack(value),
        lambda: read_labels(value),
        lambda: write_labels(value, np.ones((1, 2, 2), np.uint8)),
        lambda: build_model_from_checkpoint(value),
    ]
    if value is not None:  # checkpoint=None means random weights
        calls.append(lambda: build_model("demo", checkpoint=value))
    for call in calls:
        with pytest.raises(SAM2Error, match="file name"):
            call()


def test_channels_alone_are_not_taken_for_time(tmp_path):
    path = tmp_path / "two_channels.tif"
    channels = np.stack([STACK[0], STACK[1]])
    tifffile.imwrite(path, channels, imagej=True, metadata={"axes": "CYX"})
    stack = open_stack(path)
    assert stack.axes == "CYX"
    with pytest.raises(SAM2Error, match="has channels \\(C\\) but no T or Z axis"):
        video_frames(stack)
    one = video_frames(stack, fixed={"C": 1})  # one image of channel 1
    assert one.shape == (1, 64, 80)
    np.testing.assert_array_equal(one[0], STACK[1])
    through = video_frames(stack, "C")  # asked for: the channels as frames
    assert through.shape == (2, 64, 80)


@pytest.mark.parametrize("name", ["labels.png", "labels", "labels.tif.bak"])
def test_label_output_that_is_no_tiff_name(tmp_path, timelapse, capsys, name):
    with pytest.raises(SAM2Error, match="must end in .tif or .tiff"):
        write_labels(tmp_path / name, np.ones((1, 4, 4), np.uint16))
    assert _segment(*timelapse, tmp_path / name) == 1  # refused before any work
    _one_error_line(capsys, "must end in .tif or .tiff")
    assert not (tmp_path / name).exists()
    write_labels(tmp_path / "LABELS.TIFF", np.ones((1, 4, 4), np.uint16))


@pytest.mark.parametrize(
    "multiscales",
    [
        [{"datasets": [{"path": "missing"}]}],
        [{"datasets": []}],
        ["not a table"],
        [{"axes": [{"no name": 1}], "datasets": [{"path": "0"}]}],
    ],
)
def test_broken_ome_zarr_metadata(tmp_path, multiscales):
    zarr = pytest.importorskip("zarr")
    root = zarr.open_group(str(tmp_path / "image.zarr"), mode="w", zarr_format=2)
    root.create_array("0", data=STACK)
    root.attrs["multiscales"] = multiscales
    with pytest.raises(SAM2Error, match="OME-Zarr metadata is broken"):
        open_stack(tmp_path / "image.zarr")


def test_names_too_long_for_the_file_system(tmp_path, timelapse, capsys):
    from napari_sam2.io import check_writable
    from napari_sam2.model import build_model_from_checkpoint

    long_name = "a" * 300 + ".tif"
    deep = tmp_path.joinpath(*["d" * 200] * 25) / "x.tif"  # each name legal, the path not
    for call in (
        lambda: open_stack(tmp_path / long_name),
        lambda: read_labels(tmp_path / long_name),
        lambda: check_writable(tmp_path / ("b" * 300) / "x.tif"),
        lambda: open_stack(deep),
        lambda: build_model_from_checkpoint(tmp_path / ("c" * 300 + ".pt")),
    ):
        with pytest.raises(SAM2Error, match="too long"):
            call()
    _, prompts = timelapse
    assert _segment(tmp_path / long_name, prompts, tmp_path / "labels.tif") == 1
    _one_error_line(capsys, "too long")


def test_a_file_system_error_left_over_is_one_line(tmp_path, timelapse, monkeypatch, capsys):
    import errno

    import napari_sam2.io as io

    def unreadable(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(io, "open_stack", unreadable)
    assert _segment(*timelapse, tmp_path / "labels.tif") == 1
    _one_error_line(capsys, "Permission denied \\(.*cells.tif\\)")
