"""The prompts file: which objects to segment and the clicks, boxes and masks that define them,
so a segmentation can be rerun headless, resumed in napari, or shared. A session file is the
same document with the log of what the user did (see `napari_sam2.session`).

A JSON document, version 2, in the frames' own pixel coordinates (x to the right, y down):

    {"format": "napari-sam2 prompts", "version": 2,
     "model": "sam2.1_hiera_tiny", "video_axis": "T", "frame_shape": [128, 160],
     "normalization": {"percentiles": [1, 99.8]},
     "objects": [{"id": 1, "name": "cell 1", "frames": {
         "0": {"points": [[52.0, 30.0, 1], [60.5, 41.0, 0]], "box": [30, 12, 70, 50]},
         "7": {"mask": {"size": [128, 160], "counts": [2051, 12, 148, 14, ...]}}}}]}

Points are [x, y, label] with label 1 (object) or 0 (background); a box is [x0, y0, x1, y1];
a mask replaces the other prompts of its frame. Masks are run-length encoded like COCO's
uncompressed RLE but over the mask flattened row by row (C order, unlike COCO's column
order): `counts` alternate runs of 0 and 1 starting with 0, `size` is [H, W].
Everything but `objects` may be null or left out. Version 2 adds, all optional: `checkpoint`
(the model file a session used), `image_size`, `fixed` (the index of every other leading
axis), `num_frames`, `reappear`, `size_cue` (whether masks were trimmed to each object's
half-maximum edge, see `napari_sam2.engine.size_cue`), `non_overlap` (whether tracked objects
were kept apart, see `napari_sam2.engine.non_overlap`), `snap_outlines` (whether tracked
masks' outlines were snapped to the image, see `napari_sam2.engine.outlines`),
`clicked_region` (whether a click's mask kept only the pieces its clicks lie on, see
`napari_sam2.engine.clicked_region`), `exclusive_clicks` (whether an object's clicked mask
left out the other objects' clicks on its frame, see `napari_sam2.engine.exclusive_clicks`),
`precision` (what the session's model ran in: float32,
bfloat16, bfloat16-encoder or bfloat16-heavy, see `napari_sam2.engine.precision`), per
object `colour` ("#rrggbb") and `parent`, `lineage`
({"daughter id": parent id}), `log` (a session's operations, read by `napari_sam2.session`)
and `labels_sha256` (of the labels the session held when saved). Version 1 files read as
version 2 without these.
"""

# the file's parts live in their own modules; this one keeps the names code imports from it
from .json_fields import loads_document
from .mask_runs import decode_mask, encode_mask
from .prompt_data import (
    FORMAT,
    MAX_FILE_BYTES,
    MAX_FRAME_PIXELS,
    MAX_FRAME_SIDE,
    MAX_OBJECT_ID,
    VERSION,
    VERSIONS,
    FramePrompts,
    Normalization,
    ObjectPrompts,
    Prompts,
)
from .prompts_reader import parse_mask, parse_prompts, read_prompts
from .prompts_writer import frame_document, prompts_document, write_prompts

__all__ = [
    "FORMAT",
    "MAX_FILE_BYTES",
    "MAX_FRAME_PIXELS",
    "MAX_FRAME_SIDE",
    "MAX_OBJECT_ID",
    "VERSION",
    "VERSIONS",
    "FramePrompts",
    "Normalization",
    "ObjectPrompts",
    "Prompts",
    "decode_mask",
    "encode_mask",
    "frame_document",
    "loads_document",
    "parse_mask",
    "parse_prompts",
    "prompts_document",
    "read_prompts",
    "write_prompts",
]
