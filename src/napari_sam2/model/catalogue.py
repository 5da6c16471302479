"""Every model the project knows, where its weights come from and its default input size.

The CLI, the widget, the session reader, the downloader and the builder all ask this module;
it imports no torch, so listing models or checking a name costs nothing.
"""

from dataclasses import dataclass

from ..errors import SAM2Error

OFFICIAL_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"
DEMO_NAME = "demo"


@dataclass(frozen=True)
class ModelEntry:
    """One model: its name, family ("sam2", "sam2.1" or "demo"), size, weights and input size.

    url is None for a model whose weights ship with the package. sha256 is None where no hash
    has been published: Meta publishes none for its checkpoints, so a download is checked by
    its parameter names and shapes instead.
    """

    name: str
    family: str
    size: str
    url: str | None
    sha256: str | None
    image_size: int
    shipped: bool
    description: str
    download_mb: int | None = None  # approximate, for listings only
    # whether tracking along Z trims masks to each object's half-maximum edge by default
    # (engine/size_cue.py): for a model that never learnt how a nucleus shrinks to its ends
    size_cue_along_z: bool = False
    # whether tracked objects are kept apart by default (engine/non_overlap.py): measured
    # better for the demo model; SAM 2's checkpoints track as the reference does
    non_overlap: bool = False
    # whether a click's mask keeps only the pieces its clicks lie on (engine/clicked_region.py)
    clicked_region: bool = False
    # whether an object's clicked mask leaves out other objects' clicks on the frame by
    # default (engine/exclusive_clicks.py): for a model that answers one click on one of two
    # touching cells with both
    exclusive_clicks: bool = False
    # whether tracked masks' outlines are snapped to the image by default (engine/outlines.py):
    # for a model whose masks are drawn at a quarter of a small input's resolution
    snap_outlines: bool = False
    # whether a snapped mask grows to the whole region at its level by default, up to 1.3
    # times the object's prompted area (engine/outlines.py): for a model that loses part of
    # a moving cell to where its memories had it
    grow_outlines: bool = False
    # whether tracked frames' memories follow the object's motion by default (engine/motion.py)
    follow_motion: bool = False
    # whether touching tracked masks are split again at their necks by default, with
    # non_overlap (engine/touching_cells.py)
    split_touching: bool = False

    @property
    def filename(self) -> str:
        return f"{self.name}.pt"

    @property
    def url_path(self) -> str | None:
        """The URL below the official base (e.g. "092824/sam2.1_hiera_tiny.pt"), so that a
        mirror with the same layout can serve the file."""
        if self.url is None:
            return None
        return self.url.removeprefix(OFFICIAL_BASE_URL).lstrip("/")

    @property
    def release(self) -> str | None:
        """The dated folder of the official release, e.g. "092824" for SAM 2.1."""
        if self.url_path is None:
            return None
        return self.url_path.rpartition("/")[0] or None


_SIZE_LETTERS = {"tiny": "T", "small": "S", "base_plus": "B+", "large": "L"}


def _official(family: str, size: str, release: str, download_mb: int) -> ModelEntry:
    name = f"{family}_hiera_{size}"
    version = "SAM 2.1" if family == "sam2.1" else "SAM 2"
    return ModelEntry(
        name=name,
        family=family,
        size=size,
        url=f"{OFFICIAL_BASE_URL}/{release}/{name}.pt",
        sha256=None,
        image_size=1024,
        shipped=False,
        description=f"{version} Hiera-{_SIZE_LETTERS[size]} (Meta's official checkpoint)",
        download_mb=download_mb,
    )


_OFFICIAL = (
    _official("sam2", "tiny", "072824", 156),
    _official("sam2", "small", "072824", 184),
    _official("sam2", "base_plus", "072824", 324),
    _official("sam2", "large", "072824", 898),
    _official("sam2.1", "tiny", "092824", 149),
    _official("sam2.1", "small", "092824", 176),
    _official("sam2.1", "base_plus", "092824", 309),
    _official("sam2.1", "large", "092824", 856),
)

CATALOGUE: dict[str, ModelEntry] = {entry.name: entry for entry in _OFFICIAL}
CATALOGUE[DEMO_NAME] = ModelEntry(
    name=DEMO_NAME,
    family="demo",
    size="demo",
    url=None,
    sha256=None,
    image_size=256,
    shipped=True,
    description="small model trained on synthetic cells, shipped with the package (offline)",
    download_mb=None,
    size_cue_along_z=True,
    non_overlap=True,
    clicked_region=True,
    snap_outlines=True,
    exclusive_clicks=True,
    grow_outlines=True,
    follow_motion=True,
    split_touching=True,
)

# the eight official names, in the order users see them
OFFICIAL_NAMES: tuple[str, ...] = tuple(entry.name for entry in _OFFICIAL)


def model_names() -> list[str]:
    """Every model name: the eight official ones, then "demo"."""
    return list(CATALOGUE)


def model_entry(name: str) -> ModelEntry:
    """The catalogue entry of `name`, or a SAM2Error naming the choices."""
    entry = CATALOGUE.get(name) if isinstance(name, str) else None
    if entry is None:
        raise SAM2Error(f"unknown model {name!r}; choose one of: {', '.join(CATALOGUE)}")
    return entry


def _entry_or_none(name: object) -> ModelEntry | None:
    return CATALOGUE.get(name) if isinstance(name, str) else None


def engine_default(name: str | None, setting: str) -> bool:
    """Whether the engine option `setting` (a field of `ModelEntry`: non_overlap,
    clicked_region, snap_outlines, grow_outlines, exclusive_clicks, follow_motion,
    split_touching) is on unless asked otherwise: as the model's catalogue entry says (a
    model by another name: never)."""
    entry = _entry_or_none(name)
    return entry is not None and bool(getattr(entry, setting))


def size_cue_by_default(name: str | None, along_z: bool) -> bool:
    """Whether tracking trims masks by the size cue unless asked otherwise: along Z for the
    models whose catalogue entry says so (a model by another name: never); never along T."""
    entry = _entry_or_none(name)
    return along_z and entry is not None and entry.size_cue_along_z


def non_overlap_by_default(name: str | None) -> bool:
    """Whether tracking keeps objects apart unless asked otherwise."""
    return engine_default(name, "non_overlap")


def clicked_region_by_default(name: str | None) -> bool:
    """Whether a click's mask keeps only the pieces its clicks lie on unless asked otherwise."""
    return engine_default(name, "clicked_region")


def follow_motion_by_default(name: str | None) -> bool:
    """Whether memories follow each object's motion unless asked otherwise."""
    return engine_default(name, "follow_motion")


def grow_outlines_by_default(name: str | None) -> bool:
    """Whether snapped outlines grow to the region at their level unless asked otherwise."""
    return engine_default(name, "grow_outlines")


def exclusive_clicks_by_default(name: str | None) -> bool:
    """Whether an object's clicked mask leaves out other objects' clicks unless asked otherwise."""
    return engine_default(name, "exclusive_clicks")


def snap_outlines_by_default(name: str | None) -> bool:
    """Whether tracked masks' outlines are snapped to the image unless asked otherwise."""
    return engine_default(name, "snap_outlines")


def is_known_model(name: object) -> bool:
    """Whether `name` is a model of the catalogue (for readers that report errors their way)."""
    return isinstance(name, str) and name in CATALOGUE
