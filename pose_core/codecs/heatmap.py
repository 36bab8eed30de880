"""Heatmap training targets: bottom-up (HigherHRNet) and top-down (HRNet, DARK unbiased).

Mirrors, in our own code, the target generators of the official repositories:

- HigherHRNet (Cheng et al., CVPR 2020), `lib/dataset/target_generators/target_generators.py`
  (`HeatmapGenerator`, `ScaleAwareHeatmapGenerator`): a (6σ+3)×(6σ+3) Gaussian patch with peak 1
  centred on the *truncated* integer joint position `(int(x), int(y))`, covering
  `[x − 3σ − 1, x + 3σ + 2)`; overlapping people combined with an element-wise maximum. A joint
  counts when its visibility is > 0 and `0 <= int(x), int(y) < r` (truncation toward zero keeps
  x in (−1, 0)).
- HRNet top-down (Sun et al., CVPR 2019), `lib/dataset/JointsDataset.py::generate_target`:
  joints in input-image pixels are divided by the stride and rounded (`int(v / stride + 0.5)`),
  a (6σ+1)×(6σ+1) patch is pasted there; a joint whose 3σ box lies outside the map gets weight 0.
- DarkPose (Zhang et al., CVPR 2020), `generate_target` with the unbiased encoding: joints are
  already in heatmap pixels, the target is the full-map Gaussian with a float centre (no rounding,
  no window) and the same weight rule.

Frames: every joint array here is in the pixel frame of the map it is encoded into (heatmap
pixels; x to the right, y down, pixel (i, j) has integer coordinates, no half-pixel shift),
except `hrnet_top_down_targets`, whose joints are in input-image pixels (as the official code).
Shapes: bottom-up joints (P, J, 3) = x, y, visibility (scale-aware: (P, J, 4) with the person
sigma in column 3 of joint 0); outputs (J, H, W) float32; top-down weights (J, 1) float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "HeatmapGenerator",
    "ScaleAwareHeatmapGenerator",
    "bottom_up_gaussian_patch",
    "dark_top_down_targets",
    "hrnet_top_down_targets",
    "TopDownHeatmapEncoder",
]


def bottom_up_gaussian_patch(sigma: float) -> np.ndarray:
    """The bottom-up kernel: exp(-d²/2σ²) sampled on `ceil(6σ+3)` points per side.

    The centre is at index 3σ+1 (a float when σ is not an integer, as in the official code).

    Returns:
        (S, S) float64 patch, S = len(arange(0, 6σ+3)).
    """
    size = 6 * sigma + 3
    xs = np.arange(0, size, 1, dtype=np.float64)
    ys = xs[:, None]
    centre = 3 * sigma + 1
    return np.exp(-((xs - centre) ** 2 + (ys - centre) ** 2) / (2 * sigma**2))


def _paste_max(
    heatmap: np.ndarray, patch: np.ndarray, x: int, y: int, sigma: float, size_wh: tuple[int, int]
) -> None:
    """Element-wise max of `patch` into `heatmap` (H, W) around the integer joint (x, y)."""
    width, height = size_wh
    # Python's round() on floats rounds half to even, like the official np.round
    left = round(x - 3 * sigma - 1)
    top = round(y - 3 * sigma - 1)
    right = round(x + 3 * sigma + 2)
    bottom = round(y + 3 * sigma + 2)
    # patch window (c:d, a:b) and map window (cc:dd, aa:bb), clipped to the map
    c, d = max(0, -left), min(right, width) - left
    a, b = max(0, -top), min(bottom, height) - top
    cc, dd = max(0, left), min(right, width)
    aa, bb = max(0, top), min(bottom, height)
    if dd <= cc or bb <= aa:
        return
    region = heatmap[aa:bb, cc:dd]
    np.maximum(region, patch[a:b, c:d], out=region, casting="unsafe")


def _paste_person(
    heatmaps: np.ndarray, person: np.ndarray, patch: np.ndarray, sigma: float
) -> None:
    """Paste `patch` (max) at every visible joint of one person (J, >=3) whose truncated
    position lies on the (J, r, r) maps."""
    r = heatmaps.shape[-1]
    for joint_index, (x_f, y_f, vis) in enumerate(person[:, :3]):
        if vis <= 0:
            continue
        x, y = int(x_f), int(y_f)
        if x < 0 or y < 0 or x >= r or y >= r:
            continue
        _paste_max(heatmaps[joint_index], patch, x, y, sigma, (r, r))


class HeatmapGenerator:
    """Bottom-up heatmap targets at one output resolution (official `HeatmapGenerator`).

    Args:
        output_size: side r of the square output map (e.g. 128 or 256 for a 512 input).
        num_joints: J.
        sigma: Gaussian sigma in output pixels; a negative value means r / 64 as the official
            default (the W32/W48 yamls set 2 at every resolution).
    """

    def __init__(self, output_size: int, num_joints: int, sigma: float = 2.0) -> None:
        self.output_size = int(output_size)
        self.num_joints = int(num_joints)
        self.sigma = float(sigma) if sigma >= 0 else self.output_size / 64
        self._patch = bottom_up_gaussian_patch(self.sigma)

    def __call__(self, joints: np.ndarray) -> np.ndarray:
        """Encode people.

        Args:
            joints: (P, J, >=3) x, y, visibility in output pixels of this resolution.

        Returns:
            (J, r, r) float32 heatmaps.
        """
        return self.encode(joints)

    def encode(self, joints: np.ndarray) -> np.ndarray:
        """See `__call__`."""
        joints = np.asarray(joints, dtype=np.float64)
        joints = joints.reshape(-1, self.num_joints, joints.shape[-1])
        heatmaps = np.zeros((self.num_joints, self.output_size, self.output_size), np.float32)
        for person in joints:
            _paste_person(heatmaps, person, self._patch, self.sigma)
        return heatmaps


class ScaleAwareHeatmapGenerator:
    """Bottom-up targets with one sigma per person (official `ScaleAwareHeatmapGenerator`).

    The sigma of person p is `joints[p, 0, 3]` (the official code reads it from joint 0 only).

    Args:
        output_size: side r of the square output map.
        num_joints: J.
    """

    def __init__(self, output_size: int, num_joints: int) -> None:
        self.output_size = int(output_size)
        self.num_joints = int(num_joints)

    def __call__(self, joints: np.ndarray) -> np.ndarray:
        """Encode people.

        Args:
            joints: (P, J, 4) x, y, visibility, sigma (output pixels).

        Returns:
            (J, r, r) float32 heatmaps.
        """
        joints = np.asarray(joints, dtype=np.float64)
        heatmaps = np.zeros((self.num_joints, self.output_size, self.output_size), np.float32)
        for person in joints:
            sigma = float(person[0, 3])
            _paste_person(heatmaps, person, bottom_up_gaussian_patch(sigma), sigma)
        return heatmaps


def _outside(mu_x: float, mu_y: float, tmp_size: float, heatmap_wh: tuple[int, int]) -> bool:
    """The official weight rule: the 3σ box [int(μ−3σ), int(μ+3σ+1)] misses the map entirely."""
    left, top = int(mu_x - tmp_size), int(mu_y - tmp_size)
    right, bottom = int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1)
    return left >= heatmap_wh[0] or top >= heatmap_wh[1] or right < 0 or bottom < 0


def _top_down_arrays(
    joints: np.ndarray, joints_vis: np.ndarray, heatmap_wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joints as float64 (J, >=2), a zero target (J, h, w) float32 and the weight (J, 1) float32
    taken from visibility column 0."""
    joints = np.asarray(joints, dtype=np.float64)
    vis = np.asarray(joints_vis, dtype=np.float64).reshape(len(joints), -1)[:, 0]
    num_joints = len(joints)
    width, height = int(heatmap_wh[0]), int(heatmap_wh[1])
    target = np.zeros((num_joints, height, width), dtype=np.float32)
    weight = vis.astype(np.float32).reshape(num_joints, 1)
    return joints, target, weight


def hrnet_top_down_targets(
    joints: np.ndarray,
    joints_vis: np.ndarray,
    image_wh: tuple[int, int],
    heatmap_wh: tuple[int, int],
    sigma: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """HRNet's rounded top-down encoding.

    Args:
        joints: (J, >=2) joint x, y in input-image (crop) pixels.
        joints_vis: (J,) or (J, >=1) visibility, 0/1 (column 0 is used).
        image_wh: network input size (w, h), e.g. (192, 256).
        heatmap_wh: heatmap size (w, h), e.g. (48, 64).
        sigma: Gaussian sigma in heatmap pixels.

    Returns:
        target (J, h, w) float32, target_weight (J, 1) float32.
    """
    joints, target, weight = _top_down_arrays(joints, joints_vis, heatmap_wh)
    num_joints, height, width = target.shape
    stride_x = image_wh[0] / heatmap_wh[0]
    stride_y = image_wh[1] / heatmap_wh[1]
    tmp_size = sigma * 3
    size = int(2 * tmp_size + 1)
    xs = np.arange(0, size, 1, dtype=np.float32)
    ys = xs[:, None]
    centre = size // 2
    patch = np.exp(-((xs - centre) ** 2 + (ys - centre) ** 2) / (2 * sigma**2))
    for j in range(num_joints):
        mu_x = int(joints[j, 0] / stride_x + 0.5)
        mu_y = int(joints[j, 1] / stride_y + 0.5)
        if _outside(mu_x, mu_y, tmp_size, (width, height)):
            weight[j] = 0.0
            continue
        if weight[j, 0] <= 0.5:
            continue
        left, top = int(mu_x - tmp_size), int(mu_y - tmp_size)
        right, bottom = int(mu_x + tmp_size + 1), int(mu_y + tmp_size + 1)
        gx0, gx1 = max(0, -left), min(right, width) - left
        gy0, gy1 = max(0, -top), min(bottom, height) - top
        ix0, ix1 = max(0, left), min(right, width)
        iy0, iy1 = max(0, top), min(bottom, height)
        target[j, iy0:iy1, ix0:ix1] = patch[gy0:gy1, gx0:gx1]
    return target, weight


def dark_top_down_targets(
    joints: np.ndarray,
    joints_vis: np.ndarray,
    heatmap_wh: tuple[int, int],
    sigma: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """DarkPose's unbiased top-down encoding (full-map Gaussian at a float centre).

    Args:
        joints: (J, >=2) joint x, y already in heatmap pixels (DarkPose maps them with an affine
            built for the heatmap size, corner-aligned).
        joints_vis: (J,) or (J, >=1) visibility, 0/1 (column 0 is used).
        heatmap_wh: heatmap size (w, h).
        sigma: Gaussian sigma in heatmap pixels.

    Returns:
        target (J, h, w) float32, target_weight (J, 1) float32.
    """
    joints, target, weight = _top_down_arrays(joints, joints_vis, heatmap_wh)
    num_joints, height, width = target.shape
    tmp_size = sigma * 3
    xs = np.arange(0, width, 1, dtype=np.float32)
    ys = np.arange(0, height, 1, dtype=np.float32)[:, None]
    for j in range(num_joints):
        mu_x, mu_y = joints[j, 0], joints[j, 1]
        if _outside(mu_x, mu_y, tmp_size, (width, height)):
            weight[j] = 0.0
            continue
        if weight[j, 0] > 0.5:
            target[j] = np.exp(-((xs - mu_x) ** 2 + (ys - mu_y) ** 2) / (2 * sigma**2))
    return target, weight


class TopDownHeatmapEncoder:
    """Top-down targets for one crop, standard (HRNet) or unbiased (DARK).

    Args:
        image_wh: network input size (w, h), e.g. (192, 256).
        heatmap_wh: heatmap size (w, h), e.g. (48, 64).
        sigma: Gaussian sigma in heatmap pixels (2 at 64×48, 3 at 96×72).
        encoding: "standard" (HRNet rounded patch) or "dark" (unbiased full map).
    """

    def __init__(
        self,
        image_wh: Sequence[int],
        heatmap_wh: Sequence[int],
        sigma: float = 2.0,
        encoding: str = "standard",
    ) -> None:
        if encoding not in ("standard", "dark"):
            raise ValueError(f"encoding must be 'standard' or 'dark', got {encoding!r}")
        self.image_wh = (int(image_wh[0]), int(image_wh[1]))
        self.heatmap_wh = (int(heatmap_wh[0]), int(heatmap_wh[1]))
        self.sigma = float(sigma)
        self.encoding = encoding

    def encode(
        self, joints_image: np.ndarray, joints_vis: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode joints given in input-crop pixels.

        For "dark", the joints are first moved to heatmap pixels with the corner-aligned scale
        (heatmap − 1) / (image − 1) per axis, which is what DarkPose's heatmap-size affine gives
        for the same crop.

        Args:
            joints_image: (J, >=2) x, y in input-crop pixels.
            joints_vis: (J,) or (J, >=1) visibility 0/1.

        Returns:
            target (J, h, w) float32, target_weight (J, 1) float32.
        """
        if self.encoding == "standard":
            return hrnet_top_down_targets(
                joints_image, joints_vis, self.image_wh, self.heatmap_wh, self.sigma
            )
        joints = np.asarray(joints_image, dtype=np.float64)[:, :2].copy()
        joints[:, 0] *= (self.heatmap_wh[0] - 1) / (self.image_wh[0] - 1)
        joints[:, 1] *= (self.heatmap_wh[1] - 1) / (self.image_wh[1] - 1)
        return dark_top_down_targets(joints, joints_vis, self.heatmap_wh, self.sigma)

