"""The objects of a session as people see them: a label value, a name, a colour and, for
a cell that divided, its parent."""

from dataclasses import dataclass

# distinct colours for the first objects; later ones cycle
PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#46f0f0",
    "#f032e6",
    "#bcf60c",
    "#fabebe",
    "#008080",
)


@dataclass
class SessionObject:
    """One object: `id` is its label value; `parent` the object it divided from, if any."""

    id: int
    name: str = ""
    colour: str | None = None
    parent: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"object {self.id}"
        if self.colour is None:
            self.colour = PALETTE[(self.id - 1) % len(PALETTE)]
