"""3D keypoints from an aligned depth image: `keypoints_from_depth`.

Each joint's depth is a robust statistic of the depth pixels around it: the median of the valid
pixels (finite, > 0, inside [min_depth, max_depth]) of a square window whose size follows the
person's size in the image (a joint of a near, large person gets a larger window). A joint
needs `min_valid_fraction` of its window valid; joints whose depth is further than
`max_offset` metres from the person's median joint depth (a wrist over the background, a
depth hole filled by the wall behind) are rejected. The position is the pinhole back-projection
X = (u - cx) / fx * Z, Y = (v - cy) / fy * Z in the depth camera's optical frame (x right,
y down, z forward, metres); with `distortion` (the `plumb_bob` model: k1, k2, p1, p2[, k3], or
OpenCV's 8, 12 or 14 coefficients) the pixel is undistorted first (`cv2.undistortPoints`).

Frames: keypoints (P, J, 3) x, y, score in the depth image's pixels (integer = pixel centre, as
`Poses.keypoints`; a joint with score <= 0 or any non-finite value is not found); depth (H, W)
in metres (`depth_unit="m"`, float) or millimetres ("mm", integers, the `16UC1` convention of
REP 118, 0 = no reading). K is (3, 3) or the 9 values of `CameraInfo.k` (row-major).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "keypoints_from_depth", "joint_window_half_sizes", "check_camera_model", "found_joints",
]

DEPTH_UNITS = {"m": 1.0, "mm": 1e-3}
DISTORTION_LENGTHS = (4, 5, 8, 12, 14)  # what cv2.undistortPoints accepts


def found_joints(keypoints: np.ndarray) -> np.ndarray:
    """(P, J) bool: joints with a positive score and finite x, y, score (a NaN score or
    coordinate is a bad detection, not a found joint)."""
    keypoints = np.asarray(keypoints, np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(keypoints).all(axis=-1) & (keypoints[..., 2] > 0)


def joint_window_half_sizes(
    keypoints: np.ndarray, fraction: float = 0.02, min_half: int = 1, max_half: int = 12
) -> np.ndarray:
    """(P,) window half-size per person: `fraction` of its joint-box diagonal, clipped."""
    keypoints = np.asarray(keypoints, np.float64)
    half = np.full(len(keypoints), min_half, np.int64)
    found_mask = found_joints(keypoints)
    for p, person in enumerate(keypoints):
        found = person[found_mask[p], :2]
        if len(found) >= 2:
            diagonal = float(np.linalg.norm(found.max(axis=0) - found.min(axis=0)))
            # min first: a huge (finite) coordinate must not overflow round()
            half[p] = int(np.clip(round(min(fraction * diagonal, max_half)), min_half, max_half))
    return half


def keypoints_from_depth(
    keypoints: np.ndarray,
    depth: np.ndarray,
    camera_matrix: np.ndarray,
    depth_unit: str = "m",
    distortion: Sequence[float] | np.ndarray | None = None,
    *,
    min_depth: float = 0.1,
    max_depth: float = 20.0,
    max_offset: float = 0.5,
    min_valid_fraction: float = 0.25,
    window_fraction: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """3D positions of 2D keypoints from an aligned depth image.

    Args:
        keypoints: (P, J, 3) x, y, score in the depth image's pixels (score <= 0: not found).
        depth: (H, W) depth image (integer depth must be "mm").
        camera_matrix: intrinsics K of the depth image, (3, 3) or the 9 values of
            `CameraInfo.k` (fx, fy > 0, last row 0, 0, 1).
        depth_unit: "m" (e.g. `32FC1`) or "mm" (e.g. `16UC1`).
        distortion: plumb_bob coefficients (k1, k2, p1, p2[, k3]; OpenCV's 8, 12 or 14 also
            work), or None / empty for none.
        min_depth / max_depth: valid depth range, metres.
        max_offset: largest distance (m) of a joint's depth from its person's median.
        min_valid_fraction: share of valid pixels a joint's window needs.
        window_fraction: window half-size as a fraction of the person's joint-box diagonal.

    Returns:
        positions (P, J, 3) float64 metres in the depth camera's optical frame (0 where not
        valid), valid (P, J) bool.

    Raises:
        ValueError: a bad depth image, unit (integer depth in "m"), camera matrix or distortion.

    Warns:
        UserWarning: float depth in "mm" whose readings all look like metres.
    """
    keypoints = np.asarray(keypoints, np.float64)
    if keypoints.ndim != 3 or keypoints.shape[2] != 3:
        raise ValueError(f"keypoints must be (P, J, 3), got {keypoints.shape}")
    depth = _checked_depth(depth, depth_unit, max_depth)
    k, distortion = check_camera_model(camera_matrix, distortion)
    found = found_joints(keypoints)
    halves = joint_window_half_sizes(keypoints, window_fraction)
    depths = np.full(found.shape, np.nan)
    for p in range(len(keypoints)):
        depths[p] = _window_medians(depth, keypoints[p], found[p], int(halves[p]), depth_unit,
                                    min_depth, max_depth, min_valid_fraction)
    with warnings.catch_warnings():  # a person without any depth: NaN median, no joint valid
        warnings.simplefilter("ignore", RuntimeWarning)
        person_median = np.nanmedian(depths, axis=1, keepdims=True)
    valid = np.isfinite(depths) & (np.abs(depths - person_median) <= max_offset)
    positions = np.zeros(found.shape + (3,))
    if valid.any():
        rays = _normalised_rays(keypoints[valid][:, :2], k, distortion)
        z = depths[valid]
        positions[valid] = np.column_stack([rays[:, 0] * z, rays[:, 1] * z, z])
    return positions, valid


def _window_medians(
    depth: np.ndarray, person: np.ndarray, found: np.ndarray, half: int, unit: str,
    low: float, high: float, min_valid_fraction: float,
) -> np.ndarray:
    """(J,) median valid depth (m) in each found joint's window of one person (NaN where the
    joint is not found, outside the image, or its window has too few valid pixels).

    The windows are cut from the image clipped at its border; all of a person's windows are
    read in one gather, and only their pixels are converted to metres (a few numpy calls per
    person: in a node whose other threads hold the GIL, many small calls cost far more than
    their arithmetic).
    """
    medians = np.full(len(person), np.nan)
    height, width = depth.shape
    with np.errstate(invalid="ignore"):
        u = np.round(person[:, 0]).astype(np.int64, copy=False)
        v = np.round(person[:, 1]).astype(np.int64, copy=False)
    joints = np.flatnonzero(found & (u >= 0) & (u < width) & (v >= 0) & (v < height))
    if not len(joints):
        return medians
    offsets = np.arange(-half, half + 1)
    rows, cols = v[joints, None] + offsets, u[joints, None] + offsets  # (n, 2 half + 1)
    in_image = (((rows >= 0) & (rows < height))[:, :, None]
                & ((cols >= 0) & (cols < width))[:, None, :])
    windows = _in_metres(
        depth[np.clip(rows, 0, height - 1)[:, :, None], np.clip(cols, 0, width - 1)[:, None, :]],
        unit, low, high,
    )
    windows[~in_image] = np.nan
    # the median of each row's valid values: NaN sorts last, so they are the first `valid`
    ordered = np.sort(windows.reshape(len(joints), -1), axis=1)
    valid = np.isfinite(ordered).sum(axis=1)
    enough = valid >= np.maximum(1, min_valid_fraction * in_image.reshape(len(joints), -1).sum(1))
    rows_ok = np.flatnonzero(enough)
    if len(rows_ok):
        count = valid[rows_ok]
        lower = ordered[rows_ok, (count - 1) // 2]
        upper = ordered[rows_ok, count // 2]
        medians[joints[rows_ok]] = (lower + upper) / 2
    return medians


def check_camera_model(
    camera_matrix: Sequence[float] | np.ndarray, distortion: Sequence[float] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(K (3, 3), distortion coefficients or None when there is no distortion) after checking
    them; the node uses it on CameraInfo too.

    Raises:
        ValueError: K not 3x3 / 9 values, not finite, fx or fy <= 0, last row not (0, 0, 1);
            distortion not finite or of a length OpenCV does not accept.
    """
    k = np.asarray(camera_matrix, np.float64)
    if k.size == 9:
        k = k.reshape(3, 3)  # CameraInfo.k: row-major
    if k.shape != (3, 3) or not np.isfinite(k).all() or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ValueError(f"camera_matrix must be a finite 3x3 K with fx, fy > 0, got {k.tolist()}")
    # Rejected, not normalised: K with another last row is not a pinhole matrix of the
    # CameraInfo convention, and dividing by K[2][2] would hide a broken driver.
    if not np.array_equal(k[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"camera_matrix last row must be (0, 0, 1), got {k[2].tolist()}")
    if distortion is None:
        return k, None
    coefficients = np.asarray(distortion, np.float64).reshape(-1)
    if not np.isfinite(coefficients).all():
        raise ValueError(f"distortion must be finite, got {coefficients.tolist()}")
    if coefficients.size and coefficients.size not in DISTORTION_LENGTHS:
        raise ValueError(
            f"distortion must have {', '.join(map(str, DISTORTION_LENGTHS))} coefficients "
            f"(or none), got {coefficients.size}"
        )
    return k, (coefficients if np.any(coefficients != 0) else None)


def _checked_depth(depth: np.ndarray, unit: str, high: float) -> np.ndarray:
    """The depth image as an array, after checking its shape, unit and dtype."""
    if unit not in DEPTH_UNITS:
        raise ValueError(f"depth_unit must be one of {sorted(DEPTH_UNITS)}, got {unit!r}")
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.size == 0:
        raise ValueError(f"depth must be a non-empty (H, W) image, got {depth.shape}")
    if unit == "m" and np.issubdtype(depth.dtype, np.integer):
        raise ValueError(
            f"integer depth ({depth.dtype}) must be depth_unit='mm' (16UC1 is millimetres, "
            "REP 118); metres need a float image"
        )
    if unit == "mm" and np.issubdtype(depth.dtype, np.floating):
        _warn_if_metres(depth, high)
    return depth


def _in_metres(depth: np.ndarray, unit: str, low: float, high: float) -> np.ndarray:
    """Depth pixels as float64 metres with NaN where there is no valid reading."""
    metres = depth.astype(np.float64) * DEPTH_UNITS[unit]
    with np.errstate(invalid="ignore"):
        metres[~np.isfinite(metres) | (metres < low) | (metres > high)] = np.nan
    return metres


def _warn_if_metres(depth: np.ndarray, max_depth_m: float) -> None:
    """Float depth said to be millimetres whose readings are all at most `max_depth_m` (as
    numbers) is almost surely metres: every reading would be under 2 cm and none valid."""
    with np.errstate(invalid="ignore"):
        readings = depth[np.isfinite(depth) & (depth > 0)]
    if readings.size and float(readings.max()) <= max_depth_m:
        warnings.warn(
            f"float depth with depth_unit='mm' has every reading <= {max_depth_m:g} "
            f"(max {float(readings.max()):.3g}): it looks like metres (use depth_unit='m'); "
            "no joint gets a position",
            stacklevel=4,  # the caller of keypoints_from_depth
        )


def _normalised_rays(
    pixels: np.ndarray, camera_matrix: np.ndarray, distortion: np.ndarray | None
) -> np.ndarray:
    """(M, 2) normalised image coordinates (x/z, y/z) of pixels (`distortion` checked)."""
    if distortion is not None:
        points = pixels.reshape(-1, 1, 2).astype(np.float64)
        return cv2.undistortPoints(points, camera_matrix, distortion).reshape(-1, 2)
    fx, fy = camera_matrix[0, 0], camera_matrix[1, 1]
    cx, cy = camera_matrix[0, 2], camera_matrix[1, 2]
    return np.column_stack([(pixels[:, 0] - cx) / fx, (pixels[:, 1] - cy) / fy])
