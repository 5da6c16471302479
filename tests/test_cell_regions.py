"""The cell tracker's checks against the classical segmentation: a masklet over two cells
splits, a leak into a neighbour's cell is handed back, a masklet that moved onto another
object's cell is a duplicate, lost and half-held cells are found."""

import numpy as np

from napari_sam2.engine.cell_seeds import refine_with_regions
from napari_sam2.engine.division_regions import region_split
from napari_sam2.engine.division_rule import DivisionRule
from napari_sam2.engine.region_checks import (
    duplicates,
    settle_regions,
    unclaimed_regions,
    undersized_masklets,
)

YY, XX = np.mgrid[:64, :96]


def disc(y, x, r):
    return (YY - y) ** 2 + (XX - x) ** 2 < r**2


def test_a_masklet_over_two_cells_splits_between_them():
    regions = np.zeros((64, 96), np.int32)
    regions[disc(32, 30, 10)] = 1
    regions[disc(32, 56, 10)] = 2
    # the masklet holds both cells and some background around them
    mask = disc(32, 30, 12) | disc(32, 56, 12) | ((abs(YY - 32) < 4) & (XX > 30) & (XX < 56))
    pieces = region_split(mask, regions, DivisionRule())
    assert len(pieces) == 2 and not (pieces[0] & pieces[1]).any()
    assert (pieces[0] | pieces[1]).sum() == mask.sum()
    # each cell wholly in one piece, the two in different pieces
    holders = [[int((p & (regions == k)).sum()) for p in pieces] for k in (1, 2)]
    assert sorted(holders) == [[0, (regions == 2).sum()], [(regions == 1).sum(), 0]]
    # nor is a cell another object holds a fifth of (a leak into a neighbour's or sister's)
    others = disc(32, 60, 7)
    assert region_split(mask, regions, DivisionRule(), others) == []
    assert len(region_split(mask, regions, DivisionRule(), disc(32, 66, 2))) == 2
    # one cell, or a second one the masklet barely touches, is no division
    assert region_split(disc(32, 30, 12), regions, DivisionRule()) == []
    assert region_split(disc(32, 30, 12) | disc(32, 47, 3), regions, DivisionRule()) == []


def test_a_leak_into_a_neighbours_cell_is_handed_back():
    regions = np.zeros((64, 96), np.int32)
    regions[disc(32, 30, 10)] = 1
    regions[disc(32, 56, 10)] = 2
    frame = np.zeros((64, 96), np.int32)
    frame[disc(32, 30, 10)] = 1
    frame[disc(32, 56, 10)] = 2
    frame[disc(32, 50, 5)] = 1  # object 1 spills into cell 2
    frame[disc(10, 10, 3)] = 1  # and has a speck on the background
    settled = settle_regions(frame, regions)
    assert (settled[regions == 2] == 2).all()
    assert (settled[regions == 1] == 1).all() and (settled[disc(10, 10, 3)] == 1).all()
    assert (frame[disc(32, 50, 5)] == 1).all()  # a copy: the input is unchanged


def test_a_masklet_that_moved_onto_another_cell_is_a_duplicate():
    before = np.zeros((64, 96), np.int32)
    before[disc(32, 30, 10)] = 1
    before[disc(32, 6, 5)] = 2  # cell 2 at the edge, about to leave
    now = np.zeros((64, 96), np.int32)
    now[disc(33, 31, 10)] = 1
    now[disc(32, 28, 6)] = 2  # object 2's masklet jumped onto cell 1
    assert duplicates(now, before) == {2: 1}
    now[disc(32, 28, 6)] = 1
    now[disc(32, 7, 5)] = 2  # still on its own cell
    assert duplicates(now, before) == {}


def test_lost_and_half_held_cells_are_found():
    regions = np.zeros((64, 96), np.int32)
    regions[disc(32, 20, 10)] = 1
    regions[disc(32, 50, 10)] = 2
    regions[disc(32, 80, 10)] = 3
    regions[disc(5, 5, 2)] = 4  # debris, far smaller than a cell
    frame = np.zeros((64, 96), np.int32)
    frame[disc(32, 20, 10)] = 1
    frame[disc(32, 47, 5)] = 2  # holds a quarter of its cell
    typical = float((regions == 1).sum())
    assert list(undersized_masklets(frame, regions, typical)) == [2]
    assert (undersized_masklets(frame, regions, typical)[2] == (regions == 2)).all()
    (lost,) = unclaimed_regions(frame, regions, typical)
    assert (lost == (regions == 3)).all()


def test_automatic_seeds_are_corrected_with_the_regions():
    regions = np.zeros((64, 96), np.int32)
    for k, x in enumerate((14, 38, 62, 86), start=1):
        regions[disc(32, x, 9)] = k
    seeds = np.zeros((64, 96), np.int32)
    seeds[disc(32, 14, 10)] = 1  # one cell, right
    seeds[disc(32, 38, 10) | disc(32, 62, 10) | ((abs(YY - 32) < 3) & (XX > 38) & (XX < 62))] = 2
    seeds[disc(28, 86, 4)] = 3  # a part of the last cell
    refined = refine_with_regions(seeds, regions, min_area=20)
    assert (refined[seeds == 1] == 1).all()
    # the pair is two objects, one per cell; the last cell is whole
    for k in (2, 3, 4):
        values, counts = np.unique(refined[regions == k], return_counts=True)
        assert values[counts.argmax()] != 0 and counts.max() == (regions == k).sum()
    owners = {int(np.bincount(refined[regions == k]).argmax()) for k in (1, 2, 3, 4)}
    assert len(owners) == 4
    # seeds the regions agree with are left as they are
    agreed = regions.copy()
    assert (refine_with_regions(agreed, regions, min_area=20) == agreed).all()
