"""Many stacks at once on dask.distributed (this machine or a cluster): one `segment` run per
stack, resumable, with a summary table; `run` is the entry point for notebooks."""

from .driver import run
from .summary import StackResult, read_summary

__all__ = ["StackResult", "read_summary", "run"]
