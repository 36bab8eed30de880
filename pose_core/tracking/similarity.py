"""Similarity of people between two frames: keypoint similarity (OKS) and box overlap (IoU).

OKS follows the COCO definition (`pycocotools.cocoeval.COCOeval.computeOks`): per joint
exp(-d^2 / (2 s^2 (2 sigma)^2)) with s^2 the object area, averaged over the joints found in
both people (score above `min_score`); people with no joint in common have OKS 0. The area is
the mean of the two people's joint-box areas.

Shapes: people (N, J, 3) x, y, score in image pixels; boxes (N, 4) x, y, w, h.
"""

from __future__ import annotations

import numpy as np

__all__ = ["joint_boxes", "box_iou_matrix", "oks_matrix"]


def joint_boxes(people: np.ndarray, min_score: float) -> np.ndarray:
    """(N, 4) x, y, w, h around each person's joints with score > min_score (0 when none)."""
    people = np.asarray(people, np.float64)
    found = people[:, :, 2] > min_score
    boxes = np.zeros((len(people), 4))
    if not len(people):
        return boxes
    big = np.finfo(np.float64).max
    x0 = np.where(found, people[:, :, 0], big).min(axis=1)
    y0 = np.where(found, people[:, :, 1], big).min(axis=1)
    x1 = np.where(found, people[:, :, 0], -big).max(axis=1)
    y1 = np.where(found, people[:, :, 1], -big).max(axis=1)
    any_found = found.any(axis=1)
    x0, y0, x1, y1 = (v[any_found] for v in (x0, y0, x1, y1))
    boxes[any_found] = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    return boxes


def box_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xywh boxes; 0 where a box has no area."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    ax1, ay1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx1, by1 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = np.minimum(ax1[:, None], bx1[None]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(ay1[:, None], by1[None]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def oks_matrix(
    a: np.ndarray, b: np.ndarray, sigmas: np.ndarray, min_score: float
) -> np.ndarray:
    """(N, M) OKS between people `a` (N, J, 3) and `b` (M, J, 3)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    areas_a = np.prod(joint_boxes(a, min_score)[:, 2:], axis=1)
    areas_b = np.prod(joint_boxes(b, min_score)[:, 2:], axis=1)
    area = (areas_a[:, None] + areas_b[None]) / 2.0 + np.spacing(1)
    variances = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(axis=-1)
    e = d2 / variances / area[..., None] / 2.0
    both = (a[:, None, :, 2] > min_score) & (b[None, :, :, 2] > min_score)
    counts = both.sum(axis=-1)
    total = np.where(both, np.exp(-e), 0.0).sum(axis=-1)
    return np.where(counts > 0, total / np.maximum(counts, 1), 0.0)
