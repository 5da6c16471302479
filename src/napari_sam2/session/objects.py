"""The objects of a session as people see them: a label value, a name, a colour and, for
a cell that divided, its parent."""

from dataclasses import dataclass


@dataclass
class SessionObject:
    """One object: `id` is its label value; `colour` ("#rrggbb") how a viewer shows it, if
    known; `parent` the object it divided from, if any."""

    id: int
    name: str = ""
    colour: str | None = None
    parent: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"object {self.id}"
