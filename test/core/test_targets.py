"""Training targets against the official generators' outputs (parity fixture).

Fixture: `parity_dir` / targets_higherhrnet_w32_512_coco.npz (see its README).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from pose_core.codecs.associative_embedding import JointsIndexEncoder, encode_joint_indices
from pose_core.codecs.heatmap import (
    HeatmapGenerator,
    ScaleAwareHeatmapGenerator,
    TopDownHeatmapEncoder,
    bottom_up_gaussian_patch,
    dark_top_down_targets,
    hrnet_top_down_targets,
)

PARITY = "targets_higherhrnet_w32_512_coco.npz"  # in parity_dir
ATOL = 1e-6  # float32 targets; our arithmetic follows the official order, observed error is 0


@pytest.fixture(scope="module")
def ref(parity_dir: pathlib.Path) -> dict[str, np.ndarray]:
    with np.load(parity_dir / PARITY) as data:
        return {key: data[key] for key in data.files}


@pytest.mark.parametrize("size", [128, 256])
def test_bottom_up_heatmaps_equal_official(ref: dict[str, np.ndarray], size: int) -> None:
    heatmaps = HeatmapGenerator(size, 17, sigma=2)(ref[f"joints_in_{size}"])
    assert heatmaps.shape == (17, size, size) and heatmaps.dtype == np.float32
    np.testing.assert_allclose(heatmaps, ref[f"heatmap_{size}"], rtol=0, atol=ATOL)


def test_scale_aware_heatmaps_equal_official(ref: dict[str, np.ndarray]) -> None:
    heatmaps = ScaleAwareHeatmapGenerator(128, 17)(ref["scale_aware_joints_in_128"])
    np.testing.assert_allclose(heatmaps, ref["scale_aware_heatmap_128"], rtol=0, atol=ATOL)


@pytest.mark.parametrize("size", [128, 256])
def test_ae_joint_indices_equal_official(ref: dict[str, np.ndarray], size: int) -> None:
    indices = JointsIndexEncoder(size, max_people=30)(ref[f"joints_in_{size}"])
    assert indices.shape == (30, 17, 2) and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, ref[f"joints_idx_{size}"])


def test_hrnet_top_down_targets_equal_official(ref: dict[str, np.ndarray]) -> None:
    target, weight = hrnet_top_down_targets(
        ref["td_hrnet_joints_in"], ref["td_joints_vis"], (192, 256), (48, 64), sigma=2
    )
    np.testing.assert_allclose(target, ref["td_hrnet_target"], rtol=0, atol=ATOL)
    np.testing.assert_array_equal(weight, ref["td_hrnet_target_weight"])
    encoder = TopDownHeatmapEncoder((192, 256), (48, 64), sigma=2, encoding="standard")
    target2, _ = encoder.encode(ref["td_hrnet_joints_in"], ref["td_joints_vis"])
    np.testing.assert_array_equal(target2, target)


def test_dark_top_down_targets_equal_official(ref: dict[str, np.ndarray]) -> None:
    target, weight = dark_top_down_targets(
        ref["td_dark_joints_in"], ref["td_joints_vis"], (48, 64), sigma=2
    )
    np.testing.assert_allclose(target, ref["td_dark_target"], rtol=0, atol=ATOL)
    np.testing.assert_array_equal(weight, ref["td_dark_target_weight"])


def test_bottom_up_rules_truncation_bounds_and_max() -> None:
    patch = bottom_up_gaussian_patch(2.0)
    assert patch.shape == (15, 15) and patch[7, 7] == 1.0
    gen = HeatmapGenerator(32, 2, sigma=2)
    joints = np.array(
        [
            [[10.9, 5.99, 2], [-0.5, 3.0, 2]],  # truncated to (10, 5); x in (-1, 0) is kept
            [[12.0, 5.0, 2], [32.0, 3.0, 2]],  # second joint out of bounds: dropped
            [[20.0, 20.0, 0], [-1.0, 3.0, 2]],  # invisible; x = -1 dropped
        ]
    )
    heatmaps = gen(joints)
    assert heatmaps[0, 5, 10] == 1.0 and heatmaps[0, 5, 12] == 1.0  # max, not sum
    assert heatmaps[0, 5, 11] == pytest.approx(np.exp(-1 / 8), abs=1e-7)
    assert heatmaps[0, 20, 20] == 0.0
    assert heatmaps[1, 3, 0] == 1.0 and heatmaps[1].max() == 1.0
    indices = encode_joint_indices(joints, 32, max_people=4)
    np.testing.assert_array_equal(indices[0], [[5 * 32 + 10, 1], [32 * 32 + 3 * 32, 1]])
    np.testing.assert_array_equal(indices[1], [[5 * 32 + 12, 1], [0, 0]])
    np.testing.assert_array_equal(indices[2:], 0)


def test_dark_round_trip_peak_at_float_centre() -> None:
    joints = np.array([[10.3, 20.7, 1.0], [-30.0, 5.0, 1.0]])
    target, weight = dark_top_down_targets(joints, joints[:, 2], (48, 64), sigma=2)
    assert weight.ravel().tolist() == [1.0, 0.0]
    y, x = np.unravel_index(np.argmax(target[0]), target[0].shape)
    assert (x, y) == (10, 21)
    # log-parabola through the peak recovers the sub-pixel centre exactly for a Gaussian
    row = np.log(target[0, y, x - 1 : x + 2].astype(np.float64))
    offset = 0.5 * (row[0] - row[2]) / (row[0] - 2 * row[1] + row[2])
    assert x + offset == pytest.approx(10.3, abs=1e-3)
    assert not target[1].any()
