"""Affine geometry between image pixels, network input pixels and heatmap pixels.

Conventions (HigherHRNet / HRNet `lib/utils/transforms.py::get_affine_transform`,
`lib/core/inference.py::get_final_preds`; HigherHRNet `lib/utils/transforms.py::
get_multi_scale_size`; DarkPose `lib/utils/transforms.py`):
- centre (cx, cy) in image pixels, scale (sx, sy) in units of 200 px (`PIXEL_STD`).
- HRNet / HigherHRNet `get_affine_transform` is **centre-aligned**: the centre goes to
  (W/2, H/2) of the output with the factor W / (200 sx).
- DarkPose's version is **corner-aligned** (unbiased): the centre goes to ((W-1)/2, (H-1)/2) with
  the factor (W-1) / (200 sx - 1).
- Matrices are (2, 3) float64 mapping (x, y, 1) forward (image -> output) or back (`inverse`).
  They are built as the official code does, from three float32 points through
  `cv2.getAffineTransform`, so the warps match the official ones bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

__all__ = [
    "PIXEL_STD",
    "affine_matrix",
    "apply_affine",
    "box_to_center_scale",
    "multi_scale_size",
    "back_project_centre_aligned",
    "back_project_corner_aligned",
]

PIXEL_STD = 200.0


def affine_matrix(
    center: Sequence[float],
    scale: Sequence[float] | float,
    output_wh: Sequence[float],
    *,
    rotation: float = 0.0,
    inverse: bool = False,
    corner_aligned: bool = False,
) -> np.ndarray:
    """Affine between the box (centre, 200 * scale) and an output of size `output_wh`.

    Args:
        center: (cx, cy) image pixels.
        scale: (sx, sy) or one number, in 200-px units (only sx sets the factor).
        output_wh: (W, H) of the output.
        rotation: degrees.
        inverse: output -> image instead of image -> output.
        corner_aligned: DarkPose's unbiased variant instead of HRNet's centre-aligned one.

    Returns:
        (2, 3) float64.
    """
    scale_x = float(scale if np.isscalar(scale) else scale[0])  # type: ignore[index]
    src_w = scale_x * PIXEL_STD
    dst_w, dst_h = float(output_wh[0]), float(output_wh[1])
    if corner_aligned:
        src_w, dst_w, dst_h = src_w - 1.0, dst_w - 1.0, dst_h - 1.0
    rad = math.pi * rotation / 180.0
    sin, cos = math.sin(rad), math.cos(rad)
    half = src_w * -0.5
    src_dir = np.array([0.0 * cos - half * sin, 0.0 * sin + half * cos])
    src = np.zeros((3, 2), np.float32)
    dst = np.zeros((3, 2), np.float32)
    src[0] = np.asarray(center, np.float64)
    src[1] = np.asarray(center, np.float64) + src_dir
    dst[0] = (dst_w * 0.5, dst_h * 0.5)
    dst[1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0.0, dst_w * -0.5])
    for points in (src, dst):
        direction = points[0] - points[1]
        points[2] = points[1] + np.array([-direction[1], direction[0]], np.float32)
    if inverse:
        return cv2.getAffineTransform(dst, src)
    return cv2.getAffineTransform(src, dst)


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (..., 2) points with a (2, 3) matrix; returns float64 (..., 2)."""
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def back_project_centre_aligned(
    coords: np.ndarray, center: np.ndarray, scale: np.ndarray, heatmap_wh: Sequence[int]
) -> np.ndarray:
    """HRNet/HigherHRNet `transform_preds`: heatmap pixels -> image pixels.

    Args:
        coords: (N, J, 2) heatmap coordinates.
        center: (N, 2) or (2,) image pixels.
        scale: (N, 2) or (2,) 200-px units.
        heatmap_wh: (W, H) of the heatmap.

    Returns:
        (N, J, 2) float64 image coordinates.
    """
    return _back_project(coords, center, scale, heatmap_wh, corner_aligned=False)


def back_project_corner_aligned(
    coords: np.ndarray, center: np.ndarray, scale: np.ndarray, heatmap_wh: Sequence[int]
) -> np.ndarray:
    """DarkPose `transform_preds` (corner-aligned affine); same arguments as above."""
    return _back_project(coords, center, scale, heatmap_wh, corner_aligned=True)


def _back_project(
    coords: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    heatmap_wh: Sequence[int],
    corner_aligned: bool,
) -> np.ndarray:
    coords = np.asarray(coords, np.float64)
    centers = np.broadcast_to(np.asarray(center, np.float64), (coords.shape[0], 2))
    scales = np.broadcast_to(np.asarray(scale, np.float64), (coords.shape[0], 2))
    out = np.empty_like(coords)
    for i in range(coords.shape[0]):
        mat = affine_matrix(
            centers[i], scales[i], heatmap_wh, inverse=True, corner_aligned=corner_aligned
        )
        out[i] = apply_affine(coords[i], mat)
    return out


def box_to_center_scale(
    box_xywh: Sequence[float], aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """HRNet `_box2cs`: box -> centre and scale at a fixed aspect (w / h), enlarged by 1.25.

    Returns:
        centre (2,) and scale (2,) float32.
    """
    x, y, w, h = (float(v) for v in box_xywh[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], np.float32)
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], np.float32)
    if center[0] != -1:
        scale = scale * padding
    return center, scale


def _ceil64(value: float) -> float:
    return math.floor((value + 63) / 64) * 64


def multi_scale_size(
    image_wh: Sequence[int], input_size: int, current_scale: float, min_scale: float
) -> tuple[tuple[int, int], tuple[int, int], tuple[float, float]]:
    """HigherHRNet `lib/utils/transforms.py::get_multi_scale_size`: network input size, centre and scale.

    The short side goes to int(ceil64(min_scale * input_size)) * current / min_scale; the long
    side keeps the aspect and is rounded up to a multiple of 64 (then zero-padded by the warp).

    Args:
        image_wh: (w, h) of the image.
        input_size: the model's square input size (e.g. 512).
        current_scale: this pass's scale factor.
        min_scale: the smallest scale of the test.

    Returns:
        size_wh (w_r, h_r) of the network input, centre (int, int), scale (sx, sy).
    """
    w, h = int(image_wh[0]), int(image_wh[1])
    center = (int(w / 2.0 + 0.5), int(h / 2.0 + 0.5))
    min_input = int(_ceil64(min_scale * input_size))
    if w < h:
        w_resized = int(min_input * current_scale / min_scale)
        h_resized = int(int(_ceil64(min_input / w * h)) * current_scale / min_scale)
        scale = (w / PIXEL_STD, h_resized / w_resized * w / PIXEL_STD)
    else:
        h_resized = int(min_input * current_scale / min_scale)
        w_resized = int(int(_ceil64(min_input / h * w)) * current_scale / min_scale)
        scale = (w_resized / h_resized * h / PIXEL_STD, h / PIXEL_STD)
    return (w_resized, h_resized), center, scale
