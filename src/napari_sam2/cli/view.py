"""`view`: napari with the SAM 2 widget, a stack or a sample."""

import argparse

from ..errors import SAM2Error


def add_parser(commands) -> None:
    view = commands.add_parser(
        "view", help="open napari with the SAM 2 widget, optionally with a stack or sample data"
    )
    view.add_argument("stack", nargs="?", metavar="STACK")
    view.add_argument(
        "--sample",
        choices=("timelapse", "zstack"),
        help="open a synthetic sample (cells over time, or nuclei through z)",
    )
    view.set_defaults(command=run)


def image_layer_options(stack) -> dict:
    """napari `add_image` keywords for a stack: its name, axis labels (so a z-stack shows Z,
    not T), colour, and scale and units from its pixel/voxel size (1 pixel where unknown)."""
    rgb = stack.axes.endswith("S") and stack.shape[-1] in (3, 4)
    layer_axes = stack.axes[:-1] if rgb else stack.axes
    scale = [stack.spacing.get(a, 1.0) if layer_axes.count(a) == 1 else 1.0 for a in layer_axes]
    options = dict(
        name=stack.path.stem,
        rgb=rgb,
        axis_labels=tuple(layer_axes),
        scale=scale,
        metadata={"path": str(stack.path), "spacing": dict(stack.spacing), "unit": stack.unit},
    )
    if stack.unit is not None:
        options["units"] = tuple(
            _napari_unit(stack.unit) if a in stack.spacing else "pixel" for a in layer_axes
        )
    return options


def _napari_unit(unit: str) -> str:
    # napari parses units with pint, which spells the micrometre "micrometer"
    return "micrometer" if unit == "µm" else unit


def run(args: argparse.Namespace) -> int:
    """Open napari with the stack as an image layer and the SAM 2 dock widget."""
    from ..io import open_stack

    stack = open_stack(args.stack) if args.stack else None
    try:
        import napari
    except ImportError as exc:
        raise SAM2Error(
            "`napari-sam2 view` needs napari and a Qt binding: pip install 'napari-sam2[qt]'"
        ) from exc
    viewer = napari.Viewer()
    if stack is not None:
        options = image_layer_options(stack)
        axis_labels = list(options["axis_labels"])
        try:
            viewer.add_image(stack.data, **options)
        except ValueError:  # a unit napari does not know: show the stack in pixels
            options.pop("units", None)
            options["scale"] = [1.0] * len(options["axis_labels"])
            viewer.add_image(stack.data, **options)
        except TypeError:  # a napari without per-layer axis labels and units
            for key in ("units", "axis_labels"):
                options.pop(key, None)
            viewer.add_image(stack.data, **options)
        viewer.dims.axis_labels = axis_labels
    if args.sample:
        viewer.open_sample("napari-sam2", args.sample)
    viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    napari.run()
    return 0
