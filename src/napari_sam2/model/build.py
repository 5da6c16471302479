"""Build a model by name or from a checkpoint file: the catalogue says what a name means,
`assemble` wires the network, `checkpoint` reads weights, `weights` downloads them.

The top of the model package: it imports those modules, none of them imports it.
"""

from pathlib import Path

import torch

from ..errors import SAM2Error
from .assemble import (  # noqa: F401  (re-exported: the parts builders are public)
    build_from_config,
    image_encoder_of,
    memory_attention_of,
    memory_encoder_of,
)
from .catalogue import DEMO_NAME, OFFICIAL_NAMES, model_entry
from .checkpoint import (
    check_finite,
    checkpoint_path,
    likely_model,
    load_checkpoint,
    read_checkpoint,
)
from .config import CONFIGS, SAM2Config
from .demo import DEMO_CONFIG, load_demo_state
from .devices import check_device
from .sam2 import SAM2


def build_model(
    name: str | SAM2Config,
    checkpoint: str | Path | None = None,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
) -> SAM2:
    """Build a catalogue model (or a custom config) in eval mode on `device`.

    checkpoint: None for random weights, a path to a `{"model": state_dict}` file, or
    "auto" for the official checkpoint from the weights registry. image_size builds the
    same architecture at another input size (weights are independent of it).
    The shipped "demo" model loads its own weights when checkpoint is None or "auto".
    """
    device = check_device(device)
    if isinstance(name, SAM2Config):
        config, entry = name, None
    else:
        config, entry = model_config(name), model_entry(name)
    if image_size is not None:
        config = config.at_image_size(image_size)
    model = build_from_config(config)
    if entry is not None and entry.shipped and checkpoint in (None, "auto"):
        state = load_demo_state()
        check_finite(state, entry.name)
        model.load_state_dict(state, strict=True)
    elif checkpoint is not None:
        load_checkpoint(model, _resolve_checkpoint(config, checkpoint))
    return model.to(device).eval()


def _resolve_checkpoint(config: SAM2Config, checkpoint: str | Path) -> Path:
    if str(checkpoint) == "auto":
        from .weights import fetch_checkpoint  # pooch is needed only for downloads

        return fetch_checkpoint(config.name)
    return checkpoint_path(checkpoint)


def build_model_from_checkpoint(
    checkpoint: str | Path,
    name: str | None = None,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
    keep_trained_size: bool = False,
) -> SAM2:
    """The model a checkpoint file holds, with its weights, in eval mode on `device`.

    The architecture comes from, in order: the configuration stored in the file (fine-tuned
    and trained models, see `napari_sam2.training`), `name`, the official name the file is
    called after (e.g. sam2.1_hiera_tiny.pt), or the official model its parameter shapes fit.
    image_size: None runs a stored configuration at the size it was trained at, an official
    model at 1024; keep_trained_size ignores image_size for a stored configuration (for
    callers whose size is a default rather than the user's request).
    """
    device = check_device(device)
    path = checkpoint_path(checkpoint)
    state, stored = read_checkpoint(path)
    if name is not None:
        model_entry(name)  # an unknown name is an error before anything is built
    if stored is not None:
        if name is not None and name not in (stored.name, DEMO_NAME):
            raise SAM2Error(
                f"checkpoint {path} holds a {stored.name} model, not {name}; leave the model "
                "name out to use the configuration stored in the file"
            )
        config = stored
    else:
        name = name or _official_name_of(path) or likely_model(state)
        if name is None:
            raise SAM2Error(
                f"checkpoint {path} stores no model configuration and fits no official SAM 2 "
                f"model; name its model ({', '.join(OFFICIAL_NAMES)})"
            )
        config = model_config(name)
    if image_size is not None and not (keep_trained_size and stored is not None):
        config = config.at_image_size(image_size)
    model = build_from_config(config)
    load_checkpoint(model, path, state)
    return model.to(device).eval()


def _official_name_of(path: Path) -> str | None:
    """The official model a file is named after (longest match first: "sam2.1_hiera_tiny"
    before "sam2_hiera_t...")."""
    for name in sorted(OFFICIAL_NAMES, key=len, reverse=True):
        if path.stem.startswith(name):
            return name
    return None


def model_config(name: str) -> SAM2Config:
    """The network configuration of a catalogue model name (a SAM2Error for any other)."""
    entry = model_entry(name)
    return DEMO_CONFIG if entry.name == DEMO_NAME else CONFIGS[entry.name]
