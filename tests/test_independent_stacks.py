"""The plain second generator the demo model is scored on (scripts/independent_stacks.py)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from independent_stacks import independent_timelapse  # noqa: E402


@pytest.mark.parametrize("kind", ["ellipse", "flat"])
def test_seeded_cells_brighter_than_the_field_and_one_division(kind):
    stack = independent_timelapse(3, kind, num_frames=12, size=128, num_cells=4)
    again = independent_timelapse(3, kind, num_frames=12, size=128, num_cells=4)
    assert np.array_equal(stack.frames, again.frames) and np.array_equal(stack.labels, again.labels)
    assert not np.array_equal(independent_timelapse(4, kind, 12, 128, 4).labels, stack.labels)
    assert stack.frames.dtype == np.uint16 and stack.labels.shape == (12, 128, 128)
    inside = stack.frames[stack.labels > 0].astype(float).mean()
    assert inside > 3 * stack.frames[stack.labels == 0].astype(float).mean()
    (mother,) = set(stack.lineage.values())
    daughters = sorted(stack.lineage)
    assert (stack.labels[:6] == mother).any() and not (stack.labels[6:] == mother).any()
    assert all(
        (stack.labels[6] == d).any() and not (stack.labels[:6] == d).any() for d in daughters
    )


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be ellipse or flat"):
        independent_timelapse(0, "gauss")
