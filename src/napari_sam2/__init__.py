"""napari-sam2: SAM 2 / SAM 2.1 video segmentation for microscopy stacks."""

__version__ = "0.1.0.dev0"
