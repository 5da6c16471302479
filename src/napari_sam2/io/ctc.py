"""Cell Tracking Challenge result folders: `maskNNN.tif` per frame and `res_track.txt`.

A CTC track is one unbroken run of frames, so an object missing on some frames between its
first and last is split there: the run after a gap becomes a new track whose parent is the run
before it. Parents always end before their daughters begin.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SAM2Error
from .atomic import atomic_folder

RESULT_FILE = re.compile(r"^mask\d{3,4}\.tif$")
TRACK_FILE = "res_track.txt"
MAX_LABEL = np.iinfo(np.uint16).max


@dataclass(frozen=True)
class CTCTrack:
    """One line of res_track.txt: label, first and last frame, parent label (0: none)."""

    label: int
    begin: int
    end: int
    parent: int


def ctc_tracks(
    labels: np.ndarray, lineage: dict[int, int] | None = None
) -> tuple[np.ndarray, list[CTCTrack]]:
    """Split (T, H, W) object labels into CTC tracks.

    lineage: {daughter id: parent id} of the objects. Returns (labels relabelled so each track
    has its own id, uint16; the tracks). An object's first run keeps its id; runs after a gap
    get new ids with the previous run as parent. A parent that does not end before its
    daughter begins (or never appears) is dropped from the daughter's record.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise SAM2Error(f"CTC export needs (T, H, W) labels, got shape {labels.shape}")
    if labels.dtype.kind not in "iu" or (labels.size and labels.min() < 0):
        raise SAM2Error("CTC export needs non-negative integer labels")
    lineage = dict(lineage or {})
    present: dict[int, list[int]] = {}
    for t in range(labels.shape[0]):
        for obj in np.unique(labels[t]):
            if obj:
                present.setdefault(int(obj), []).append(t)
    next_id = max(present, default=0) + 1
    runs: dict[int, list[tuple[int, int, int]]] = {}  # object -> [(track label, begin, end)]
    for obj, frames in sorted(present.items()):
        breaks = [i + 1 for i in range(len(frames) - 1) if frames[i + 1] != frames[i] + 1]
        starts, ends = [0, *breaks], [*breaks, len(frames)]
        for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
            label = obj if k == 0 else next_id
            if k:
                next_id += 1
            runs.setdefault(obj, []).append((label, frames[s], frames[e - 1]))
    if next_id - 1 > MAX_LABEL:
        raise SAM2Error(f"{next_id - 1} tracks do not fit in the CTC format's uint16 masks")

    out = np.zeros(labels.shape, dtype=np.uint16)
    tracks = []
    for obj, obj_runs in runs.items():
        for k, (label, begin, end) in enumerate(obj_runs):
            if k:
                parent = obj_runs[k - 1][0]
            else:
                parent = _parent_before(runs.get(lineage.get(obj, 0), []), begin)
            tracks.append(CTCTrack(label, begin, end, parent))
            for t in range(begin, end + 1):
                out[t][labels[t] == obj] = label
    tracks.sort(key=lambda track: track.label)
    return out, tracks


def _parent_before(parent_runs: list[tuple[int, int, int]], begin: int) -> int:
    """The parent's last run that ends before `begin`, else 0."""
    before = [label for label, _, end in parent_runs if end < begin]
    return before[-1] if before else 0


def mask_name(t: int, num_frames: int) -> str:
    """`mask007.tif`, or `mask0007.tif` in stacks of more than 1000 frames."""
    return f"mask{t:04d}.tif" if num_frames > 1000 else f"mask{t:03d}.tif"


def check_ctc_folder(folder: str | Path, overwrite: bool = False) -> Path:
    """Raise a SAM2Error unless a CTC result can be written to `folder`; checked up front.

    An existing folder must be empty, or, with overwrite, hold only a CTC result.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SAM2Error(f"the CTC output {folder} is a file; give a folder")
    if not folder.parent.is_dir():
        raise SAM2Error(f"the folder {folder.parent} does not exist; create it first")
    if folder.is_dir():
        entries = sorted(p.name for p in folder.iterdir())
        if entries and not overwrite:
            raise SAM2Error(
                f"the CTC output folder {folder} exists and is not empty; choose another or "
                f"allow overwriting"
            )
        foreign = [name for name in entries if name != TRACK_FILE and not RESULT_FILE.match(name)]
        if foreign:
            raise SAM2Error(
                f"the CTC output folder {folder} holds {foreign[0]}, which is not a CTC "
                f"result file; it is not replaced, choose another folder"
            )
    if not os.access(folder.parent, os.W_OK):
        raise SAM2Error(f"cannot write to the folder {folder.parent}")
    return folder


def write_ctc(
    folder: str | Path,
    labels: np.ndarray,
    lineage: dict[int, int] | None = None,
    overwrite: bool = False,
) -> list[CTCTrack]:
    """Write (T, H, W) object labels and their lineage as a CTC result folder.

    The folder appears complete or not at all (written beside it, then renamed); an existing
    one is replaced only with overwrite and only if it holds nothing but a CTC result.
    Returns the tracks written.
    """
    import tifffile

    folder = check_ctc_folder(folder, overwrite)
    relabelled, tracks = ctc_tracks(labels, lineage)
    with atomic_folder(folder, "CTC folder", lambda f: check_ctc_folder(f, overwrite)) as temporary:
        temporary.mkdir()
        for t, plane in enumerate(relabelled):
            tifffile.imwrite(temporary / mask_name(t, len(relabelled)), plane)
        (temporary / TRACK_FILE).write_text(track_lines(tracks))
    return tracks


def track_lines(tracks: list[CTCTrack]) -> str:
    """The `L B E P` lines of a CTC track file, single spaces."""
    return "".join(f"{k.label} {k.begin} {k.end} {k.parent}\n" for k in tracks)


def write_ctc_ground_truth(
    folder: str | Path, labels: np.ndarray, lineage: dict[int, int] | None = None
) -> Path:
    """Known (T, H, W) labels and lineage (e.g. of a synthetic stack) as a CTC ground-truth
    folder: TRA/man_track.txt, TRA/man_trackNNN.tif and SEG/man_segNNN.tif on every frame, so
    an evaluator such as py-ctcmetrics can score a result folder against them."""
    import tifffile

    folder = Path(folder)
    relabelled, tracks = ctc_tracks(labels, lineage)
    (folder / "TRA").mkdir(parents=True)
    (folder / "SEG").mkdir()
    for t, plane in enumerate(relabelled):
        tifffile.imwrite(folder / "TRA" / f"man_track{t:03d}.tif", plane)
        tifffile.imwrite(folder / "SEG" / f"man_seg{t:03d}.tif", plane)
    (folder / "TRA" / "man_track.txt").write_text(track_lines(tracks))
    return folder
