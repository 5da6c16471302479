"""Choosing the torch device: "auto" means CUDA, else Apple's MPS, else the CPU."""

from ..errors import SAM2Error


def resolve_device(choice: str) -> str:
    """The torch device for a --device choice: for "auto", cuda, else mps, else cpu."""
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if choice == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (choice == "cuda" and not cuda) or (choice == "mps" and not mps):
        raise SAM2Error(f"device {choice} is not available here; use --device cpu or auto")
    return choice
