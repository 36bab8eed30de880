"""keypoints_from_depth: back-projection, units, distortion, holes, edges and outliers."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from pose_core.depth import keypoints_from_depth

K = np.array([[500.0, 0, 320], [0, 520.0, 240], [0, 0, 1]])


def person(points: list[tuple[float, float]]) -> np.ndarray:
    return np.array([[(x, y, 0.9) for x, y in points]])


def test_back_projection_of_known_points_in_metres_and_millimetres() -> None:
    depth = np.full((480, 640), 2.5, np.float32)
    keypoints = person([(320, 240), (420, 240), (320, 344), (100, 50)])
    positions, valid = keypoints_from_depth(keypoints, depth, K, "m")
    assert valid.all()
    expected = [(0, 0, 2.5), (100 / 500 * 2.5, 0, 2.5), (0, 104 / 520 * 2.5, 2.5),
                (-220 / 500 * 2.5, -190 / 520 * 2.5, 2.5)]
    np.testing.assert_allclose(positions[0], expected, atol=1e-9)
    millimetres = (depth * 1000).astype(np.uint16)
    positions_mm, valid_mm = keypoints_from_depth(keypoints, millimetres, K, "mm")
    np.testing.assert_allclose(positions_mm, positions, atol=1e-9)
    assert valid_mm.all()


def test_distortion_is_undone_before_back_projection() -> None:
    distortion = np.array([-0.2, 0.05, 0.001, -0.002, 0.0])
    true_ray = np.array([[0.3, -0.2]])  # normalised coordinates of a point at z = 3 m
    pixel, _ = cv2.projectPoints(
        np.array([[0.9, -0.6, 3.0]]), np.zeros(3), np.zeros(3), K, distortion
    )
    keypoints = person([tuple(pixel.reshape(2))])
    depth = np.full((480, 640), 3.0)
    positions, valid = keypoints_from_depth(keypoints, depth, K, "m", distortion)
    assert valid.all()
    np.testing.assert_allclose(positions[0, 0], [*true_ray[0] * 3.0, 3.0], atol=1e-4)
    plain, _ = keypoints_from_depth(keypoints, depth, K, "m")
    assert np.abs(plain[0, 0, :2] - positions[0, 0, :2]).max() > 0.01  # distortion matters


def test_window_median_survives_holes_and_noise_and_rejects_edges() -> None:
    rng = np.random.default_rng(0)
    depth = np.full((480, 640), 4.0) + rng.normal(0, 0.01, (480, 640))
    depth[rng.random((480, 640)) < 0.3] = 0.0  # 30 % holes (no reading)
    depth[:, :100] = np.nan
    # a person 200 px tall: windows of a few pixels
    keypoints = person([(300, 150), (300, 350), (320, 250), (50, 250), (700, 250)])
    positions, valid = keypoints_from_depth(keypoints, depth, K, "m")
    assert valid[0].tolist() == [True, True, True, False, False]  # NaN region, outside image
    np.testing.assert_allclose(positions[0, :3, 2], 4.0, atol=0.02)


def test_joints_far_from_the_person_depth_are_rejected() -> None:
    depth = np.full((480, 640), 2.0)
    depth[200:260, 400:460] = 6.0  # a wrist that falls on the wall behind
    keypoints = person([(300, 150), (300, 350), (320, 250), (430, 230), (310, 300)])
    positions, valid = keypoints_from_depth(keypoints, depth, K, "m")
    assert valid[0].tolist() == [True, True, True, False, True]
    missing = person([(300, 150)])
    missing[0, 0, 2] = 0.0  # not found: no position
    assert not keypoints_from_depth(missing, depth, K)[1].any()


@pytest.mark.parametrize(
    ("depth", "camera", "unit", "message"),
    [
        (np.zeros((4,)), K, "m", "depth must be"),
        (np.zeros((4, 4)), np.diag([0.0, 1.0, 1.0]), "m", "fx, fy > 0"),
        (np.zeros((4, 4)), K, "cm", "depth_unit"),
    ],
)
def test_bad_input_is_refused(depth, camera, unit, message) -> None:
    with pytest.raises(ValueError, match=message):
        keypoints_from_depth(person([(1, 1)]), depth, camera, unit)


def test_camera_matrix_may_be_the_nine_values_of_camera_info_k() -> None:
    depth = np.full((480, 640), 2.0)
    keypoints = person([(420, 300), (100, 50)])
    as_matrix = keypoints_from_depth(keypoints, depth, K)
    as_flat = keypoints_from_depth(keypoints, depth, K.reshape(-1).tolist())
    np.testing.assert_array_equal(as_flat[0], as_matrix[0])
    assert as_flat[1].all()
    scaled = K * 2.0  # homogeneous scale: K[2][2] == 2 is refused, not normalised
    with pytest.raises(ValueError, match=r"last row must be \(0, 0, 1\)"):
        keypoints_from_depth(keypoints, depth, scaled)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_distortion_is_refused(bad: float) -> None:
    distortion = [-0.2, bad, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="distortion must be finite"):
        keypoints_from_depth(person([(300, 200)]), np.full((480, 640), 2.0), K, "m", distortion)


@pytest.mark.parametrize("length", [1, 3, 6, 7, 9, 15])
def test_distortion_of_a_length_opencv_does_not_take_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match=r"4, 5, 8, 12, 14 coefficients.*got %d" % length):
        keypoints_from_depth(person([(300, 200)]), np.full((480, 640), 2.0), K, "m",
                             [0.01] * length)


@pytest.mark.parametrize("length", [4, 5, 8, 12, 14, 0])
def test_every_distortion_length_opencv_takes_works(length: int) -> None:
    positions, valid = keypoints_from_depth(person([(300, 200)]), np.full((480, 640), 2.0), K,
                                            "m", [0.001] * length)
    assert valid.all() and np.isfinite(positions).all()


def test_keypoints_with_non_finite_coordinates_or_score_are_not_found() -> None:
    keypoints = person([(300, 150), (300, 350), (320, 250), (310, 300)])
    keypoints[0, 0, 0] = np.nan  # NaN x with a positive score: not found, no crash
    keypoints[0, 1, 1] = np.inf
    keypoints[0, 2, 2] = np.nan  # NaN score: not found
    positions, valid = keypoints_from_depth(keypoints, np.full((480, 640), 2.0), K)
    assert valid[0].tolist() == [False, False, False, True]
    assert np.isfinite(positions).all()
    np.testing.assert_allclose(positions[0, 3], [-10 / 500 * 2, 60 / 520 * 2, 2.0])


def test_integer_depth_in_metres_is_refused_and_float_metres_as_mm_warn() -> None:
    millimetres = np.full((480, 640), 2500, np.uint16)
    with pytest.raises(ValueError, match="depth_unit='mm'.*16UC1 is millimetres"):
        keypoints_from_depth(person([(300, 200)]), millimetres, K, "m")
    metres = np.full((480, 640), 2.5, np.float32)
    metres[:10] = np.nan
    with pytest.warns(UserWarning, match="looks like metres"):
        _, valid = keypoints_from_depth(person([(300, 200)]), metres, K, "mm")
    assert not valid.any()
    with warnings.catch_warnings():  # real millimetres in a float image: no warning
        warnings.simplefilter("error")
        _, valid = keypoints_from_depth(person([(300, 200)]), metres * 1000, K, "mm")
    assert valid.all()


def _reference_depths(keypoints, depth_m, half_sizes, min_valid_fraction=0.25):
    """The window statistic written as the plain per-joint loop: median of the valid pixels of
    the window clipped at the image border, if enough of them are valid."""
    out = np.full(keypoints.shape[:2], np.nan)
    height, width = depth_m.shape
    for p, person in enumerate(keypoints):
        half = int(half_sizes[p])
        for j, (x, y, score) in enumerate(person):
            if not (np.isfinite([x, y, score]).all() and score > 0):
                continue
            u, v = int(round(x)), int(round(y))
            if not (0 <= u < width and 0 <= v < height):
                continue
            window = depth_m[max(v - half, 0): v + half + 1, max(u - half, 0): u + half + 1]
            values = window[np.isfinite(window) & (window >= 0.1) & (window <= 20.0)]
            if values.size >= max(1, min_valid_fraction * window.size):
                out[p, j] = np.median(values)
    return out


def test_window_medians_match_the_plain_per_joint_loop_on_random_frames() -> None:
    from pose_core.depth import joint_window_half_sizes

    rng = np.random.default_rng(7)
    camera = np.array([[400.0, 0, 80], [0, 400.0, 60], [0, 0, 1]])
    for _ in range(40):
        depth = rng.uniform(0.05, 21.0, (120, 160))
        depth[rng.random(depth.shape) < rng.uniform(0, 0.9)] = np.nan
        people = rng.integers(0, 4)
        keypoints = np.column_stack([rng.uniform(-10, 170, people * 17),
                                     rng.uniform(-10, 130, people * 17),
                                     rng.uniform(-0.3, 1, people * 17)]).reshape(people, 17, 3)
        positions, valid = keypoints_from_depth(keypoints, depth, camera, max_offset=100.0)
        expected = _reference_depths(keypoints, depth, joint_window_half_sizes(keypoints))
        np.testing.assert_array_equal(valid, np.isfinite(expected))
        np.testing.assert_allclose(positions[valid][:, 2], expected[valid])
