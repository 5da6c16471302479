"""A result kept for as long as the same input tensors come back.

Out of training, a frame's clicks and its objects ask again for what depends on the frame
alone (the decoder's high-resolution maps in block order, memory attention's first
self-attention); the tensors' identity says it is the same frame.
"""

import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import torch

T = TypeVar("T")


class KeptResult(Generic[T]):
    """One result and weak references to the tensors it was computed from."""

    def __init__(self) -> None:
        # (weak refs, tag, result) in one tuple: a thread reading it never mixes two entries
        self._entry: tuple[tuple[weakref.ref, ...], Hashable, T] | None = None

    def get(
        self, inputs: Sequence[torch.Tensor], compute: Callable[[], T], tag: Hashable = None
    ) -> T:
        """The kept result when `inputs` are the very tensors of last time and `tag` is equal
        (e.g. the autocast in force), else `compute()`, kept in its place."""
        entry = self._entry
        if (
            entry is None
            or entry[1] != tag
            or len(entry[0]) != len(inputs)
            or any(ref() is not x for ref, x in zip(entry[0], inputs, strict=True))
        ):
            entry = (tuple(weakref.ref(x) for x in inputs), tag, compute())
            self._entry = entry
        return entry[2]
