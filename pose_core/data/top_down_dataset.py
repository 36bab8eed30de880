"""Top-down (HRNet / DarkPose) samples: one person crop per ground-truth box or detection.

Mirrors, in our own code, HRNet `lib/dataset/coco.py` (box loading, `_xywh2cs`) and
`lib/dataset/JointsDataset.py` (`__getitem__`, half body, flip, target generation), and DarkPose's
changes (corner-aligned affine, joints mapped straight to heatmap pixels, unbiased targets):

- GT boxes: `clean_bbox` clips [x, y, w, h] to the image ((w − 1), (h − 1) spans) and keeps
  annotations with area > 0, a non-empty clipped box and at least one labelled joint;
- detections (`[{image_id, category_id, bbox, score}]`, the official results format): category 1
  with score ≥ `min_score`; joints unknown (zeros, visibility ones);
- box → centre/scale: centre = box centre, the short side enlarged to the aspect w/h of the input,
  scale = (w, h)/200 · 1.25 (`padding`);
- training augmentation: half body (optional), scale · clip(N(0,1)·sf + 1, 1 − sf, 1 + sf),
  rotation clip(N(0,1)·rf, −2rf, 2rf) with probability 0.6, flip (x ← W − x − 1, joint pairs
  swapped, centre mirrored);
- crop with `crop_affine_transform` (HRNet: centre → (W/2, H/2) and W/(200·s_x); DARK:
  ((W−1)/2, (H−1)/2) and (W−1)/(200·s_x − 1)), bilinear `warpAffine`, black border;
- targets: "standard" = HRNet rounded patch from crop pixels; "dark" = unbiased full-map
  Gaussian from joints mapped by a heatmap-size affine.

Frames: record joints (J, 3) x, y, visibility 0/1 in original-image pixels; `center` (2,) image
pixels; `scale` (2,) in 200-px units; sample `image` (3, H, W) normalised RGB crop; `target`
(J, h, w); `target_weight` (J, 1).
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pose_core.codecs.heatmap import dark_top_down_targets, hrnet_top_down_targets
from pose_core.data.bottom_up_dataset import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    normalize_image,
    read_image_rgb,
)
from pose_core.data.coco import ImageRecord
from pose_core.data.detections import read_detections
from pose_core.geometry import affine_matrix
from pose_core.keypoint_specs import KeypointSpec

__all__ = [
    "COCO_UPPER_BODY_IDS",
    "PersonInstance",
    "TopDownDataset",
    "box_to_center_scale",
    "clean_bbox",
    "crop_affine_transform",
    "instances_from_detections",
    "instances_from_records",
]

COCO_UPPER_BODY_IDS = tuple(range(11))  # HRNet's upper body for COCO-17 (head, arms)
PIXEL_STD = 200.0


@dataclass(frozen=True)
class PersonInstance:
    """One top-down crop request.

    Attributes:
        image_id: image id.
        path: image file.
        center: (2,) float32 crop centre, image pixels.
        scale: (2,) float32 crop size in 200-px units (padding included).
        joints: (J, 3) float32 x, y, 0 in image pixels (zeros for detections).
        joints_vis: (J,) float32 visibility 0/1 (ones for detections).
        score: detection score (1 for ground truth).
        area: annotation area (w·h of the box for detections).
    """

    image_id: int
    path: pathlib.Path
    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray
    joints_vis: np.ndarray
    score: float = 1.0
    area: float = 0.0


def box_to_center_scale(
    bbox_xywh: Sequence[float], aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """HRNet `_xywh2cs`: box -> centre (2,) and scale (2,) float32 at aspect w/h.

    Args:
        bbox_xywh: (x, y, w, h) image pixels.
        aspect_ratio: input width / height (192/256 = 0.75).
        padding: box enlargement (1.25).
    """
    x, y, w, h = (float(v) for v in bbox_xywh[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32)
    if center[0] != -1:
        scale = scale * padding
    return center, scale


def clean_bbox(
    bbox_xywh: Sequence[float], width: int, height: int
) -> tuple[float, float, float, float] | None:
    """HRNet's box clipping: returns the clipped (x, y, w, h) or None when it is empty."""
    x, y, w, h = (float(v) for v in bbox_xywh[:4])
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1))
    if x2 >= x1 and y2 >= y1:
        return (x1, y1, x2 - x1, y2 - y1)
    return None


def instances_from_records(
    records: Sequence[ImageRecord], aspect_ratio: float, padding: float = 1.25
) -> list[PersonInstance]:
    """Ground-truth crops: one per non-empty annotation with at least one labelled joint."""
    instances = []
    for record in records:
        for ann in record.annotations:
            box = clean_bbox(ann.bbox, record.width, record.height)
            if ann.area <= 0 or box is None or float(ann.keypoints.max(initial=0)) == 0:
                continue
            joints = np.zeros_like(ann.keypoints, dtype=np.float32)
            joints[:, :2] = ann.keypoints[:, :2]
            vis = np.minimum(ann.keypoints[:, 2], 1.0).astype(np.float32)
            center, scale = box_to_center_scale(box, aspect_ratio, padding)
            instances.append(
                PersonInstance(record.image_id, record.path, center, scale, joints, vis, 1.0,
                               float(ann.area))
            )
    return instances


def instances_from_detections(
    detections_json: str | pathlib.Path,
    records: Sequence[ImageRecord],
    num_joints: int,
    aspect_ratio: float,
    min_score: float = 0.0,
    padding: float = 1.25,
) -> list[PersonInstance]:
    """Crops from a detection-results JSON (list of {image_id, category_id, bbox, score}).

    Read by `pose_core.data.detections.read_detections` with this function's rule: category 1
    (the field is required), score >= `min_score`, a kept detection of an image absent from
    `records` is an error. Instances come grouped by image (images in order of first appearance
    in the file, file order within an image; the official files are already grouped this way).

    Raises:
        FileNotFoundError: `detections_json` is not a file.
        AnnotationError: a malformed entry or an image id absent from `records` (names the file,
            the entry and the field).
    """
    by_id = {r.image_id: r for r in records}
    detections = read_detections(
        detections_json, image_ids=by_id, min_score=min_score, unknown_images="error"
    )
    instances = []
    for image_id, boxes in detections.items():
        for x, y, w, h, score in boxes.tolist():
            center, scale = box_to_center_scale((x, y, w, h), aspect_ratio, padding)
            instances.append(
                PersonInstance(
                    image_id=image_id,
                    path=by_id[image_id].path,
                    center=center,
                    scale=scale,
                    joints=np.zeros((num_joints, 3), dtype=np.float32),
                    joints_vis=np.ones((num_joints,), dtype=np.float32),
                    score=score,
                    area=w * h,
                )
            )
    return instances


def crop_affine_transform(
    center: Sequence[float],
    scale: Sequence[float],
    rotation: float,
    output_wh: Sequence[int],
    unbiased: bool = False,
    inverse: bool = False,
) -> np.ndarray:
    """The top-down crop affine (HRNet's, or DarkPose's corner-aligned one when `unbiased`).

    Maps the box of size 200·scale around `center`, rotated by `rotation` degrees, onto the
    output: HRNet sends the centre to (W/2, H/2) with scale W/(200·s_x); DarkPose to
    ((W−1)/2, (H−1)/2) with (W−1)/(200·s_x − 1).

    Returns:
        (2, 3) float64 matrix image -> output (output -> image with `inverse`).
        Same as `pose_core.geometry.affine_matrix` with `corner_aligned=unbiased`, which
        builds it.
    """
    return affine_matrix(
        center, scale, output_wh, rotation=rotation, inverse=inverse, corner_aligned=unbiased
    )


def _map_points(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    return np.concatenate([points, np.ones_like(points[:, :1])], axis=1) @ mat.T


class TopDownDataset(Dataset):
    """HRNet / DarkPose training or validation crops.

    Args:
        instances: crops (`instances_from_records` or `instances_from_detections`).
        spec: keypoint layout (flip index).
        image_wh: network input (w, h), e.g. (192, 256).
        heatmap_wh: heatmap (w, h), e.g. (48, 64).
        sigma: target sigma in heatmap pixels (2 at 64×48, 3 at 96×72).
        encoding: "standard" (HRNet) or "dark" (DarkPose affine + unbiased targets).
        augment: half body / scale / rotation / flip when True.
        seed: base seed; sample generator = default_rng((seed, epoch, index)).
        scale_factor: sf (0.35); rotation_factor: rf degrees (45); flip_prob: 0.5.
        half_body_prob: 0 disables (HRNet COCO uses 0.3 with `COCO_UPPER_BODY_IDS`).
        upper_body_ids: joints of the upper body for the half-body crop.
        num_joints_half_body: visible joints needed before a half-body crop is tried (8).
        mean, std: RGB normalisation.
    """

    def __init__(
        self,
        instances: Sequence[PersonInstance],
        spec: KeypointSpec,
        *,
        image_wh: Sequence[int] = (192, 256),
        heatmap_wh: Sequence[int] = (48, 64),
        sigma: float = 2.0,
        encoding: str = "standard",
        augment: bool = True,
        seed: int = 0,
        scale_factor: float = 0.35,
        rotation_factor: float = 45.0,
        flip_prob: float = 0.5,
        half_body_prob: float = 0.0,
        upper_body_ids: Sequence[int] = (),
        num_joints_half_body: int = 8,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        if encoding not in ("standard", "dark"):
            raise ValueError(f"encoding must be 'standard' or 'dark', got {encoding!r}")
        self.instances = list(instances)
        self.spec = spec
        self.image_wh = (int(image_wh[0]), int(image_wh[1]))
        self.heatmap_wh = (int(heatmap_wh[0]), int(heatmap_wh[1]))
        self.sigma = float(sigma)
        self.encoding = encoding
        self.augment = bool(augment)
        self.seed = int(seed)
        self.epoch = 0
        self.scale_factor = float(scale_factor)
        self.rotation_factor = float(rotation_factor)
        self.flip_prob = float(flip_prob)
        self.half_body_prob = float(half_body_prob)
        self.upper_body_ids = frozenset(int(i) for i in upper_body_ids)
        self.num_joints_half_body = int(num_joints_half_body)
        self.mean = tuple(mean)
        self.std = tuple(std)

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of an epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.instances)

    def _half_body(
        self, joints: np.ndarray, vis: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray] | None:
        upper = [joints[j] for j in range(len(joints)) if vis[j] > 0 and j in self.upper_body_ids]
        lower = [
            joints[j] for j in range(len(joints)) if vis[j] > 0 and j not in self.upper_body_ids
        ]
        if rng.standard_normal() < 0.5 and len(upper) > 2:
            selected = upper
        else:
            selected = lower if len(lower) > 2 else upper
        if len(selected) < 2:
            return None
        points = np.asarray(selected, dtype=np.float32)[:, :2]
        center = points.mean(axis=0)
        w, h = points.max(axis=0) - points.min(axis=0)
        aspect = self.image_wh[0] / self.image_wh[1]
        if w > aspect * h:
            h = w / aspect
        elif w < aspect * h:
            w = h * aspect
        return center, np.array([w, h], dtype=np.float32) / PIXEL_STD * 1.5

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.draw(index)

    def draw(self, index: int, stream: int | None = None) -> dict[str, Any]:
        """Item `index`; `stream` selects another, independent augmentation draw of it, so
        that an item resampled several times in one epoch (the labeled half of semi-supervised
        batches) gets a fresh augmentation on every use."""
        inst = self.instances[index]
        image = read_image_rgb(inst.path)
        joints = inst.joints.astype(np.float64).copy()
        vis = inst.joints_vis.astype(np.float64).copy()
        center = inst.center.astype(np.float64).copy()
        scale = inst.scale.astype(np.float64).copy()
        rotation = 0.0
        if self.augment:
            key = (self.seed, self.epoch, int(index))
            rng = np.random.default_rng(key if stream is None else (*key, 1 + int(stream)))
            if (
                self.half_body_prob > 0
                and vis.sum() > self.num_joints_half_body
                and rng.random() < self.half_body_prob
            ):
                half = self._half_body(joints, vis, rng)
                if half is not None:
                    center, scale = half[0].astype(np.float64), half[1].astype(np.float64)
            sf, rf = self.scale_factor, self.rotation_factor
            scale = scale * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
            rotation = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
            if rng.random() > 0.6:
                rotation = 0.0
            if rng.random() < self.flip_prob:
                width = image.shape[1]
                image = np.ascontiguousarray(image[:, ::-1])
                joints[:, 0] = width - joints[:, 0] - 1
                order = np.asarray(self.spec.flip_index)
                joints, vis = joints[order], vis[order]
                joints[:, :2] *= vis[:, None] > 0
                center[0] = width - center[0] - 1
        unbiased = self.encoding == "dark"
        trans = crop_affine_transform(center, scale, rotation, self.image_wh, unbiased)
        crop = cv2.warpAffine(image, trans, self.image_wh, flags=cv2.INTER_LINEAR)
        visible = vis > 0
        crop_joints = joints.copy()
        crop_joints[visible, :2] = _map_points(joints[visible, :2], trans)
        if unbiased:
            trans_hm = crop_affine_transform(center, scale, rotation, self.heatmap_wh, True)
            hm_joints = joints.copy()
            hm_joints[visible, :2] = _map_points(joints[visible, :2], trans_hm)
            target, weight = dark_top_down_targets(hm_joints, vis, self.heatmap_wh, self.sigma)
        else:
            target, weight = hrnet_top_down_targets(
                crop_joints, vis, self.image_wh, self.heatmap_wh, self.sigma
            )
        return {
            "image": normalize_image(crop, self.mean, self.std),
            "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight),
            "joints": torch.from_numpy(crop_joints.astype(np.float32)),
            "joints_vis": torch.from_numpy(vis.astype(np.float32)),
            "center": torch.from_numpy(center.astype(np.float32)),
            "scale": torch.from_numpy(scale.astype(np.float32)),
            "rotation": float(rotation),
            "score": float(inst.score),
            "area": float(inst.area),
            "image_id": int(inst.image_id),
        }
