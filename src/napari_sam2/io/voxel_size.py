"""Physical pixel and voxel size: read from ImageJ, OME-TIFF and OME-Zarr metadata, written
into label TIFFs so that they read back.

Sizes are kept per axis letter (Z, Y, X) in one unit: lengths in a known unit are converted to
micrometres ("µm"); a file without calibration gives no sizes at all.
"""

import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping

MICRON = "µm"
# length units as ImageJ, OME and OME-Zarr spell them, in micrometres
_MICROMETRES = {
    "m": 1e6,
    "meter": 1e6,
    "metre": 1e6,
    "cm": 1e4,
    "centimeter": 1e4,
    "mm": 1e3,
    "millimeter": 1e3,
    "µm": 1.0,
    "μm": 1.0,
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "\\u00b5m": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "å": 1e-4,
    "angstrom": 1e-4,
    "pm": 1e-6,
    "picometer": 1e-6,
}
# ImageJ's names for "no calibration"
_UNCALIBRATED = {"", "pixel", "pixels", "px"}

Spacing = tuple[dict[str, float], str | None]


def _size(value: object) -> float | None:
    try:
        size = float(value)
    except (TypeError, ValueError):
        return None
    return size if math.isfinite(size) and size > 0 else None


def in_one_unit(sizes: Mapping[str, tuple[float, str | None]]) -> Spacing:
    """{axis: (size, unit)} as ({axis: size}, unit): known lengths in µm; otherwise only the
    axes that share the X axis's (or the first axis's) unit."""
    sizes = {a: (v, (u or "").strip()) for a, (v, u) in sizes.items() if _size(v) is not None}
    sizes = {a: (v, u) for a, (v, u) in sizes.items() if u.lower() not in _UNCALIBRATED}
    if not sizes:
        return {}, None
    if all(u.lower() in _MICROMETRES for _, u in sizes.values()):
        return {
            a: float(f"{float(v) * _MICROMETRES[u.lower()]:.9g}") for a, (v, u) in sizes.items()
        }, MICRON
    unit = sizes.get("X", next(iter(sizes.values())))[1]
    return {a: float(v) for a, (v, u) in sizes.items() if u == unit}, unit


def tiff_spacing(tif, axes: str) -> Spacing:
    """Pixel and voxel size of a tifffile.TiffFile whose first series has `axes`."""
    try:
        if tif.is_ome and tif.ome_metadata:
            return _ome_xml_spacing(tif.ome_metadata)
        page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
        x = _resolution(page.tags.get("XResolution"))
        y = _resolution(page.tags.get("YResolution"))
        if tif.is_imagej:
            meta = tif.imagej_metadata or {}
            unit = str(meta.get("unit", ""))
            sizes = {"X": (x, unit), "Y": (y, unit)}
            if "Z" in axes:
                sizes["Z"] = (meta.get("spacing"), unit)
            return in_one_unit(sizes)
        unit_tag = page.tags.get("ResolutionUnit")
        # 3 = centimetre; an inch unit is a print resolution (dpi), not a microscope's
        if unit_tag is not None and int(unit_tag.value) == 3:
            return in_one_unit({"X": (x, "cm"), "Y": (y, "cm")})
    except (AttributeError, KeyError, TypeError, ValueError, ElementTree.ParseError):
        pass  # damaged calibration metadata: the pixels are still usable
    return {}, None


def _resolution(tag) -> float | None:
    """Pixel size from a resolution tag (pixels per unit, a rational)."""
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, tuple) and len(value) == 2:
        pixels, units = value
        size = _size(units / pixels) if pixels else None
    else:
        size = _size(1.0 / float(value)) if float(value) else None
    if size is None or size == 1.0:  # tifffile writes 1 pixel per unit when nothing is known
        return None
    # a rational tag approximates the calibration: keep the digits it was given with
    return float(f"{size:.9g}")


def _ome_xml_spacing(xml: str) -> Spacing:
    root = ElementTree.fromstring(xml)
    pixels = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return {}, None
    sizes = {
        axis: (pixels.get(f"PhysicalSize{axis}"), pixels.get(f"PhysicalSize{axis}Unit", "µm"))
        for axis in "ZYX"
    }
    return in_one_unit(sizes)


def ome_zarr_spacing(multiscale: Mapping, letters: str) -> Spacing:
    """Pixel and voxel size of the full-resolution level of an OME-Zarr multiscale, whose
    axes have the one-letter names `letters`."""
    try:
        scale = [1.0] * len(letters)
        transforms = [
            *multiscale["datasets"][0].get("coordinateTransformations", []),
            *multiscale.get("coordinateTransformations", []),
        ]
        found = False
        for transform in transforms:
            if transform.get("type") == "scale" and len(transform["scale"]) == len(letters):
                scale = [a * float(b) for a, b in zip(scale, transform["scale"], strict=True)]
                found = True
        if not found:
            return {}, None
        axes = multiscale.get("axes", [])
        units = [a.get("unit") if isinstance(a, Mapping) else None for a in axes]
        units += [None] * (len(letters) - len(units))
        sizes = {
            letter: (size, unit or MICRON)
            for letter, size, unit in zip(letters, scale, units, strict=False)
            if letter in "ZYX"
        }
        return in_one_unit(sizes)
    except (AttributeError, KeyError, IndexError, TypeError, ValueError):
        return {}, None


def imagej_unit(unit: str | None) -> str | None:
    """The unit as ImageJ writes it ("micron" for µm, its metadata being ASCII)."""
    if unit is None:
        return None
    return "micron" if _MICROMETRES.get(unit.lower()) == 1.0 else unit
