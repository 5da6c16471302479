"""Workers for engine jobs: napari's thread workers whose errors the widget shows itself."""

from napari.qt.threading import create_worker


def job(func, *args, **kwargs):
    """A worker for `func` whose errors the widget shows itself (see `SAM2Widget._start`)."""
    return create_worker(func, *args, _ignore_errors=True, **kwargs)
