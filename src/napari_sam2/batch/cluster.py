"""The dask.distributed client a batch runs on: a LocalCluster of worker processes on this
machine, sized from its cores and memory, or an existing scheduler (an address or a
scheduler file) such as one started on a SLURM or PBS cluster."""

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import SAM2Error

# what one worker holding a SAM 2 model and a stack's features needs, roughly (measured peak
# of a 1024-pixel tiny model on the CPU was under 2 GiB; room for larger models and frames)
WORKER_MEMORY = 3 * 2**30
CONNECT_TIMEOUT = "30s"


def usable_cores() -> int:
    """The cores this process may run on (a SLURM allocation or taskset, not the machine)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def local_worker_count(stacks: int, device: str = "auto") -> int:
    """Worker processes for a local batch of `stacks`: one per two cores, as many as the
    available memory holds, no more than the stacks; one on a GPU (they would share it)."""
    import psutil

    if device != "cpu" and _has_gpu(device):
        return 1
    by_memory = int(psutil.virtual_memory().available // WORKER_MEMORY)
    return max(1, min(stacks, max(1, usable_cores() // 2), by_memory))


def _has_gpu(device: str) -> bool:
    import torch

    if device in ("cuda", "mps"):
        return True
    return torch.cuda.is_available() or torch.backends.mps.is_available()


@contextlib.contextmanager
def batch_client(
    scheduler: str, workers: int, say: Callable[[str], None] = lambda message: None
) -> Iterator[object]:
    """A `distributed.Client`: "local" starts a LocalCluster of `workers` processes (one
    thread each) and closes it afterwards; anything else is a scheduler's address
    (tcp://host:8786) or a scheduler file written by `dask scheduler --scheduler-file`."""
    from distributed import Client, LocalCluster

    if scheduler == "local":
        dashboard = ":0" if importlib.util.find_spec("bokeh") else None
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=dashboard,
            ) as cluster,
            Client(cluster) as client,
        ):
            link = client.dashboard_link if dashboard else "none (install bokeh for one)"
            say(f"{workers} local workers; dashboard: {link}")
            yield client
        return
    options = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {"address": scheduler}
    try:
        client = Client(**options, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SAM2Error(
            f"cannot reach the dask scheduler at {scheduler} ({exc}); start one "
            "(`dask scheduler`) or use --scheduler local"
        ) from exc
    with client:
        say(f"connected to {client.scheduler.address}")
        yield client


def threads_per_host(client) -> dict[str, int]:
    """Worker threads per host among the workers connected now, for splitting cores."""
    from distributed.comm import get_address_host

    counts: dict[str, int] = {}
    for address, worker in client.scheduler_info(n_workers=-1)["workers"].items():
        host = get_address_host(address)
        counts[host] = counts.get(host, 0) + int(worker.get("nthreads", 1))
    return counts
