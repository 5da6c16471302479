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


@pytest.fixture(scope="module")
def present_tiny_model():
    """A random-weight sam2.1 tiny at input size 128 whose object-score head always says
    "present", so its masks are never blanked: for tests of the tracker's bookkeeping."""
    from napari_sam2.model import build_model

    torch.manual_seed(0)
    model = build_model("sam2.1_hiera_tiny", image_size=128)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(8.0)
    return model
