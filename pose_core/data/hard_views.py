"""Hard views of the semi-supervised pose study: Joint Cutout and the extra affine (T_e->h).

Xie et al., "An Empirical Study of the Collapsing Problem in Semi-Supervised 2D Human Pose
Estimation" (ICCV 2021); official `xierc/Semi_Human_Pose` `lib/models/pose_dual.py` /
`pose_cons.py` (`mask_joint`, the `UNSUP_TRANSFORM` branch of `forward`) and
`lib/core/inference.py::get_max_preds_tensor`. Written from the spec, not copied.

Frames and shapes:
- images (N, 3, H, W) float, the normalised network input (0 = the mean colour);
- heatmaps (N, J, h, w) at stride `H / h` (4);
- joints (N, J, 2) float (x, y) in input pixels = heatmap argmax (x = index mod w,
  y = index div w, no sub-pixel shift) times the stride;
- theta (N, 2, 3) float64: `F.affine_grid` matrices mapping output to input in normalised
  [-1, 1] coordinates (align_corners False),
  theta = [[s cos r, s sin r, 0], [-s sin r, s cos r, 0]] (`cv2.getRotationMatrix2D((0, 0), r,
  s)`); s > 1 shrinks the content. The same theta warps the image and the teacher heatmaps, so
  heatmaps move exactly with the image.

Random streams (`HardViewRandom`): a torch generator (cutout jitter and half-sizes), a numpy
`RandomState` (cutout channels, affine scale / rotation) and a python `random.Random` (the
rotation coin). Seeded with the same integer they reproduce the official draws made after
`torch.manual_seed`, `np.random.seed`, `random.seed`.

`release=True` keeps the released code's defects: the cutout clamps x to the image height and
y to the image width (swapped), and picks its channels among all J (union) channels including
the ones never trained; the default (paper behaviour) clamps x to W and y to H and picks among
`labelled_channels`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "CutoutDraws",
    "HardAffineDraws",
    "HardViewRandom",
    "apply_joint_cutout",
    "argmax_joints",
    "draw_hard_affine",
    "draw_joint_cutout",
    "hard_affine_theta",
    "hard_point_map",
    "joint_cutout",
    "warp_with_theta",
]

CUTOUT_JITTER_STD = 10.0  # px, per axis
CUTOUT_HALF_SIZE_RANGE = (10, 20)  # integers [10, 19] px, per axis
HARD_SCALE_STD = 0.25
HARD_SCALE_RANGE = (0.75, 1.25)
HARD_ROTATION_STD = 30.0  # degrees
HARD_ROTATION_LIMIT = 60.0
HARD_ROTATION_PROB = 0.8


@dataclass
class HardViewRandom:
    """The three random streams of the hard view (see the module docstring)."""

    torch_generator: torch.Generator
    numpy_state: np.random.RandomState
    python_random: random.Random

    @classmethod
    def from_seed(cls, seed: int) -> "HardViewRandom":
        generator = torch.Generator()
        generator.manual_seed(int(seed))
        return cls(generator, np.random.RandomState(int(seed) % 2**32), random.Random(int(seed)))


@dataclass(frozen=True)
class CutoutDraws:
    """Joint Cutout draws: jitter (N, J, 2) float32 N(0, 1) (times 10 px), half_size (N, J, 2)
    int (x, y) in [10, 19], channels (N, M) int joint channels (with replacement)."""

    jitter: Tensor
    half_size: Tensor
    channels: Tensor


@dataclass(frozen=True)
class HardAffineDraws:
    """Per-sample scale (N,) and rotation in degrees (N,) of the extra affine."""

    scale: np.ndarray
    rotation_deg: np.ndarray


def argmax_joints(heatmaps: Tensor, stride: float = 4.0) -> Tensor:
    """(N, J, h, w) heatmaps -> (N, J, 2) float (x, y) input pixels of each channel's argmax
    (first maximum in row-major order), times `stride`."""
    n, j, _, w = heatmaps.shape
    index = heatmaps.detach().reshape(n, j, -1).argmax(dim=2)
    xy = torch.stack([index % w, torch.div(index, w, rounding_mode="floor")], dim=2)
    return xy.to(torch.float32) * float(stride)


def draw_joint_cutout(
    num_images: int,
    num_channels: int,
    num_cutouts: int,
    rng: HardViewRandom,
    candidate_channels: Sequence[int] | None = None,
) -> CutoutDraws:
    """Draws in the official order: jitter for every channel, half-sizes for every channel,
    then per image `num_cutouts` channels uniformly with replacement among
    `candidate_channels` (all `num_channels` when None, the release behaviour)."""
    jitter = torch.randn((num_images, num_channels, 2), generator=rng.torch_generator)
    half_size = torch.randint(*CUTOUT_HALF_SIZE_RANGE, (num_images, num_channels, 2),
                              generator=rng.torch_generator)
    pool = np.arange(num_channels) if candidate_channels is None else np.asarray(
        candidate_channels, dtype=np.int64)
    channels = [pool[rng.numpy_state.choice(len(pool), num_cutouts)] for _ in range(num_images)]
    return CutoutDraws(jitter, half_size, torch.from_numpy(np.stack(channels).astype(np.int64)))


def apply_joint_cutout(
    images: Tensor, joints: Tensor, draws: CutoutDraws, release: bool = False,
    size_scale: float = 1.0,
) -> Tensor:
    """Zero one rectangle per drawn channel around its (jittered) joint; returns a new tensor.

    Centre c = trunc(joint + 10 * jitter) (float32, toward zero); rectangle
    [cx - hx, cx + hx) x [cy - hy, cy + hy), each bound clamped to [0, W] for x and [0, H] for y
    (release: x to [0, H] and y to [0, W], the swapped limits of the released code).
    `size_scale` multiplies the jitter and the half-sizes (rounded, at least 1 px): the paper's
    pixel values are for 256x192 crops, so e.g. 0.25 keeps their proportions on 64x48 crops.
    """
    out = images.clone()
    height, width = int(images.shape[2]), int(images.shape[3])
    x_limit, y_limit = (height, width) if release else (width, height)
    jitter = draws.jitter * CUTOUT_JITTER_STD
    half_size = draws.half_size
    if size_scale != 1.0:  # the official path stays bit-exact at 1
        jitter = jitter * size_scale
        half_size = (half_size.to(torch.float32) * size_scale).round().clamp_min(1).to(
            torch.int64)
    centres = (joints.to(torch.float32) + jitter).to(torch.int32)
    for i in range(images.shape[0]):
        for channel in draws.channels[i].tolist():
            cx, cy = (int(v) for v in centres[i, channel])
            hx, hy = (int(v) for v in half_size[i, channel])
            x0, x1 = (min(max(v, 0), x_limit) for v in (cx - hx, cx + hx))
            y0, y1 = (min(max(v, 0), y_limit) for v in (cy - hy, cy + hy))
            out[i, :, y0:y1, x0:x1] = 0
    return out


def joint_cutout(
    images: Tensor,
    joints: Tensor,
    num_cutouts: int,
    rng: HardViewRandom,
    labelled_channels: Sequence[int] | None = None,
    release: bool = False,
    size_scale: float = 1.0,
) -> Tensor:
    """Draw (`draw_joint_cutout`) and apply (`apply_joint_cutout`) Joint Cutout.

    Args:
        images: (N, 3, H, W) normalised images.
        joints: (N, J, 2) teacher joints in input pixels (`argmax_joints`).
        num_cutouts: rectangles per image (official `MASK_JOINT_NUM` 5); 0 = no cutout.
        rng: the hard-view random streams.
        labelled_channels: channels that carry a trained joint (paper: picks among these);
            ignored with `release` (picks among all J).
        release: the released code's behaviour (swapped clamp, all channels).
        size_scale: multiplies the jitter and half-sizes (see `apply_joint_cutout`).
    """
    if num_cutouts <= 0:
        return images
    candidates = None if release or labelled_channels is None else labelled_channels
    draws = draw_joint_cutout(images.shape[0], joints.shape[1], num_cutouts, rng, candidates)
    return apply_joint_cutout(images, joints, draws, release=release, size_scale=size_scale)


def draw_hard_affine(num_images: int, rng: HardViewRandom) -> HardAffineDraws:
    """Per image, in the official order: scale = clip(0.25 N + 1, 0.75, 1.25), a coin u and,
    only when u <= 0.8, rotation = clip(30 N, -60, 60) degrees (else 0)."""
    scales, rotations = [], []
    for _ in range(num_images):
        scale = float(np.clip(rng.numpy_state.randn() * HARD_SCALE_STD + 1, *HARD_SCALE_RANGE))
        rotation = 0.0
        if rng.python_random.random() <= HARD_ROTATION_PROB:
            rotation = float(np.clip(rng.numpy_state.randn() * HARD_ROTATION_STD,
                                     -HARD_ROTATION_LIMIT, HARD_ROTATION_LIMIT))
        scales.append(scale)
        rotations.append(rotation)
    return HardAffineDraws(np.asarray(scales), np.asarray(rotations))


def hard_affine_theta(draws: HardAffineDraws) -> Tensor:
    """(N, 2, 3) float64 theta = [[s cos r, s sin r, 0], [-s sin r, s cos r, 0]]."""
    radians = np.deg2rad(draws.rotation_deg)
    alpha = draws.scale * np.cos(radians)
    beta = draws.scale * np.sin(radians)
    zeros = np.zeros_like(alpha)
    theta = np.stack([np.stack([alpha, beta, zeros], 1), np.stack([-beta, alpha, zeros], 1)], 1)
    return torch.from_numpy(theta.astype(np.float64))


def warp_with_theta(maps: Tensor, theta: Tensor) -> Tensor:
    """Warp (N, C, H, W) maps by theta (N, 2, 3): float64 grid cast to the maps' dtype,
    bilinear, zero padding, align_corners False (the official call on torch >= 1.3)."""
    grid = F.affine_grid(theta.to(torch.float64), list(maps.shape), align_corners=False)
    return F.grid_sample(maps, grid.to(maps.dtype).to(maps.device), mode="bilinear",
                         padding_mode="zeros", align_corners=False)


def hard_point_map(points_xy: np.ndarray, theta: np.ndarray, size_wh: Sequence[int]) -> np.ndarray:
    """Where pixel points (K, 2) of an (w, h) map land after `warp_with_theta` with one
    (2, 3) theta (pixel centres at i + 0.5 in the align_corners False convention)."""
    w, h = (float(v) for v in size_wh)
    normalised = np.stack([(2 * points_xy[:, 0] + 1) / w - 1,
                           (2 * points_xy[:, 1] + 1) / h - 1], 1)
    inverse = np.linalg.inv(np.asarray(theta, np.float64)[:, :2])
    out = normalised @ inverse.T
    return np.stack([((out[:, 0] + 1) * w - 1) / 2, ((out[:, 1] + 1) * h - 1) / 2], 1)

