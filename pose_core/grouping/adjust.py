"""Adjust: the official sub-pixel position of a matched joint.

Follows the official HigherHRNet (Cheng et al., CVPR 2020) `lib/core/group.py::
HeatmapParser.adjust` (and the same quarter offset inside `HeatmapParser.refine`), written
anew: each joint with value > 0 moves by 0.25 pixel towards its larger neighbour on each axis
(ties go -; neighbour indices clamped at the map border), then by +0.5. Torch ops on the maps'
device; the people stay a numpy array on the host.

Shapes and frames: grouped (P, J, 3 + L) rows x, y, value, tags in heatmap pixels; heatmaps
(J, H, W), the aggregated maps (not the NMS output). Input x, y are integer pixel indices
(x = column); output x, y = index + 0.5 +- 0.25, the official convention (a pixel's centre
is index + 0.5).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["adjust_positions"]


def _quarter_offsets(
    heatmaps_flat: torch.Tensor, joints: torch.Tensor, x: torch.Tensor, y: torch.Tensor, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """+-0.25 towards the larger neighbour (ties go -), indices clamped at the borders."""
    height = heatmaps_flat.shape[1] // width

    def value(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return heatmaps_flat[joints, yy * width + xx]

    right = value(y, torch.clamp(x + 1, max=width - 1))
    left = value(y, torch.clamp(x - 1, min=0))
    down = value(torch.clamp(y + 1, max=height - 1), x)
    up = value(torch.clamp(y - 1, min=0), x)
    dx = torch.where(right > left, 0.25, -0.25)
    dy = torch.where(down > up, 0.25, -0.25)
    return dx, dy


def adjust_positions(grouped: np.ndarray, heatmaps: torch.Tensor) -> np.ndarray:
    """Official `adjust`: integer location + 0.5 +- 0.25, for joints with value > 0.

    Args:
        grouped: (P, J, 3 + L) float32, x, y integer pixel locations (as matched).
        heatmaps: (J, H, W) the aggregated maps (not the NMS output).

    Returns:
        A float32 copy of `grouped` with adjusted x, y.
    """
    out = grouped.astype(np.float32, copy=True)
    found = np.nonzero(out[:, :, 2] > 0)
    if len(found[0]) == 0:
        return out
    dev = heatmaps.device
    num_joints, _, width = heatmaps.shape
    joints = torch.as_tensor(found[1], device=dev)
    x = torch.as_tensor(out[found][:, 0].astype(np.int64), device=dev)
    y = torch.as_tensor(out[found][:, 1].astype(np.int64), device=dev)
    dx, dy = _quarter_offsets(heatmaps.reshape(num_joints, -1), joints, x, y, width)
    out[found[0], found[1], 0] += dx.cpu().numpy().astype(np.float32) + np.float32(0.5)
    out[found[0], found[1], 1] += dy.cpu().numpy().astype(np.float32) + np.float32(0.5)
    return out
