"""Grouping parity against the official HeatmapParser fixtures (reference/parity)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from pose_core import group_bottom_up
from pose_core.grouping import DenseTags, GroupingParams, ResizedTags, parse_bottom_up
from pose_core.grouping.nms import heatmap_nms, oks_nms
from pose_core.grouping.reference_parser import reference_parse
from pose_core.grouping.candidates import top_k_candidates
from pose_core.grouping.refine import refine_people
from pose_core.keypoint_specs import COCO_17

XY_TOL = 1e-3  # heatmap pixels
VAL_TOL = 1e-4
SCORE_TOL = 1e-5


@pytest.fixture(scope="module")
def synthetic(parity_dir: Path) -> dict[str, np.ndarray]:
    with np.load(parity_dir / "group_synthetic_6people.npz") as data:
        return {k: data[k] for k in data.files}


def _assert_same_people(grouped: np.ndarray, expected: np.ndarray) -> None:
    expected = expected[..., :3]
    assert grouped[..., :3].shape == expected.shape
    np.testing.assert_allclose(grouped[..., :2], expected[..., :2], atol=XY_TOL, rtol=0)
    np.testing.assert_allclose(grouped[..., 2], expected[..., 2], atol=VAL_TOL, rtol=0)


def test_synthetic_candidates_match_official(synthetic: dict[str, np.ndarray]) -> None:
    heatmaps = torch.from_numpy(synthetic["heatmaps"][0])
    sampler = DenseTags(torch.from_numpy(synthetic["tags"][0]))
    val_k, ind_k, tag_k = top_k_candidates(heatmaps, sampler, 30, 5)
    loc_k = torch.stack((ind_k % 160, ind_k // 160), dim=-1).numpy()
    np.testing.assert_array_equal(loc_k, synthetic["loc_k"][0])
    np.testing.assert_allclose(val_k.numpy(), synthetic["val_k"][0], atol=1e-7, rtol=0)
    np.testing.assert_allclose(tag_k.numpy(), synthetic["tag_k"][0], atol=1e-7, rtol=0)
    # thresholded variant: same entries above the threshold, in the same order
    val_t, ind_t, _ = top_k_candidates(heatmaps, sampler, 30, 5, above=0.1)
    above = val_k > 0.1
    assert torch.equal(val_t > 0.1, above)
    assert torch.equal(val_t[above], val_k[above]) and torch.equal(ind_t[above], ind_k[above])


@pytest.mark.parametrize("refine", [True, False])
def test_synthetic_grouping_matches_official(
    synthetic: dict[str, np.ndarray], refine: bool
) -> None:
    poses = group_bottom_up(
        torch.from_numpy(synthetic["heatmaps"]), torch.from_numpy(synthetic["tags"]),
        refine=refine,
    )
    expected = synthetic["grouped" if refine else "grouped_no_refine"]
    assert len(poses) == 6
    _assert_same_people(poses.keypoints, expected)
    np.testing.assert_allclose(poses.scores, synthetic["scores"], atol=SCORE_TOL, rtol=0)


def test_synthetic_tag_columns_match_official(synthetic: dict[str, np.ndarray]) -> None:
    result = parse_bottom_up(
        torch.from_numpy(synthetic["heatmaps"][0]),
        DenseTags(torch.from_numpy(synthetic["tags"][0])),
        GroupingParams(),
    )
    np.testing.assert_allclose(result.grouped, synthetic["grouped"], atol=1e-5, rtol=0)


def test_numpy_input_and_reference_parser_agree(synthetic: dict[str, np.ndarray]) -> None:
    params = GroupingParams()
    grouped, scores = reference_parse(synthetic["heatmaps"][0], synthetic["tags"][0], params)
    _assert_same_people(grouped, synthetic["grouped"])
    poses = group_bottom_up(synthetic["heatmaps"][0], synthetic["tags"][0])
    np.testing.assert_allclose(poses.keypoints, grouped[..., :3], atol=1e-6, rtol=0)
    np.testing.assert_allclose(poses.scores, scores, atol=1e-7, rtol=0)


def _random_scene(seed: int, num_people: int, size_hw: tuple[int, int] = (64, 80)):
    """Gaussian joints with per-person tags, noisy background (exercises refine bounds)."""
    rng = np.random.default_rng(seed)
    height, width = size_hw
    joints = 17
    ys, xs = np.mgrid[0:height, 0:width]
    det = rng.uniform(0, 0.05, (joints, height, width)).astype(np.float32)
    tags = rng.normal(0, 0.4, (joints, height, width, 2)).astype(np.float32)
    for person in range(num_people):
        tag = np.array([person * 1.7 - 4.0, person * 1.7 - 4.1], np.float32)
        cx, cy = rng.uniform(8, width - 8), rng.uniform(8, height - 8)
        for j in range(joints):
            px, py = cx + rng.normal(0, 5), cy + rng.normal(0, 5)
            blob = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / 8.0)
            region = blob > 0.01
            tags[j][region] = tag + rng.normal(0, 0.05, (int(region.sum()), 2))
            if rng.uniform() > 0.2:
                det[j] = np.maximum(det[j], blob * rng.uniform(0.3, 1.0))
    return det, tags


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batched_refine_matches_loop_reference(seed: int) -> None:
    det, tags = _random_scene(seed, num_people=5)
    params = GroupingParams()
    grouped, scores = reference_parse(det, tags, params)
    result = parse_bottom_up(torch.from_numpy(det), DenseTags(torch.from_numpy(tags)), params)
    np.testing.assert_array_equal(result.grouped, grouped)
    np.testing.assert_allclose(result.scores, scores, atol=1e-7, rtol=0)
    # both exact search strategies (sparse entries / per joint) give the same people
    unrefined = parse_bottom_up(torch.from_numpy(det), DenseTags(torch.from_numpy(tags)),
                                GroupingParams(refine=False)).grouped
    for limit in (0, 1 << 30):
        refined = refine_people(unrefined, torch.from_numpy(det),
                                DenseTags(torch.from_numpy(tags)), sparse_entry_limit=limit)
        np.testing.assert_array_equal(refined, grouped)


def _people_with_ghosts(
    det: torch.Tensor, sampler: DenseTags, num_ghosts: int
) -> tuple[np.ndarray, torch.Tensor]:
    """The unrefined people of the maps plus one-joint "ghosts" (the strongest joint of each of
    the first `num_ghosts` people), and the top-k NMS pixels (y * W + x) per joint."""
    result = parse_bottom_up(det, sampler, GroupingParams(refine=False))
    people = [p for p in result.grouped]
    for person in result.grouped[:num_ghosts]:
        ghost = np.zeros_like(person)
        j = int(np.argmax(person[:, 2]))
        ghost[j] = person[j]
        people.append(ghost)
    loc = result.loc_k
    top_k = torch.as_tensor(loc[:, :, 1] * det.shape[2] + loc[:, :, 0])
    return np.stack(people).astype(np.float32), top_k


@pytest.mark.parametrize("seed", [3, 4])
def test_refine_lower_bound_seeds_and_ghosts_match_loop_reference(seed: int) -> None:
    # One-joint "ghost" people carrying another person's tag (their best score is usually at
    # that person's peak: narrow pairs), people whose tag is near the background tags (many
    # tiles with a zero tag gap: the best-first search), and arbitrary seed pixels.
    from pose_core.grouping.reference_parser import _refine_one

    det, tags = _random_scene(seed, num_people=6, size_hw=(72, 96))
    det_t, sampler = torch.from_numpy(det), DenseTags(torch.from_numpy(tags))
    unrefined, top_k = _people_with_ghosts(det_t, sampler, num_ghosts=4)
    expected = np.stack([_refine_one(det, tags, person) for person in unrefined])
    gen = torch.Generator().manual_seed(seed)
    arbitrary = torch.randint(0, det.shape[1] * det.shape[2], (17, 5), generator=gen)
    for seeds in (None, top_k, arbitrary):
        for limit in (0, -1, 1 << 30):  # per joint, sparse, cost model
            refined = refine_people(unrefined, det_t, sampler, sparse_entry_limit=limit,
                                    seed_pixels=seeds)
            np.testing.assert_array_equal(refined, expected)


@pytest.mark.parametrize("size_hw", [(48, 72), (61, 97)])
def test_resized_tags_equal_projected_maps(size_hw: tuple[int, int]) -> None:
    gen = torch.Generator().manual_seed(0)
    low = torch.randn(2, 17, 24, 36, generator=gen)
    sampler = ResizedTags(low, size_hw)
    dense = torch.nn.functional.interpolate(low, size=size_hw, mode="bilinear",
                                            align_corners=False)
    joints = torch.randint(0, 17, (500,), generator=gen)
    pixels = torch.randint(0, size_hw[0] * size_hw[1], (500,), generator=gen)
    expected = dense.reshape(2, 17, -1)[:, joints, pixels].t()
    # x2 (the estimator's case) agrees to rounding; other ratios to ~5e-6 (weight rounding)
    tol = 1e-6 if size_hw == (48, 72) else 1e-5
    torch.testing.assert_close(sampler(joints, pixels), expected, atol=tol, rtol=0)
    torch.testing.assert_close(sampler.dense(3), dense[:, 3].reshape(2, -1), atol=tol, rtol=0)
    lower, upper = sampler.tile_bounds(8)
    pooled_max = torch.nn.functional.max_pool2d(dense, 8, stride=8, ceil_mode=True)
    pooled_min = -torch.nn.functional.max_pool2d(-dense, 8, stride=8, ceil_mode=True)
    assert bool((upper >= pooled_max).all()) and bool((lower <= pooled_min).all())


def test_heatmap_nms_keeps_plateaus_and_maxima() -> None:
    maps = torch.zeros(1, 7, 7)
    maps[0, 3, 3] = 1.0
    maps[0, 3, 4] = 0.5
    maps[0, 0, 0] = 0.2
    maps[0, 6, 5:7] = 0.7
    out = heatmap_nms(maps, 5)
    assert out[0, 3, 3] == 1.0 and out[0, 3, 4] == 0 and out[0, 0, 0] == 0.2
    assert out[0, 6, 5] == 0.7 and out[0, 6, 6] == 0.7


def _brute_force_min(cost: np.ndarray) -> float:
    rows, cols = cost.shape
    return min(
        sum(cost[r, c] for r, c in zip(range(rows), perm))
        for perm in itertools.permutations(range(cols), rows)
    )


def test_assignment_solver_on_ties_and_degenerate_costs() -> None:
    """scipy returns an optimal assignment on tie-heavy costs like the parser's (round(d)*100-v).

    munkres 1.1 also returns an optimum; on exact ties the two may pick different optima (the
    documented difference). Here: optimality on ties, uniqueness where the optimum is unique.
    """
    rng = np.random.default_rng(0)
    for _ in range(40):
        rows, cols = rng.integers(1, 6), rng.integers(1, 6)
        dist = rng.integers(0, 3, (rows, cols)).astype(np.float64)
        val = rng.choice([0.2, 0.5, 0.5], size=(rows, 1))
        cost = dist * 100 - val
        if rows > cols:
            cost = np.concatenate((cost, np.full((rows, rows - cols), 1e10)), axis=1)
        r, c = linear_sum_assignment(cost)
        assert len(r) == rows
        assert cost[r, c].sum() == pytest.approx(_brute_force_min(cost), rel=1e-12)
    unique = np.array([[0.0, 100.0, 200.0], [100.0, 0.0, 100.0], [200.0, 100.0, 0.0]]) - 0.3
    r, c = linear_sum_assignment(unique)
    assert c.tolist() == [0, 1, 2]


def test_bad_inputs_raise_clear_errors() -> None:
    det = torch.zeros(17, 8, 8)
    tags = torch.zeros(17, 8, 8, 2)
    det[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        group_bottom_up(det, tags)
    with pytest.raises(ValueError, match="do not match"):
        group_bottom_up(torch.zeros(17, 8, 8), torch.zeros(17, 8, 9, 2))
    with pytest.raises(ValueError, match="one image"):
        group_bottom_up(torch.zeros(2, 17, 8, 8), torch.zeros(2, 17, 8, 8, 2))
    empty = group_bottom_up(torch.zeros(17, 8, 8), torch.zeros(17, 8, 8, 2))
    assert empty.keypoints.shape == (0, 17, 3)


def test_oks_nms_drops_duplicates() -> None:
    person = np.stack([np.linspace(10, 50, 17), np.linspace(20, 80, 17), np.ones(17)], axis=1)
    people = np.stack([person, person + 0.5, person + 40.0])
    keep = oks_nms(people, np.array([0.9, 0.8, 0.7]), np.full(3, 2400.0),
                   np.array(COCO_17.sigmas), threshold=0.9)
    assert keep.tolist() == [0, 2]


@pytest.mark.parametrize("size_hw", [(9, 11), (37, 53), (64, 80)])
def test_tiled_local_maxima_equal_dense_nms(size_hw: tuple[int, int]) -> None:
    from pose_core.grouping.nms import local_maxima
    from pose_core.grouping.candidates import _top_k_local_maxima_above, _top_k_of_mask

    gen = torch.Generator().manual_seed(1)
    maps = torch.rand(17, *size_hw, generator=gen) * 0.12
    peaks = torch.randint(0, size_hw[0] * size_hw[1], (17, 12), generator=gen)
    maps.reshape(17, -1).scatter_(1, peaks, torch.rand(17, 12, generator=gen) * 0.8 + 0.2)
    maps[:, 5:7, 5:7] = 0.9  # plateau
    maps[3, 0, 0] = 0.95  # corner peak
    maps[4, -1, -1] = 0.95
    maps = torch.round(maps * 64) / 64  # many exact ties
    for above in (0.115, 0.5):
        dense = _top_k_of_mask(maps, local_maxima(maps, 5) & (maps > above), 30)
        tiled = _top_k_local_maxima_above(maps, above, 30, 5)
        assert torch.equal(dense[0], tiled[0]) and torch.equal(dense[1], tiled[1])


def test_resized_tags_read_pixel_major_memory_like_contiguous_maps() -> None:
    # merge_stage_outputs hands the parser channels of a channels-last upsampling output
    gen = torch.Generator().manual_seed(6)
    low = torch.randn(2, 17, 24, 36, generator=gen)
    pixel_major = low.permute(2, 3, 0, 1).contiguous().permute(2, 3, 0, 1)
    assert pixel_major.stride()[:2] == (17, 1) and torch.equal(pixel_major, low)
    a, b = ResizedTags(low, (48, 72)), ResizedTags(pixel_major, (48, 72))
    joints = torch.randint(0, 17, (500,), generator=gen)
    pixels = torch.randint(0, 48 * 72, (500,), generator=gen)
    assert torch.equal(a(joints, pixels), b(joints, pixels))
    for subset in (None, torch.tensor([3]), torch.arange(17)):
        for bound_a, bound_b in zip(a.tile_bounds(8, subset), b.tile_bounds(8, subset)):
            assert torch.equal(bound_a, bound_b)
    assert torch.equal(a.dense(4), b.dense(4))


def test_resized_tag_bounds_of_a_joint_subset_hold() -> None:
    gen = torch.Generator().manual_seed(5)
    low = torch.randn(2, 17, 24, 36, generator=gen)
    sampler = ResizedTags(low, (48, 72))
    dense = torch.nn.functional.interpolate(low, size=(48, 72), mode="bilinear",
                                            align_corners=False)
    pooled_max = torch.nn.functional.max_pool2d(dense, 8, stride=8, ceil_mode=True)
    pooled_min = -torch.nn.functional.max_pool2d(-dense, 8, stride=8, ceil_mode=True)
    for joints in ([3], [16, 0, 5], list(range(17))):
        index = torch.tensor(joints)
        lower, upper = sampler.tile_bounds(8, index)
        assert lower.shape == upper.shape == (2, len(joints)) + tuple(pooled_max.shape[2:])
        assert bool((upper >= pooled_max[:, index]).all())
        assert bool((lower <= pooled_min[:, index]).all())


@pytest.mark.parametrize("tile", [1, 2, 4, 8])
def test_tile_max_equals_max_pool(tile: int) -> None:
    from pose_core.grouping.candidates import _tile_max

    maps = torch.rand(3, 37, 53, generator=torch.Generator().manual_seed(9))  # ragged edges
    expected = torch.nn.functional.max_pool2d(maps[None], tile, stride=tile, ceil_mode=True)[0]
    assert torch.equal(_tile_max(maps, tile), expected)


@pytest.mark.parametrize("half_stride", [1, 2, 3])
def test_paired_window_equals_window_by_window(half_stride: int) -> None:
    from pose_core.grouping.tag_sampling import _paired_window

    stride, kernel = 2 * half_stride, 2 * half_stride + 2
    gen = torch.Generator().manual_seed(half_stride)
    for size in (1, 2, 5, 8, 17):
        for count in range(1, size // stride + 3):
            maps = torch.randn(3, size, 4, generator=gen)
            for op, fill in ((torch.maximum, -torch.inf), (torch.minimum, torch.inf)):
                expected = torch.full((3, count, 4), fill)
                for t in range(count):  # rows t * stride - 1 .. t * stride + kernel - 2
                    for row in range(t * stride - 1, t * stride - 1 + kernel):
                        if 0 <= row < size:
                            expected[:, t] = op(expected[:, t], maps[:, row])
                got = _paired_window(maps, 1, half_stride, count, op, fill)
                assert torch.equal(got, expected), (size, count)


def _match_with_tag_lists(tag_k, loc_k, val_k, params: GroupingParams) -> np.ndarray:
    """The official matcher's bookkeeping, straight: a list of tags per person and np.mean."""
    num_joints, _, num_tags = tag_k.shape
    people: dict[float, np.ndarray] = {}
    tag_lists: dict[float, list[np.ndarray]] = {}
    for position, joint in enumerate(params.joint_order or range(num_joints)):
        rows = np.concatenate((loc_k[joint], val_k[joint][:, None], tag_k[joint]), axis=1)
        keep = rows[:, 2] > params.detection_threshold
        tags, rows = tag_k[joint][keep], rows[keep]
        if len(rows) == 0:
            continue
        if position == 0 or not people:
            for tag, row in zip(tags, rows):
                people.setdefault(float(tag[0]), np.zeros((num_joints, 3 + num_tags)))[joint] = row
                tag_lists[float(tag[0])] = [tag]
            continue
        keys = list(people)[: params.max_people]
        means = np.array([np.mean(tag_lists[key], axis=0) for key in keys])
        dist = np.linalg.norm(rows[:, None, 3:] - means[None], axis=2)
        cost = np.round(dist) * 100 - rows[:, 2:3]
        if len(rows) > len(keys):
            cost = np.concatenate((cost, np.full((len(rows), len(rows) - len(keys)), 1e10)), 1)
        for r, c in zip(*linear_sum_assignment(cost)):
            if c < len(keys) and dist[r, c] < params.tag_threshold:
                people[keys[c]][joint] = rows[r]
                tag_lists[keys[c]].append(tags[r])
            else:
                people.setdefault(float(tags[r][0]), np.zeros((num_joints, 3 + num_tags)))[
                    joint
                ] = rows[r]
                tag_lists[float(tags[r][0])] = [tags[r]]
    return np.stack(list(people.values())).astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_matcher_running_tag_means_equal_tag_lists(seed: int) -> None:
    from pose_core.grouping.matching import match_by_tag

    rng = np.random.default_rng(seed)
    # tags rounded to 0.1: colliding person keys (a new person overwrites an old one) included
    tag_k = np.round(rng.normal(0, 2, (17, 30, 2)), 1).astype(np.float32)
    jitter = rng.normal(0, 1e-3, tag_k.shape).astype(np.float32)
    tag_k += jitter * (rng.uniform(size=(17, 30, 1)) < 0.5)
    loc_k = rng.integers(0, 64, (17, 30, 2))
    val_k = rng.uniform(0, 1, (17, 30)).astype(np.float32)
    params = GroupingParams(max_people=int(rng.integers(3, 31)), joint_order=tuple(range(17)))
    np.testing.assert_array_equal(
        match_by_tag(tag_k, loc_k, val_k, params),
        _match_with_tag_lists(tag_k, loc_k, val_k, params),
    )


@pytest.mark.parametrize("seed", [5, 6])
def test_refine_first_argmax_on_exact_ties_matches_loop_reference(seed: int) -> None:
    # Quantised maps: many pixels share the best score, so the first row-major pixel decides
    # (inside or outside the wide pairs' pre-scored best tiles, which the sparse search skips).
    from pose_core.grouping.reference_parser import _refine_one

    det, tags = _random_scene(seed, num_people=6, size_hw=(96, 128))
    det = (np.round(det * 10) / 10).astype(np.float32)
    tags = (np.round(tags * 2) / 2).astype(np.float32)
    det_t, sampler = torch.from_numpy(det), DenseTags(torch.from_numpy(tags))
    unrefined, top_k = _people_with_ghosts(det_t, sampler, num_ghosts=3)
    expected = np.stack([_refine_one(det, tags, person) for person in unrefined])
    for seeds in (None, top_k):
        for limit in (-1, 1 << 30):  # sparse, cost model
            refined = refine_people(unrefined, det_t, sampler, sparse_entry_limit=limit,
                                    seed_pixels=seeds)
            np.testing.assert_array_equal(refined, expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_refine_min_score_refines_only_the_people_scoring_that_much(seed: int) -> None:
    det, tags = _random_scene(seed, num_people=6)
    det_t, sampler = torch.from_numpy(det), DenseTags(torch.from_numpy(tags))
    everyone = parse_bottom_up(det_t, sampler, GroupingParams())
    nobody = parse_bottom_up(det_t, sampler, GroupingParams(refine=False))
    threshold = float(np.median(everyone.scores))
    some = parse_bottom_up(det_t, sampler, GroupingParams(refine_min_score=threshold))
    chosen = everyone.scores >= threshold
    assert chosen.any() and (~chosen).any()
    # refine filled joints of both groups, so the test can tell them apart
    assert (everyone.grouped[chosen, :, 2] != nobody.grouped[chosen, :, 2]).any()
    assert (everyone.grouped[~chosen, :, 2] != nobody.grouped[~chosen, :, 2]).any()
    np.testing.assert_array_equal(some.scores, everyone.scores)
    np.testing.assert_array_equal(some.grouped[chosen], everyone.grouped[chosen])
    np.testing.assert_array_equal(some.grouped[~chosen], nobody.grouped[~chosen])
