"""Coupled Embedding training targets: instance scales and scale codes (+ heatmaps, indices).

Mirrors the official CE release (`CR320/CoupledEmbedding` @ cc57620):
`datasets/pipeline/utils.py::warp_affine_boxes` (box corners), `datasets/pipeline/transform.py`
(`ScalesEncoder`, `HeatmapGenerator`, `JointsEncoder`, `FormatGroundTruth`) and
`models/loss/loss_factory.py::RegularizedAssociativeEmbeddingLoss.embed_scales`:

- box corners of an (x, y, w, h) box: tl, bl, tr, br (P, 4, 2), warped with the input affine;
- instance scale s = sqrt(|tl - bl| * |tl - tr|) / S (S = network input side), float64; it can
  exceed 1 after a zoom-in augmentation; person slots without a person get 0;
- scale-bin centres c_d = (d + 0.5) / D; scale code e(s)_d = L2-normalise(1 / (|s - c_d| +
  1e-12)): peaked at the nearest bin;
- heatmaps (`pose_core.codecs.heatmap.HeatmapGenerator`: sigma 2, 15 x 15 window on the
  truncated joint, max over people) and AE joint indices at stride 4
  (`pose_core.codecs.associative_embedding.encode_joint_indices`) are the HigherHRNet ones.

Frames: joints and corners in network-input pixels (square side S); the heatmap of resolution i
has side S / 4 * 2**i.
"""

from __future__ import annotations

import numpy as np

from pose_core.codecs.associative_embedding import encode_joint_indices
from pose_core.codecs.heatmap import HeatmapGenerator

__all__ = [
    "SCALE_CODE_EPS",
    "box_corners",
    "scale_bin_centres",
    "instance_scales",
    "scale_codes",
    "encode_ce_targets",
]

SCALE_CODE_EPS = 1e-12  # official `embed_scales` offset of the inverse distance


def box_corners(boxes_xywh: np.ndarray) -> np.ndarray:
    """(P, 4) x, y, w, h -> (P, 4, 2) corners tl, bl, tr, br (official corner order)."""
    boxes = np.asarray(boxes_xywh, np.float64).reshape(-1, 4)
    x, y, w, h = boxes.T
    return np.stack(
        [np.stack(c, axis=1) for c in ((x, y), (x, y + h), (x + w, y), (x + w, y + h))], axis=1
    )


def scale_bin_centres(num_bins: int) -> np.ndarray:
    """(D,) bin centres (d + 0.5) / D."""
    return (np.arange(num_bins, dtype=np.float64) + 0.5) / num_bins


def instance_scales(
    corners: np.ndarray, input_size: int, max_people: int | None = None
) -> np.ndarray:
    """sqrt(|tl - bl| * |tl - tr|) / input_size per person, float64 (official
    `ScalesEncoder`); with `max_people`, padded with zeros to that many slots."""
    corners = np.asarray(corners, np.float64).reshape(-1, 4, 2)
    edge_h = np.sum((corners[:, 0] - corners[:, 1]) ** 2, axis=1) ** 0.5
    edge_w = np.sum((corners[:, 0] - corners[:, 2]) ** 2, axis=1) ** 0.5
    scales = (edge_h * edge_w / (input_size * input_size)) ** 0.5
    if max_people is None:
        return scales
    out = np.zeros(max_people, np.float64)
    out[: min(len(scales), max_people)] = scales[:max_people]
    return out


def scale_codes(scales: np.ndarray, num_bins: int) -> np.ndarray:
    """(..., D) L2-normalised inverse distances of each scale to the bin centres."""
    gap = np.abs(np.asarray(scales, np.float64)[..., None] - scale_bin_centres(num_bins))
    code = 1.0 / (gap + SCALE_CODE_EPS)
    norm = np.maximum(np.linalg.norm(code, axis=-1, keepdims=True), 1e-12)
    return code / norm


def encode_ce_targets(
    keypoints: np.ndarray,
    corners: np.ndarray | None,
    input_size: int,
    num_resolutions: int,
    num_joints: int,
    tag_dim: int,
    sigma: float = 2.0,
    max_people: int = 30,
) -> dict[str, np.ndarray]:
    """All CE targets of one sample.

    Args:
        keypoints: (P, J, 3) x, y, visibility in input pixels.
        corners: (P, 4, 2) warped box corners in input pixels, or None (scales 0).
        input_size: square input side S.
        num_resolutions: heatmap resolutions (S/4, S/2, ...).
        num_joints / tag_dim: J and D.
        sigma / max_people: heatmap sigma (output pixels) and person slots.

    Returns:
        "heatmaps_<i>" (J, r_i, r_i) float32, "joints" (max_people, J, 2) int64 at S/4,
        "box_scales" (max_people,) float64, "scale_codes" (max_people, D) float64.
    """
    joints = np.asarray(keypoints, np.float64).reshape(-1, num_joints, 3)
    targets: dict[str, np.ndarray] = {}
    for i in range(num_resolutions):
        side = input_size // 4 * 2**i
        scaled = joints.copy()
        scaled[..., :2] *= side / input_size
        targets[f"heatmaps_{i}"] = HeatmapGenerator(side, num_joints, sigma)(scaled)
        if i == 0:
            targets["joints"] = encode_joint_indices(scaled, side, max_people)
    if corners is None:
        scales = np.zeros(max_people, np.float64)
    else:
        scales = instance_scales(corners, input_size, max_people)
    targets["box_scales"] = scales
    targets["scale_codes"] = scale_codes(scales, tag_dim)
    return targets

