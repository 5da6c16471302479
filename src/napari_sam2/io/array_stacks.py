"""Opening .npy arrays (memory-mapped or read plane by plane) and zarr or OME-Zarr stores
lazily, with their axes from the store's names or guessed from the shape."""

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import SAM2Error
from .file_array import FileArray
from .image_stack import COLOUR, PLANE, reason
from .voxel_size import Spacing, ome_zarr_spacing


def open_npy(path: Path) -> tuple[object, str]:
    """A .npy file's array, unread (memory-mapped, or read a plane at a time), and its guessed
    axes."""
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
            else:  # 2.0; 3.0 differs only in the header's text encoding
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
            offset = file.tell()
    except (ValueError, OSError, EOFError) as exc:
        raise SAM2Error(f"{path.name} is not a readable .npy array ({reason(exc)})") from exc
    if dtype.hasobject:
        raise SAM2Error(
            f"{path.name} is not a readable .npy array of pixels (it holds Python objects)"
        )
    if 0 in shape:
        raise SAM2Error(f"{path.name} holds no pixels (shape {shape})")
    axes = _guess_axes(shape)
    if fortran or len(shape) < 2:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    else:
        data = FileArray(path, offset, shape, dtype, 3 if axes.endswith(COLOUR) else 2)
    return data, axes


def _guess_axes(shape: tuple[int, ...]) -> str:
    if len(shape) < 2:
        return "Q" * len(shape)
    if len(shape) >= 4 and shape[-1] in (3, 4):
        return "Q" * (len(shape) - 3) + PLANE + COLOUR
    return "Q" * (len(shape) - 2) + PLANE


def _axis_letter(name: str) -> str:
    name = str(name).lower()
    known = {"t": "T", "time": "T", "z": "Z", "c": "C", "channel": "C", "y": "Y", "x": "X"}
    return known.get(name, "S" if name in ("s", "rgb", "sample") else "Q")


def open_zarr(path: Path) -> tuple[object, str, Spacing]:
    """A zarr array (a group's only array, or an OME-Zarr image's full resolution), its axes
    (from the store's dimension names, else guessed) and its voxel size where OME-Zarr gives
    one."""
    try:
        import zarr
    except ImportError as exc:
        raise SAM2Error("reading zarr stores needs the zarr package: pip install zarr") from exc
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:  # zarr raises many types for a folder that is no store
        raise SAM2Error(f"{path.name} is not a readable zarr store ({exc})") from exc
    names = None
    multiscale = None
    if not hasattr(node, "shape"):
        attrs = dict(node.attrs)
        multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        if multiscales:
            # OME-Zarr: the first dataset is the full resolution
            try:
                image = multiscale = multiscales[0]
                axes_meta = image.get("axes", [])
                names = [a["name"] if isinstance(a, Mapping) else a for a in axes_meta]
                node = node[image["datasets"][0]["path"]]
            except Exception as exc:  # metadata of the wrong shape, or a missing dataset
                raise SAM2Error(
                    f"{path.name}: its OME-Zarr metadata is broken ({reason(exc)})"
                ) from exc
        else:
            keys = sorted(node.array_keys())
            if len(keys) != 1:
                raise SAM2Error(
                    f"{path.name} is a zarr group with arrays {keys or 'none'}; give the path "
                    f"of one array, e.g. {path / (keys[0] if keys else 'ARRAY')}"
                )
            node = node[keys[0]]
    if names is None:
        # zarr 3 keeps dimension names in the metadata; zarr 2 arrays have no such field
        metadata = getattr(node, "metadata", None)
        names = getattr(metadata, "dimension_names", None) or node.attrs.get("_ARRAY_DIMENSIONS")
    if names and len(names) == len(node.shape) and all(names):
        axes = "".join(_axis_letter(n) for n in names)
    else:
        axes = _guess_axes(node.shape)
    scale = ome_zarr_spacing(multiscale, axes) if multiscale is not None else ({}, None)
    return node, axes, scale
