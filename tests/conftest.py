import sys
from pathlib import Path

import pytest
import torch

# tests/reference.py is a plain helper module, importable as `reference` from every test
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests. Their model runs are tiny: on a busy shared
    machine, synchronizing OpenMP threads costs far more than a second thread saves (measured:
    35 s against 3 s). Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
