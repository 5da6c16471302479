"""Choosing the torch device: "auto" means CUDA, else Apple's MPS, else the CPU; a device
this machine does not have is a clear error, not a crash deep inside torch."""

from ..errors import SAM2Error


def resolve_device(choice: str) -> str:
    """The torch device for a --device choice: for "auto", cuda, else mps, else cpu."""
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if choice == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    check_device(choice)
    return choice


def check_device(device):
    """`device` (a name such as "cuda:1" or a torch.device) as a torch.device, or a SAM2Error
    saying why this machine cannot use it."""
    import torch

    try:
        found = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise SAM2Error(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from exc
    if found.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SAM2Error(
                f"device {device} is not available here: this machine (or this torch build) "
                "has no CUDA GPU; use the CPU (--device cpu or auto)"
            )
        if found.index is not None and found.index >= count:
            raise SAM2Error(f"device {device} does not exist here: this machine has {count} GPU(s)")
    elif found.type == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise SAM2Error(
                f"device {device} is not available here: Apple MPS needs a Mac with Apple "
                "silicon; use the CPU (--device cpu or auto)"
            )
    elif found.type not in ("cpu", "meta"):
        raise SAM2Error(f"device {device} is not supported; use cpu, cuda or mps")
    return found
