"""Non-maximum suppression: heatmap max-pool NMS (bottom-up) and OKS-NMS (top-down).

- `heatmap_nms` mirrors the official HigherHRNet `HeatmapParser.nms` (lib/core/group.py): a
  k x k max-pool with stride 1 and padding k // 2; a pixel survives when the pooled value equals
  its own value exactly (plateaus survive), every other pixel becomes 0. Torch, on the maps'
  device. Maps are (..., H, W) in heatmap pixels.
- `oks_nms` mirrors the top-down HRNet `lib/nms/nms.py::oks_nms` (greedy, by descending score,
  with OKS against the kept person and the pycocotools sigmas). Numpy, image pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["heatmap_nms", "local_maxima", "window_max", "inner_window_max", "oks_iou", "oks_nms"]


def heatmap_nms(heatmaps: torch.Tensor, kernel: int = 5) -> torch.Tensor:
    """Keep the local maxima of each map, zero elsewhere.

    Args:
        heatmaps: (..., H, W) float tensor, any device.
        kernel: odd pooling window (official W32-512 test value 5; code default 3).

    Returns:
        Tensor shaped like `heatmaps`: the value where the k x k max equals it, else 0.
    """
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"nms kernel must be a positive odd integer, got {kernel}")
    return heatmaps * local_maxima(heatmaps, kernel).to(heatmaps.dtype)


def local_maxima(heatmaps: torch.Tensor, kernel: int = 5) -> torch.Tensor:
    """Boolean (..., H, W): the pixel equals the max of its k x k window (-inf outside)."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"nms kernel must be a positive odd integer, got {kernel}")
    pooled = window_max(window_max(heatmaps, kernel, -1), kernel, -2)
    return pooled == heatmaps


def window_max(maps: torch.Tensor, kernel: int, dim: int) -> torch.Tensor:
    """Centred sliding max of odd width `kernel` along `dim` (-2 or -1), -inf padding.

    Equal to max_pool with that window, stride 1 and padding kernel // 2 (max is exact); built
    from doubling windows (log2(kernel) + 1 elementwise maxima instead of kernel - 1).
    """
    radius = kernel // 2
    if radius == 0:
        return maps
    pad = (radius, radius, 0, 0) if dim == -1 else (0, 0, radius, radius)
    return inner_window_max(F.pad(maps, pad, value=-torch.inf), kernel, dim)


def inner_window_max(maps: torch.Tensor, kernel: int, dim: int) -> torch.Tensor:
    """out[p] = max(maps[p : p + kernel]) along `dim` (-1 or -2), p < size - kernel + 1: the
    window max of the inner positions, without padding, from doubling windows
    (log2(kernel) + 1 elementwise maxima instead of kernel - 1)."""
    count = maps.shape[dim] - kernel + 1
    acc, covered = maps, 1
    while covered * 2 <= kernel:
        length = acc.shape[dim] - covered
        acc = torch.maximum(acc.narrow(dim, 0, length), acc.narrow(dim, covered, length))
        covered *= 2
    if covered < kernel:
        rest = kernel - covered
        return torch.maximum(acc.narrow(dim, 0, count), acc.narrow(dim, rest, count))
    return acc.narrow(dim, 0, count)


def oks_iou(
    reference: np.ndarray,
    others: np.ndarray,
    reference_area: float,
    other_areas: np.ndarray,
    sigmas: np.ndarray,
    min_visibility: float | None = None,
) -> np.ndarray:
    """Object keypoint similarity between one person and several others (HRNet `oks_iou`).

    Args:
        reference: (J, 3) x, y, score in image pixels.
        others: (M, J, 3).
        reference_area: box area of `reference` (w * h).
        other_areas: (M,) box areas.
        sigmas: (J,) OKS sigmas; the variance is (2 sigma)^2.
        min_visibility: when set, joints of `others` whose score is not above it are ignored.
            HRNet's `in_vis_thre` combines the two masks with Python's `and` on lists, which
            yields the second mask only; that behaviour is kept.

    Returns:
        (M,) OKS values.
    """
    variances = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    if len(others) == 0:
        return np.zeros((0,), np.float64)
    dx = others[:, :, 0] - reference[None, :, 0]
    dy = others[:, :, 1] - reference[None, :, 1]
    area_mean = (reference_area + np.asarray(other_areas, np.float64))[:, None] / 2.0
    e = (dx**2 + dy**2) / variances[None, :] / (area_mean + np.spacing(1)) / 2.0
    if min_visibility is not None:
        visible = others[:, :, 2] > min_visibility
        terms = np.where(visible, np.exp(-e), 0.0)
        counts = visible.sum(axis=1)
        return np.where(counts > 0, terms.sum(axis=1) / np.maximum(counts, 1), 0.0)
    return np.exp(-e).mean(axis=1) if e.shape[1] > 0 else np.zeros((len(others),))


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    sigmas: np.ndarray,
    threshold: float = 0.9,
    min_visibility: float | None = None,
) -> np.ndarray:
    """Greedy OKS non-maximum suppression (top-down HRNet reference).

    Args:
        keypoints: (P, J, 3) x, y, score in image pixels.
        scores: (P,) person scores.
        areas: (P,) box areas.
        sigmas: (J,) OKS sigmas.
        threshold: people whose OKS with a kept person exceeds it are dropped (HRNet 0.9).
        min_visibility: passed to `oks_iou`.

    Returns:
        Indices of the kept people, in descending score order (int64).
    """
    keypoints = np.asarray(keypoints, np.float64)
    if len(keypoints) == 0:
        return np.zeros((0,), np.int64)
    order = np.argsort(np.asarray(scores))[::-1]
    areas = np.asarray(areas, np.float64)
    keep: list[int] = []
    while order.size > 0:
        first = int(order[0])
        keep.append(first)
        rest = order[1:]
        oks = oks_iou(
            keypoints[first], keypoints[rest], float(areas[first]), areas[rest], sigmas,
            min_visibility,
        )
        order = rest[oks <= threshold]
    return np.asarray(keep, np.int64)
