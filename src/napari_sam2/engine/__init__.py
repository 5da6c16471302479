"""The engine: user arrays in, masks and label volumes out. The only layer that turns user
data into model input; napari and the CLI both call it."""

from .budgets import CacheBudgets
from .feature_cache import FeatureCache
from .frames import FrameSource
from .labels import LabelVolume
from .propagation_run import Progress, propagate_or_restore
from .stack_view import VideoAxisView
from .tiled_tracking import TiledTracker
from .tracker import Tracker

__all__ = [
    "CacheBudgets",
    "FeatureCache",
    "FrameSource",
    "LabelVolume",
    "Progress",
    "TiledTracker",
    "Tracker",
    "VideoAxisView",
    "propagate_or_restore",
]
