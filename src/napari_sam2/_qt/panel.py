"""The base of the dock widget's panels. A panel is one section of the widget in its own
module: it owns its Qt controls and talks to the session, never to other panels.

To add a panel: subclass `Panel` in a new module of `_qt/`, build its controls in
`__init__(host)`, react to `session_started` (a new session: image, axis or model changed,
or a session file was loaded) and `refresh` (the session changed), run slow work with
`host.run_job`, and add it with `SAM2Widget.add_panel` (or to `SAM2Widget.PANELS`).
"""

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QGroupBox

if TYPE_CHECKING:
    from ..session import Session
    from .widget import SAM2Widget


class Panel(QGroupBox):
    """One titled section of the dock widget; `host` gives the viewer, the current session
    (None until a model and an image are chosen), `run_job`, `say` and `busy`."""

    title = ""

    def __init__(self, host: "SAM2Widget") -> None:
        super().__init__(self.title)
        self.host = host

    @property
    def session(self) -> "Session | None":
        return self.host.session

    def session_started(self, session: "Session") -> None:
        """A new session replaced the previous one."""

    def refresh(self) -> None:
        """The session changed (objects, prompts or labels): show it."""
