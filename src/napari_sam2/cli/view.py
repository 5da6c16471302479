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


def run(args: argparse.Namespace) -> int:
    """Open napari with the stack as an image layer and the SAM 2 dock widget."""
    from ..io import open_stack

    stack = open_stack(args.stack) if args.stack else None
    try:
        import napari
    except ImportError as exc:
        raise SAM2Error("`napari-sam2 view` needs napari: pip install 'napari[all]'") from exc
    viewer = napari.Viewer()
    if stack is not None:
        rgb = stack.axes.endswith("S") and stack.shape[-1] in (3, 4)
        layer_axes = stack.axes[:-1] if rgb else stack.axes
        viewer.add_image(stack.data, name=stack.path.stem, rgb=rgb)
        viewer.dims.axis_labels = list(layer_axes)
    if args.sample:
        viewer.open_sample("napari-sam2", args.sample)
    viewer.window.add_plugin_dock_widget("napari-sam2", "SAM 2 segmentation")
    napari.run()
    return 0
