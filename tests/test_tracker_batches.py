"""Objects of a frame gathered into batches by memory layout, and the batch size per device."""

import torch

from napari_sam2.engine.object_batches import batches_by_layout, default_batch_size


def test_objects_are_batched_by_layout_in_order_and_cut_to_the_batch_size():
    items = ["a", "b", "c", "d", "e"]
    layouts = [(2, 3), (1, 1), (2, 3), (2, 3), (1, 1)]
    assert batches_by_layout(items, layouts, 8) == [["a", "c", "d"], ["b", "e"]]
    assert batches_by_layout(items, layouts, 2) == [["a", "c"], ["d"], ["b", "e"]]
    assert batches_by_layout([], [], 4) == []


def test_one_object_at_a_time_on_a_cpu_and_many_on_a_gpu():
    assert default_batch_size(torch.device("cpu")) == 1
    assert default_batch_size(torch.device("cuda")) == 64
