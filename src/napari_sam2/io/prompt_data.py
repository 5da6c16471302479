"""The content of a prompts file as dataclasses (objects, their prompts per frame, the
normalization) and the format's name, versions and size limits (`prompts` describes the file)."""

from dataclasses import dataclass, field

import numpy as np

FORMAT = "napari-sam2 prompts"
VERSION = 2
VERSIONS = (1, 2)
# the largest label a label file holds (uint32); ids beyond it would wrap around
MAX_OBJECT_ID = 2**32 - 1
# a frame (or mask) larger than this is a corrupt file, not a microscope image
MAX_FRAME_SIDE = 1 << 16
MAX_FRAME_PIXELS = 1 << 28
MAX_FILE_BYTES = 1 << 30


@dataclass
class FramePrompts:
    """One object's prompts on one frame, in frame pixels: points (x, y, label), a box
    (x0, y0, x1, y1), or a mask (H, W) bool that stands alone."""

    points: list[tuple[float, float, int]] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = None

    def is_empty(self) -> bool:
        return not self.points and self.box is None and self.mask is None

    def __eq__(self, other) -> bool:
        if not isinstance(other, FramePrompts):
            return NotImplemented
        same_mask = (self.mask is None and other.mask is None) or (
            self.mask is not None
            and other.mask is not None
            and np.array_equal(self.mask, other.mask)
        )
        return self.points == other.points and self.box == other.box and same_mask


@dataclass
class ObjectPrompts:
    """One object: its label value (`id`), a name for people, and its prompts per frame."""

    id: int
    name: str = ""
    frames: dict[int, FramePrompts] = field(default_factory=dict)
    colour: str | None = None
    parent: int | None = None


@dataclass
class Normalization:
    """How intensities were mapped for the model: contrast limits, or percentiles of the
    stack (at most one of them)."""

    contrast_limits: tuple[float, float] | None = None
    percentiles: tuple[float, float] | None = None


# `napari_sam2.engine.precision.RESOLVED`, named here without importing torch (a test checks
# they agree)
SESSION_PRECISIONS = ("float32", "bfloat16", "bfloat16-encoder", "bfloat16-heavy")


# the Tracker settings a prompts or session file may record, each true or false (absent: not
# recorded, the model's default applies)
SETTING_CHOICES = (
    "reappear",
    "size_cue",
    "non_overlap",
    "snap_outlines",
    "clicked_region",
    "exclusive_clicks",
)


@dataclass
class Prompts:
    """The content of a prompts file."""

    objects: list[ObjectPrompts] = field(default_factory=list)
    model: str | None = None
    video_axis: str | int | None = None
    frame_shape: tuple[int, int] | None = None
    normalization: Normalization | None = None
    checkpoint: str | None = None
    image_size: int | None = None
    fixed: tuple[int, ...] | None = None
    num_frames: int | None = None
    reappear: bool | None = None
    size_cue: bool | None = None
    non_overlap: bool | None = None
    snap_outlines: bool | None = None
    clicked_region: bool | None = None
    exclusive_clicks: bool | None = None
    # the resolved precision a session ran in (`napari_sam2.engine.precision`)
    precision: str | None = None
    lineage: dict[int, int] = field(default_factory=dict)
    # SHA-256 of the label volume the session held when saved (C-order bytes, its dtype)
    labels_sha256: str | None = None
    # a session's operations as JSON values (checked by `napari_sam2.session.parse_log`);
    # None: no log, only the prompts above
    log: list | None = None

    def object(self, obj_id: int) -> ObjectPrompts:
        """The object with this id, added if new."""
        for obj in self.objects:
            if obj.id == obj_id:
                return obj
        self.objects.append(ObjectPrompts(obj_id))
        return self.objects[-1]
