"""The synthetic microscopy generator: seeded, uint16, and its ground truth shows every event."""

import numpy as np
import pytest
from scipy import ndimage

from napari_sam2.synthetic import SyntheticStack, moving_cells, timelapse, zstack


@pytest.fixture(scope="module")
def movie() -> SyntheticStack:
    return timelapse()


@pytest.fixture(scope="module")
def stack() -> SyntheticStack:
    return zstack()


def _present(labels: np.ndarray, label: int) -> np.ndarray:
    """(N,) bool: on which frames the label has any pixel."""
    return (labels == label).any(axis=(1, 2))


def _contacts(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of different, non-zero labels that are 4-adjacent somewhere in one (H, W) frame."""
    pairs = set()
    for a, b in ((labels[:, 1:], labels[:, :-1]), (labels[1:], labels[:-1])):
        touching = (a != b) & (a > 0) & (b > 0)
        for i, j in zip(a[touching], b[touching], strict=True):
            pairs.add((int(min(i, j)), int(max(i, j))))
    return pairs


def test_same_seed_gives_the_same_stack_and_another_seed_another(movie, stack):
    again = timelapse(seed=0)
    np.testing.assert_array_equal(again.frames, movie.frames)
    np.testing.assert_array_equal(again.labels, movie.labels)
    assert again.lineage == movie.lineage
    other = timelapse(seed=1)
    assert not np.array_equal(other.labels, movie.labels)
    assert not np.array_equal(other.frames, movie.frames)

    np.testing.assert_array_equal(zstack(seed=0).frames, stack.frames)
    assert not np.array_equal(zstack(seed=1).labels, stack.labels)


def test_imaging_settings_leave_the_ground_truth_alone(movie):
    dim = timelapse(brightness=50.0, read_noise=20.0, psf_sigma=2.0, bleaching=0.05)
    np.testing.assert_array_equal(dim.labels, movie.labels)
    assert not np.array_equal(dim.frames, movie.frames)


def test_dtypes_shapes_and_axes(movie, stack):
    assert movie.frames.shape == movie.labels.shape == (40, 256, 256)
    assert stack.frames.shape == stack.labels.shape == (32, 256, 256)
    for s in (movie, stack):
        assert s.frames.dtype == np.uint16 and s.labels.dtype == np.uint16
    assert (movie.axes, stack.axes) == ("TYX", "ZYX")
    assert stack.lineage == {}

    small = timelapse(num_frames=5, height=48, width=80, num_cells=3, seed=4)
    assert small.frames.shape == small.labels.shape == (5, 48, 80)
    assert small.frames.dtype == np.uint16
    thin = zstack(depth=3, height=40, width=50, num_nuclei=2)
    assert thin.frames.shape == (3, 40, 50) and thin.labels.max() >= 1

    with pytest.raises(ValueError, match="num_frames"):
        timelapse(num_frames=0)


def test_labels_mark_cells_brighter_than_the_background(movie, stack):
    for s, frames in ((movie, range(5)), (stack, range(len(stack.frames)))):
        for t in frames:
            image, labels = s.frames[t].astype(float), s.labels[t]
            background = image[labels == 0]
            floor = np.median(background) + 5 * background.std()
            for label in np.unique(labels)[1:]:
                assert image[labels == label].mean() > floor, (s.axes, t, label)


def test_a_cell_divides_into_two_new_ids(movie):
    assert movie.lineage, "no division in the default time-lapse"
    num_initial = len(np.unique(movie.labels[0])) - 1
    assert num_initial == 8
    for mother in set(movie.lineage.values()):
        daughters = sorted(d for d, m in movie.lineage.items() if m == mother)
        assert len(daughters) == 2 and min(daughters) > num_initial
        born = [int(np.argmax(_present(movie.labels, d))) for d in daughters]
        assert born[0] == born[1] > 0
        t = born[0]
        mother_frames = np.flatnonzero(_present(movie.labels, mother))
        # the mother ends on the frame before its daughters appear, and never comes back
        assert mother_frames.max() == t - 1
        assert not _present(movie.labels, daughters[0])[:t].any()
        # the daughters split the mother, so they touch where they are born
        assert (daughters[0], daughters[1]) in _contacts(movie.labels[t])


def test_a_cell_leaves_the_field_and_comes_back(movie):
    returning = []
    for label in np.unique(movie.labels)[1:]:
        frames = np.flatnonzero(_present(movie.labels, label))
        # present, then absent on some frames, then present again
        if len(frames) and (np.diff(frames) > 1).any():
            returning.append(int(label))
    assert returning, "no cell leaves and re-enters"
    # it left through an edge, not by fading: on its last frame before the gap it touches one
    label = returning[0]
    present = _present(movie.labels, label)
    last = int(np.flatnonzero(present[:-1] & ~present[1:])[0])
    mask = movie.labels[last] == label
    assert mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()


def test_cells_touch_but_each_is_one_piece(movie):
    frames_with_contact = [t for t in range(len(movie.labels)) if _contacts(movie.labels[t])]
    assert len(frames_with_contact) >= 5
    # overlaps are resolved by the nearest blob, so no cell is cut in two by a neighbour
    for t, labels in enumerate(movie.labels):
        for label in np.unique(labels)[1:]:
            assert ndimage.label(labels == label)[1] == 1, (t, label)


def test_cells_move_and_change_shape(movie):
    label = 2  # present on every frame: not the scripted leaver, not a mother
    assert _present(movie.labels, label).all()

    def centred_mask(t):
        """The cell's mask in a window around its centre, so only its shape is compared."""
        y, x = np.round(ndimage.center_of_mass(movie.labels[t] == label)).astype(int)
        padded = np.pad(movie.labels[t] == label, 40)
        return padded[y : y + 81, x : x + 81], np.array([y, x])

    (first, start), (last, end) = centred_mask(0), centred_mask(len(movie.labels) - 1)
    assert np.linalg.norm(end - start) > 5
    iou = (first & last).sum() / (first | last).sum()
    assert iou < 0.9


def test_photobleaching_dims_the_cells_over_time(movie):
    def signal_above_background(s):
        values = []
        for image, labels in zip(s.frames, s.labels, strict=True):
            inside = labels > 0
            values.append(image[inside].mean() - np.median(image[~inside]))
        return np.array(values)

    bleached = signal_above_background(movie)
    rate = -np.polyfit(np.arange(len(bleached)), np.log(bleached), 1)[0]
    assert 0.010 < rate < 0.020  # the default decay is 0.015 per frame
    assert bleached[-5:].mean() < 0.7 * bleached[:5].mean()
    steady = signal_above_background(timelapse(bleaching=0.0))
    assert abs(np.polyfit(np.arange(len(steady)), np.log(steady), 1)[0]) < 0.004


def test_zstack_nuclei_rise_and_fall_through_the_slices(stack):
    labels = np.unique(stack.labels)[1:]
    assert len(labels) == 12
    for label in labels:
        areas = (stack.labels == label).sum(axis=(1, 2))
        slices = np.flatnonzero(areas)
        assert len(slices) >= 5 and np.all(np.diff(slices) == 1), label
        run = areas[slices[0] : slices[-1] + 1]
        peak = int(np.argmax(run))
        assert 0 < peak < len(run) - 1, label
        assert np.all(np.diff(run[: peak + 1]) >= 0) and np.all(np.diff(run[peak:]) <= 0), label
        assert run[0] < 0.7 * run[peak] and run[-1] < 0.7 * run[peak], label


def test_psf_blurs_light_past_the_cell_edges(movie):
    for t in range(3):
        image, cells = movie.frames[t].astype(float), movie.labels[t] > 0
        background = np.median(image[~cells])
        ring = ndimage.binary_dilation(cells) & ~cells
        spill = (image[ring].mean() - background) / (image[cells].mean() - background)
        assert spill > 0.1, t


def test_zstack_blur_is_longer_along_z(stack):
    # light two slices past a nucleus's top, against two pixels past its side (through its centre)
    image = stack.frames.astype(float)
    background = np.median(image[stack.labels == 0])
    along_z, along_x = [], []
    for label in np.unique(stack.labels)[1:]:
        nucleus = stack.labels == label
        peak = int(np.argmax(nucleus.sum(axis=(1, 2))))
        y, x = np.round(ndimage.center_of_mass(nucleus[peak])).astype(int)
        z_out = np.flatnonzero(nucleus[:, y, x])[-1] + 2
        x_out = np.flatnonzero(nucleus[peak, y])[-1] + 2
        if z_out >= len(image) or x_out >= image.shape[2]:
            continue
        if stack.labels[z_out, y, x] or stack.labels[peak, y, x_out]:
            continue  # a neighbour's light would count
        inside = image[peak, y, x] - background
        along_z.append((image[z_out, y, x] - background) / inside)
        along_x.append((image[peak, y, x_out] - background) / inside)
    assert len(along_z) >= 4
    assert np.mean(along_z) > 1.5 * np.mean(along_x)


def test_moving_cells_is_unchanged():
    frames, labels = moving_cells()
    assert frames.dtype == np.uint16 and labels.dtype == np.uint16
    assert frames.shape == labels.shape == (6, 96, 128)
    assert int(frames.sum(dtype=np.int64)) == 20000951
    assert (int(frames.min()), int(frames.max())) == (65, 1314)
    for t in range(6):
        assert np.bincount(labels[t].ravel()).tolist() == [11406, 441, 441]
    floats, _ = moving_cells(bleaching=0.1, seed=3, dtype=np.float32)
    assert floats.dtype == np.float32
    assert float(floats.sum(dtype=np.float64)) == pytest.approx(18885241.16065216, rel=1e-9)


def test_timelapse_defaults_are_unchanged():
    # pinned before the widening options existed: their defaults leave the stacks as they were
    s = timelapse(12, 64, 80, 3, seed=1)
    assert int(s.frames.sum(dtype=np.int64)) == 13073942
    assert np.bincount(s.labels.ravel()).tolist() == [
        38278,
        5503,
        4330,
        2510,
        3338,
        3460,
        1977,
        2044,
    ]
    assert s.lineage == {4: 3, 5: 3, 6: 2, 7: 2}


@pytest.mark.parametrize("contrast", ["absorption", "phase"])
def test_transmitted_light_cells_are_darker_than_the_field(contrast):
    s = timelapse(6, 128, 128, 4, seed=2, contrast=contrast, num_divisions=0)
    frames, inside = s.frames.astype(float), s.labels > 0
    assert np.median(frames[inside]) < 0.85 * np.median(frames[~inside])
    if contrast == "phase":
        # a bright halo rings each cell: just outside is brighter than the far field
        ring = ndimage.binary_dilation(inside, iterations=3, axes=(1, 2)) & ~inside
        far = ~ndimage.binary_dilation(inside, iterations=12, axes=(1, 2))
        assert frames[ring].mean() > frames[far].mean() + 0.1 * frames[far].std() + 10


def test_unknown_contrast_is_refused():
    with pytest.raises(ValueError, match="contrast must be one of"):
        timelapse(2, 32, 32, 1, contrast="brightfield")


def test_aspect_makes_cells_elongated():
    def mean_elongation(labels):
        ratios = []
        for i in np.unique(labels[0])[1:]:
            yy, xx = np.nonzero(labels[0] == i)
            if len(yy) > 50:
                eig = np.linalg.eigvalsh(np.cov(np.stack([yy, xx])))
                ratios.append(np.sqrt(eig[1] / eig[0]))
        return np.mean(ratios)

    round_ = timelapse(1, 160, 160, 6, seed=3, aspect=(1.0, 1.05))
    long = timelapse(1, 160, 160, 6, seed=3, aspect=(2.5, 3.0))
    assert mean_elongation(round_.labels) < 1.3 < 2.0 < mean_elongation(long.labels)


def test_stage_drift_shifts_the_whole_field():
    still = timelapse(5, 96, 96, 3, seed=4, num_divisions=0)
    drifting = timelapse(5, 96, 96, 3, seed=4, num_divisions=0, drift=(2.0, 0.0))
    for t in range(5):
        # rows the drift brings in from outside are left out
        assert np.array_equal(drifting.labels[t, 2 * t + 20 : 76], still.labels[t, 20 : 76 - 2 * t])


def test_leaving_false_keeps_every_cell_in_view():
    s = timelapse(12, 96, 96, 3, seed=5, num_divisions=0, leaving=False)
    assert all(_present(s.labels, i).all() for i in (1, 2, 3))
    assert not _present(timelapse(12, 96, 96, 3, seed=5, num_divisions=0).labels, 1).all()


def test_uneven_illumination_and_defocus_change_only_the_image():
    plain = timelapse(8, 96, 96, 3, seed=6, background=300.0)
    varied = timelapse(8, 96, 96, 3, seed=6, background=300.0, uneven=0.4, defocus=0.5)
    assert np.array_equal(plain.labels, varied.labels)
    background = ~ndimage.binary_dilation(plain.labels > 0, iterations=4, axes=(1, 2))
    assert varied.frames[background].std() > 1.5 * plain.frames[background].std()


def _step_lengths(labels: np.ndarray) -> list[float]:
    """How far each cell's centre moves per frame, over every cell present on both frames."""
    steps = []
    for t in range(1, len(labels)):
        for i in np.unique(labels[t])[1:]:
            if (labels[t - 1] == i).sum() > 30 and (labels[t] == i).sum() > 30:
                before = np.argwhere(labels[t - 1] == i).mean(axis=0)
                steps.append(
                    float(np.linalg.norm(np.argwhere(labels[t] == i).mean(axis=0) - before))
                )
    return steps


def test_speed_scales_how_far_cells_wander():
    options = dict(num_divisions=0, leaving=False)
    slow = timelapse(16, 200, 200, 4, seed=8, speed=0.3, **options)
    fast = timelapse(16, 200, 200, 4, seed=8, speed=2.5, **options)
    assert np.median(_step_lengths(fast.labels)) > 3 * np.median(_step_lengths(slow.labels))


def test_flat_cells_are_evenly_bright():
    def inner_spread(s):
        # light inside each cell, away from the blurred edge: its spread against its mean
        spreads = []
        for i in np.unique(s.labels[0])[1:]:
            inner = ndimage.binary_erosion(s.labels[0] == i, iterations=4)
            if inner.sum() > 50:
                light = s.frames[0][inner].astype(float) - 30.0
                spreads.append(light.std() / light.mean())
        return np.mean(spreads)

    options = dict(read_noise=0.0, texture=0.0, cell_radius=18.0, num_divisions=0)
    cell = timelapse(1, 160, 160, 4, seed=9, **options)
    flat = timelapse(1, 160, 160, 4, seed=9, flat=True, **options)
    assert np.array_equal(cell.labels, flat.labels)
    assert inner_spread(flat) < 0.5 * inner_spread(cell)


def test_sizes_mix_small_cells_among_large_ones():
    def areas(s):
        counts = np.bincount(s.labels[0].ravel())[1:]
        return counts[counts > 0]

    options = dict(cell_radius=12.0, num_divisions=0, leaving=False)
    even = areas(timelapse(1, 256, 256, 10, seed=10, **options))
    mixed = areas(timelapse(1, 256, 256, 10, seed=10, sizes=(0.5, 1.5), **options))
    # radii within 15 % give areas within a factor of about 1.8; a 0.5-1.5 spread, up to 9
    assert even.max() / even.min() < 2.0 < 4.0 < mixed.max() / mixed.min()


@pytest.mark.parametrize("sizes", [(0.0, 1.0), (1.2, 0.8)])
def test_sizes_out_of_order_or_not_positive_are_refused(sizes):
    with pytest.raises(ValueError, match="sizes must be"):
        timelapse(2, 32, 32, 1, sizes=sizes)
