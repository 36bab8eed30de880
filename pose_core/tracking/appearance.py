"""Appearance of a person for tracking: the colours along its limbs.

When two people overlap or cross, keypoint similarity alone cannot tell which track a detection
continues: both tracks' predicted skeletons are close to it. Their clothes usually differ. Each
limb of the skeleton (`KeypointSpec.skeleton`, torso sides included) is sampled at a few points
between its two joints; the limb's colour is the median of those pixels in CIE Lab (OpenCV's
8-bit scaling), so a sample that falls on the background or on another person moves it less.

- `limb_colours(image_bgr, keypoints, skeleton, min_score)` -> (P, E, 3) float32 and a (P, E)
  validity mask (both joints above `min_score`, every sample inside the image).
- `appearance_similarity(a, a_valid, b, b_valid, scale)` -> (P, T) in [0, 1]:
  exp(-mean over the limbs valid in both of the Lab distance / `scale`); NaN where no limb is
  valid in both (the caller decides what "unknown" means).

Tracks keep an exponential moving average of their limb colours (`PoseTracker`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["LIMB_SAMPLES", "appearance_similarity", "limb_colours"]

LIMB_SAMPLES = (0.2, 0.35, 0.5, 0.65, 0.8)  # fractions of the way from a limb's first joint


def limb_colours(
    image_bgr: np.ndarray,
    keypoints: np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    min_score: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Median Lab colour of each limb of each person.

    Args:
        image_bgr: (H, W, 3) uint8 BGR frame, or (H, W) grey.
        keypoints: (P, J, 3) x, y, score in the frame's pixels.
        skeleton: E limbs as (joint, joint) pairs.
        min_score: joints at or below it are not used.

    Returns:
        colours (P, E, 3) float32 (0 where invalid) and valid (P, E) bool.
    """
    if image_bgr.ndim == 2 or (image_bgr.ndim == 3 and image_bgr.shape[2] == 1):
        image_bgr = cv2.cvtColor(np.ascontiguousarray(image_bgr), cv2.COLOR_GRAY2BGR)
    # TypeError, not ValueError: callers read a ValueError of the tracker as a time jump
    if image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise TypeError("limb_colours needs an (H, W, 3) BGR or (H, W) grey uint8 image, got "
                        f"{image_bgr.dtype} {image_bgr.shape}")
    people = np.asarray(keypoints, np.float64)
    num_people, num_limbs = people.shape[0], len(skeleton)
    colours = np.zeros((num_people, num_limbs, 3), np.float32)
    valid = np.zeros((num_people, num_limbs), bool)
    if num_people == 0 or num_limbs == 0:
        return colours, valid
    limbs = np.asarray(skeleton, np.int64)
    start, end = people[:, limbs[:, 0]], people[:, limbs[:, 1]]  # (P, E, 3)
    fractions = np.asarray(LIMB_SAMPLES)[None, None, :, None]
    points = start[:, :, None, :2] + fractions * (end[:, :, None, :2] - start[:, :, None, :2])
    height, width = image_bgr.shape[:2]
    columns, rows = np.floor(points[..., 0]), np.floor(points[..., 1])  # (P, E, S)
    inside = ((columns >= 0) & (columns < width) & (rows >= 0) & (rows < height)).all(axis=2)
    seen = (start[..., 2] > min_score) & (end[..., 2] > min_score)
    valid = seen & inside & np.isfinite(points).all(axis=(2, 3))
    if not valid.any():
        return colours, valid
    pick_rows = rows[valid].astype(np.int64)  # (V, S)
    pick_columns = columns[valid].astype(np.int64)
    samples = image_bgr[pick_rows, pick_columns]  # (V, S, 3) uint8
    lab = cv2.cvtColor(samples.reshape(-1, 1, 3), cv2.COLOR_BGR2LAB).reshape(samples.shape)
    colours[valid] = np.median(lab.astype(np.float32), axis=1)
    return colours, valid


def appearance_similarity(
    a: np.ndarray,
    a_valid: np.ndarray,
    b: np.ndarray,
    b_valid: np.ndarray,
    scale: float,
) -> np.ndarray:
    """(P, T) similarity in [0, 1] of P people's and T tracks' limb colours; NaN where they
    share no valid limb."""
    if scale <= 0:
        raise ValueError("appearance scale must be > 0")
    both = a_valid[:, None, :] & b_valid[None, :, :]  # (P, T, E)
    distance = np.linalg.norm(a[:, None] - b[None, :], axis=3)  # (P, T, E)
    count = both.sum(axis=2)
    mean = np.where(both, distance, 0.0).sum(axis=2) / np.maximum(count, 1)
    return np.where(count > 0, np.exp(-mean / scale), np.nan)
