"""What an image layer tells a new session: the tracker on the layer's view with its contrast
limits (or a saved session's normalization) and the model's name, and the pixel or voxel size
that label files record."""

import napari
import numpy as np

from ..engine import Tracker, VideoAxisView
from ..io.prompts import Normalization
from ..model import SAM2
from ..model.catalogue import is_known_model, size_cue_by_default
from ..session import Session
from .data_panel import axis_name


def layer_session(
    image: napari.layers.Image,
    view: VideoAxisView,
    model: SAM2,
    model_source: tuple[str | None, str | None],
    labels_out: np.ndarray | None = None,
    normalization: Normalization | None = None,
    precision: str = "auto",
) -> Session:
    """A session tracking `view` of `image` with `model` (whose name and checkpoint are
    `model_source`), writing into `labels_out` or, with None, into a label array of its own;
    intensities mapped by `normalization`, else the layer's contrast limits; in `precision`
    (`engine.precision`)."""
    limits = None if image.rgb else tuple(float(v) for v in image.contrast_limits)
    percentiles = None
    if normalization is not None:
        limits, percentiles = normalization.contrast_limits, normalization.percentiles
    along_z = axis_name(image, view.video_axis) == "Z"
    tracker = Tracker(
        model,
        view,
        contrast_limits=limits,
        **({} if percentiles is None else {"percentiles": percentiles}),
        labels_out=labels_out,
        precision=precision,
        # through z a nucleus spans one run of slices: once lost it is not found again
        reappear=not along_z,
        # through z, models that never learnt how a nucleus shrinks to its ends are helped
        # by its half-maximum edge (the catalogue says which)
        size_cue=size_cue_by_default(model.config.name, along_z),
    )
    name, checkpoint = model_source
    return Session(
        tracker,
        model_name=name if is_known_model(name) else None,
        checkpoint=checkpoint,
        video_axis=view.video_axis,
        fixed=tuple(view.fixed),
        normalization=normalization
        or (None if limits is None else Normalization(contrast_limits=limits)),
    )


def layer_voxel_size(
    image: napari.layers.Image, view: VideoAxisView, name: str
) -> tuple[dict[str, float] | None, str | None]:
    """The pixel/voxel size per label-file axis (`name` is the video axis's, "T" or "Z") and
    its unit, where known: from the file `napari-sam2 view` opened, else the layer's scale when
    it has units."""
    metadata = image.metadata or {}
    scale = [float(s) for s in image.scale]
    if "spacing" in metadata:
        spacing = {a: v for a, v in metadata["spacing"].items() if a in (name, "Y", "X")}
        return spacing or None, metadata.get("unit")
    units = [str(u) for u in getattr(image, "units", ())]
    if not units or units[-1] in ("pixel", "") or all(s == 1.0 for s in scale):
        return None, None
    spacing = {"Y": scale[-2], "X": scale[-1]}
    if view.video_axis is not None:
        spacing[name] = scale[view.video_axis]
    unit = "µm" if units[-1] == "micrometer" else units[-1]
    return spacing, unit
