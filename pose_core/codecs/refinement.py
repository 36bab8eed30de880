"""Heatmap decoding to sub-pixel coordinates: DARK and the classic quarter offset.

- `dark_decode`: distribution-aware decoding of DarkPose (Zhang et al., "Distribution-Aware
  Coordinate Representation for Human Pose Estimation", CVPR 2020; official
  `lib/core/inference.py::get_final_preds` / `taylor` / `gaussian_blur`): integer argmax of the original
  map; modulation by a K x K Gaussian blur (sigma = 0.3 ((K-1)/2 - 1) + 0.8, OpenCV's rule for
  sigma 0) of the zero-padded map in float64, rescaled to the original maximum; log; one Newton
  (second-order Taylor) step at the argmax when 1 < px < W-2 and 1 < py < H-2 (strict), with
  the step-2 stencil for the second derivatives, only when the Hessian determinant is non-zero.
- `quarter_offset_decode`: top-down HRNet (`lib/core/inference.py::get_final_preds` of
  leoxiaobin/deep-high-resolution-net.pytorch): argmax, then +-0.25 by the sign of the
  neighbour differences when 1 < px < W-1 and 1 < py < H-1 with px = floor(x + 0.5).

Both work on batched (N, J, H, W) maps, torch (any device, same type back) or numpy, and return
coordinates in heatmap pixels (x, y; no +0.5) and maxima (N, J); coordinates are 0 where the
maximum is <= 0 (the official `get_max_preds` mask).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from pose_core.numerics import all_finite

__all__ = [
    "dark_decode",
    "dark_offsets_at",
    "quarter_offset_decode",
    "argmax_decode",
    "gaussian_kernel_1d",
]


def _to_tensor(heatmaps: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, bool]:
    is_numpy = isinstance(heatmaps, np.ndarray)
    tensor = torch.from_numpy(np.ascontiguousarray(heatmaps)) if is_numpy else heatmaps
    if tensor.ndim != 4:
        raise ValueError(f"heatmaps must be (N, J, H, W), got {tuple(tensor.shape)}")
    if tensor.shape[2] < 1 or tensor.shape[3] < 1:
        raise ValueError(f"empty heatmaps {tuple(tensor.shape)}")
    return tensor, is_numpy


def _back(
    coords: torch.Tensor, maxvals: torch.Tensor, like: torch.Tensor, is_numpy: bool
) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
    coords = coords.to(torch.float32)
    maxvals = maxvals.to(torch.float32)
    if is_numpy:
        return coords.cpu().numpy(), maxvals.cpu().numpy()
    return coords.to(like.device), maxvals.to(like.device)


def argmax_decode(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First row-major argmax per map.

    Returns:
        coords (N, J, 2) float64 (x, y) heatmap pixels, zeroed where max <= 0; maxvals (N, J).
    """
    n, j, h, w = heatmaps.shape
    maxvals, idx = heatmaps.reshape(n, j, -1).max(dim=2)
    coords = torch.stack((idx % w, torch.div(idx, w, rounding_mode="floor")), dim=-1).double()
    coords = coords * (maxvals > 0)[..., None]
    return coords, maxvals


def gaussian_kernel_1d(kernel: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """OpenCV's `getGaussianKernel(K, 0)` for K > 7: sigma = 0.3 ((K-1)/2 - 1) + 0.8, sum 1."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"blur kernel must be a positive odd integer, got {kernel}")
    if kernel <= 7:
        # OpenCV's fixed small-kernel tables for sigma <= 0.
        tables = {
            1: [1.0],
            3: [0.25, 0.5, 0.25],
            5: [0.0625, 0.25, 0.375, 0.25, 0.0625],
            7: [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125],
        }
        return torch.tensor(tables[kernel], dtype=dtype)
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    x = torch.arange(kernel, dtype=torch.float64) - (kernel - 1) / 2
    k = torch.exp(-(x * x) / (2 * sigma * sigma))
    return (k / k.sum()).to(dtype)


def _modulate(heatmaps: torch.Tensor, kernel: int) -> torch.Tensor:
    """DarkPose `gaussian_blur`: blur the zero-padded map in float64, rescale to the max."""
    n, j, h, w = heatmaps.shape
    pad = (kernel - 1) // 2
    k1 = gaussian_kernel_1d(kernel).to(heatmaps.device)
    x = heatmaps.reshape(n * j, 1, h, w).double()
    x = F.conv2d(x, k1.reshape(1, 1, 1, kernel), padding=(0, pad))
    x = F.conv2d(x, k1.reshape(1, 1, kernel, 1), padding=(pad, 0))
    blurred = x.reshape(n, j, h, w).float()  # DarkPose writes back into the float32 map
    original_max = heatmaps.float().reshape(n, j, -1).amax(dim=2)
    blurred_max = blurred.reshape(n, j, -1).amax(dim=2)
    ratio = torch.where(
        blurred_max != 0, original_max / blurred_max, torch.zeros_like(blurred_max)
    )
    return blurred * ratio[..., None, None]


def _sampler(
    flat: torch.Tensor, px: torch.Tensor, py: torch.Tensor, size_wh: tuple[int, int]
) -> Callable[[int, int], torch.Tensor]:
    """`at(dy, dx)`: the value of each (N, J) map of `flat` (N, J, H*W) at (py + dy, px + dx),
    the position clamped to the map."""
    w, h = size_wh

    def at(dy: int, dx: int) -> torch.Tensor:
        yy = torch.clamp(py + dy, 0, h - 1)
        xx = torch.clamp(px + dx, 0, w - 1)
        return torch.gather(flat, 2, (yy * w + xx)[..., None])[..., 0]

    return at


def _taylor_offsets(
    at: Callable[[int, int], torch.Tensor], inside: torch.Tensor
) -> torch.Tensor:
    """DARK's Taylor step -H^-1 g of the log-map, from the 5x5 stencil `at(dy, dx)` (float64).

    Returns:
        (..., 2) offsets (x, y), 0 where `inside` is False or the Hessian determinant is 0.
    """
    center = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = 0.25 * (at(0, 2) - 2 * center + at(0, -2))
    dyy = 0.25 * (at(2, 0) - 2 * center + at(-2, 0))
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = dxx * dyy - dxy * dxy
    ok = inside & (det != 0)
    safe = torch.where(ok, det, torch.ones_like(det))
    off_x = -(dyy * dx - dxy * dy) / safe
    off_y = -(-dxy * dx + dxx * dy) / safe
    return torch.stack((off_x, off_y), dim=-1) * ok[..., None]


def dark_decode(
    heatmaps: torch.Tensor | np.ndarray, kernel: int = 11
) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
    """DARK coordinates of every map.

    Args:
        heatmaps: (N, J, H, W) float, torch (any device) or numpy. Not modified.
        kernel: blur size (DarkPose TEST.BLUR_KERNEL: 11 for 256x192 and 384x288).

    Returns:
        coords (N, J, 2) float32 heatmap pixels (x, y); maxvals (N, J) float32 of the original
        maps; same array type (and device) as the input.

    Raises:
        ValueError: wrong rank, empty maps or non-finite values.
    """
    tensor, is_numpy = _to_tensor(heatmaps)
    if not all_finite(tensor):
        raise ValueError("heatmaps contain NaN or infinite values")
    coords, maxvals = argmax_decode(tensor.float())
    n, j, h, w = tensor.shape
    logs = torch.log(torch.clamp(_modulate(tensor, kernel), min=1e-10)).double()
    px = coords[..., 0].long()
    py = coords[..., 1].long()
    inside = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    pxc = torch.clamp(px, 2, max(w - 3, 2))
    pyc = torch.clamp(py, 2, max(h - 3, 2))
    flat = logs.reshape(n, j, -1)

    at = _sampler(flat, pxc, pyc, (w, h))

    offsets = _taylor_offsets(at, inside)
    return _back(coords + offsets, maxvals, tensor, is_numpy)


def quarter_offset_decode(
    heatmaps: torch.Tensor | np.ndarray,
) -> tuple[torch.Tensor | np.ndarray, torch.Tensor | np.ndarray]:
    """Top-down HRNet decoding: argmax + 0.25 sign(neighbour difference), in heatmap pixels.

    Args:
        heatmaps: (N, J, H, W) torch or numpy.

    Returns:
        coords (N, J, 2) float32, maxvals (N, J) float32, same array type as the input.
    """
    tensor, is_numpy = _to_tensor(heatmaps)
    maps = tensor.float()
    coords, maxvals = argmax_decode(maps)
    n, j, h, w = maps.shape
    px = torch.floor(coords[..., 0] + 0.5).long()
    py = torch.floor(coords[..., 1] + 0.5).long()
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    pxc = torch.clamp(px, 1, max(w - 2, 1))
    pyc = torch.clamp(py, 1, max(h - 2, 1))
    flat = maps.reshape(n, j, -1)

    at = _sampler(flat, pxc, pyc, (w, h))

    diff = torch.stack((at(0, 1) - at(0, -1), at(1, 0) - at(-1, 0)), dim=-1)
    coords = coords + torch.sign(diff).double() * 0.25 * inside[..., None]
    return _back(coords, maxvals, tensor, is_numpy)


def dark_offsets_at(
    heatmaps: torch.Tensor, joints: torch.Tensor, points: torch.Tensor, kernel: int = 11
) -> torch.Tensor:
    """DARK sub-pixel offsets at given integer points of (J, H, W) maps (bottom-up use).

    Same modulation and Taylor step as `dark_decode`, evaluated on (K + 4)-pixel patches around
    each point instead of the whole map (the blur of the zero-padded map only reaches K // 2
    pixels, so the patch values are the full-map values). The rescaling to the original
    maximum multiplies a map by a constant, which the log-derivatives do not see, so it is
    skipped (the results differ only where blurred values fall below the 1e-10 log clamp).

    Args:
        heatmaps: (J, H, W) float maps.
        joints: (M,) int64 map index of each point.
        points: (M, 2) int64 (x, y) integer positions.
        kernel: blur size.

    Returns:
        (M, 2) float64 offsets (0 where the border rule 1 < p < size - 2 or a zero Hessian
        determinant leaves the point unchanged).
    """
    num_joints, height, width = heatmaps.shape
    if joints.numel() == 0:
        return torch.zeros((0, 2), dtype=torch.float64, device=heatmaps.device)
    blur_radius = (kernel - 1) // 2
    reach = blur_radius + 2  # stencil radius 2 + blur radius
    side = 2 * reach + 1
    padded = F.pad(heatmaps.double(), (reach, reach, reach, reach))
    offsets = torch.arange(side, device=heatmaps.device)
    x, y = points[:, 0].long(), points[:, 1].long()
    rows = (joints.long()[:, None] * (height + 2 * reach) + y[:, None] + offsets)[:, :, None]
    index = rows * (width + 2 * reach) + (x[:, None] + offsets)[:, None, :]
    patches = padded.reshape(-1).take(index)[:, None]  # (M, 1, side, side)
    k1 = gaussian_kernel_1d(kernel).to(heatmaps.device)
    blurred = F.conv2d(patches, k1.reshape(1, 1, 1, kernel))
    blurred = F.conv2d(blurred, k1.reshape(1, 1, kernel, 1))[:, 0]  # (M, 5, 5), centre (2, 2)
    logs = torch.log(torch.clamp(blurred.float(), min=1e-10)).double()

    def at(dy: int, dx: int) -> torch.Tensor:
        return logs[:, 2 + dy, 2 + dx]

    inside = (x > 1) & (x < width - 2) & (y > 1) & (y < height - 2)
    return _taylor_offsets(at, inside)
