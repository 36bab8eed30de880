"""Coupled Embedding (CE) codec: training targets and the official test path.

Decoding follows the official CE release (`CR320/CoupledEmbedding` @ cc57620): the test
transforms of `datasets/pipeline/transform.py` (`ResizeAlign`, `NormalizeImage`), the inference
mode of `models/poseDet.py::PoseDet` and `models/evaluate.py::post_processing` (parity README
§4.3):

1. resize/align: s = ceil(input / 64) * 64; the short side goes to s, the long side to
   ceil(s / short * long / 64) * 64 (`base_size` (w', h')); centre = (round(w / 2),
   round(h / 2)) with Python's round (half to even); scale in 200-px units from the short side;
   each scale factor f (1.0 first) warps to (int(w' f), int(h' f)) with HRNet's affine;
2. normalise as mmcv `imnormalize` (float32, BGR -> RGB, subtract (123.675, 116.28, 103.53),
   multiply by 1 / (58.395, 57.12, 57.375), in OpenCV);
3. network on [input, mirrored input]; heatmaps = (bilinear(stride-4 -> stride-2) + stride-2) / 2
   (stride-4 heatmaps alone for `ce_hrnet`); tags (J, D) at stride 4;
4. projection to `base_size`: heatmaps bilinear, tags bilinear per tag dimension (the official
   trilinear resize with D fixed is exactly that), align_corners False;
5. flip: heatmaps (normal + mirrored-back, joints permuted by the flip index) / 2; tags
   concatenated [normal D, mirrored-back D]; several scales: heatmaps averaged, tags of 1.0 only;
6. `pose_core.grouping.coupled_embedding.parse_coupled_embedding` (NMS, top-k, matching, adjust,
   score, refine);
7. back to the image with the inverse HRNet affine of (centre, scale, base_size); joints with a
   value <= 0 (refined on a non-positive heatmap) stay at (0, 0) with their value.

Tags are projected one joint type at a time when the parser asks for them (the full 16-D maps
at input size would be J * 16 * H * W floats).

Encoding (`encode`): heatmaps per resolution, AE joint indices at stride 4 and the instance
scales / scale codes, through `pose_core.codecs.coupled_embedding_targets`.

Frames: `prepare` takes BGR uint8 (H, W, 3); `decode` returns `Poses` in that image's pixels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pose_core.codecs.base import Prepared, TestOptions, check_scales, square_input_side
from pose_core.geometry import affine_matrix, apply_affine
from pose_core.grouping import GroupingParams
from pose_core.grouping.coupled_embedding import (
    CoupledEmbeddingGrouping,
    ce_joint_order,
    parse_coupled_embedding,
)
from pose_core.inference.buffers import BufferPool
from pose_core.keypoint_specs import KeypointSpec
from pose_core.models.heads import HeadLayout
from pose_core.numerics import all_finite
from pose_core.structures import Poses

__all__ = [
    "CE_PIXEL_MEAN",
    "CE_PIXEL_STD",
    "CE_SIZE_DIVISOR",
    "CoupledEmbeddingDecoder",
    "CoupledEmbeddingFrame",
    "PassMaps",
    "ce_resize_align",
    "ce_normalize",
    "ce_inference_maps",
    "ce_aggregate",
    "ce_back_project",
]

# mmcv-style normalisation of the CE configs (0-255 scale, RGB)
CE_PIXEL_MEAN: tuple[float, float, float] = (123.675, 116.28, 103.53)
CE_PIXEL_STD: tuple[float, float, float] = (58.395, 57.12, 57.375)
CE_SIZE_DIVISOR = 64


def _ceil_to(value: float, divisor: int = CE_SIZE_DIVISOR) -> int:
    return int(math.ceil(value / divisor)) * divisor


def ce_resize_align(
    image_hw: Sequence[int], input_size: int
) -> tuple[tuple[int, int], tuple[float, float], tuple[float, float]]:
    """Official `ResizeAlign._get_image_size`: (base_size (w', h'), centre, scale)."""
    height, width = int(image_hw[0]), int(image_hw[1])
    side = _ceil_to(input_size)
    if width < height:
        w_resized, h_resized = side, _ceil_to(side / width * height)
        scale = (width / 200, h_resized / w_resized * width / 200)
    else:
        h_resized, w_resized = side, _ceil_to(side / height * width)
        scale = (w_resized / h_resized * height / 200, height / 200)
    center = (float(round(width / 2.0)), float(round(height / 2.0)))
    return (w_resized, h_resized), center, scale


def ce_normalize(image_bgr: np.ndarray) -> torch.Tensor:
    """mmcv `imnormalize` with the CE mean/std (BGR -> RGB), HWC -> (1, 3, h, w) float32."""
    image = image_bgr.astype(np.float32)
    cv2.cvtColor(image, cv2.COLOR_BGR2RGB, image)
    mean = np.float64(np.asarray(CE_PIXEL_MEAN, np.float32).reshape(1, -1))
    inverse_std = 1 / np.float64(np.asarray(CE_PIXEL_STD, np.float32).reshape(1, -1))
    cv2.subtract(image, mean, image)
    cv2.multiply(image, inverse_std, image)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]


@dataclass(frozen=True)
class CoupledEmbeddingFrame:
    """One image's test geometry: the scale-1.0 input size and the back-projection."""

    base_size_wh: tuple[int, int]
    center: tuple[float, float]
    scale: tuple[float, float]


@dataclass(frozen=True)
class PassMaps:
    """One scale pass over a batch, in the network's inference frame.

    Attributes:
        heatmaps: (N, J, h, w) inference heatmaps (stride 2, or stride 4 for `ce_hrnet`).
        tags: (N, J, D, h4, w4) stride-4 tags.
        flipped_heatmaps / flipped_tags: the same for the mirrored input, still mirrored, or
            None without flip test.
    """

    heatmaps: torch.Tensor
    tags: torch.Tensor
    flipped_heatmaps: torch.Tensor | None = None
    flipped_tags: torch.Tensor | None = None


def ce_inference_maps(
    outputs: Sequence[torch.Tensor], head: HeadLayout
) -> tuple[torch.Tensor, torch.Tensor]:
    """Official `PoseDet.forward(phase='inference')`: heatmaps (N, J, h, w) and tags
    (N, J, D, h4, w4) from raw outputs read through `head`."""
    heatmaps = head.heatmap_maps(outputs, 0).float()
    if len(head.heatmaps) > 1:
        high = head.heatmap_maps(outputs, len(head.heatmaps) - 1).float()
        low = F.interpolate(heatmaps, size=high.shape[-2:], mode="bilinear", align_corners=False)
        heatmaps = (low + high) / 2.0
    return heatmaps, head.tag_maps(outputs).float()


def _project(maps: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    if tuple(maps.shape[-2:]) == size_hw:
        return maps
    return F.interpolate(maps, size=size_hw, mode="bilinear", align_corners=False)


def ce_aggregate(
    passes: Sequence[PassMaps], row: int, base_size_wh: tuple[int, int], flip_index: Sequence[int]
) -> tuple[torch.Tensor, Any]:
    """Heatmaps (J, H, W) at base size and `tags_of_joint(j) -> (H, W, L)` for batch row `row`
    (official `project2image`, `flip_aggregation`, `multi_scale_aggregation`); `passes[0]` is
    the scale-1.0 pass, whose tags are used."""
    size = (int(base_size_wh[1]), int(base_size_wh[0]))
    flip = torch.as_tensor(list(flip_index))
    total: torch.Tensor | None = None
    for maps in passes:
        if maps.flipped_heatmaps is None:
            heat = _project(maps.heatmaps[row : row + 1], size)[0]
        else:
            both = torch.cat((maps.heatmaps[row : row + 1], maps.flipped_heatmaps[row : row + 1]))
            projected = _project(both, size)
            heat = (projected[0] + torch.flip(projected[1], [2])[flip.to(projected.device)]) / 2
        total = heat if total is None else total + heat
    assert total is not None
    heatmaps = total / len(passes) if len(passes) > 1 else total
    first = passes[0]
    normal = first.tags[row]
    mirrored = None if first.flipped_tags is None else first.flipped_tags[row]

    def tags_of_joint(joint: int) -> torch.Tensor:
        parts = [_project(normal[joint][None], size)[0]]
        if mirrored is not None:
            source = mirrored[int(flip_index[joint])][None]
            parts.append(torch.flip(_project(source, size)[0], [2]))
        return torch.cat(parts).permute(1, 2, 0)

    return heatmaps, tags_of_joint


def ce_back_project(
    keypoints: np.ndarray,
    center: Sequence[float],
    scale: Sequence[float],
    base_size_wh: tuple[int, int],
) -> np.ndarray:
    """Official `project2pri`: (P, J, >=3) map x, y, value -> image (P, J, 3) float64; joints
    with value <= 0 stay at (0, 0)."""
    keypoints = np.asarray(keypoints)
    out = np.zeros(keypoints.shape[:2] + (3,), np.float64)
    out[..., 2] = keypoints[..., 2]
    if keypoints.size:
        matrix = affine_matrix(center, scale, base_size_wh, inverse=True)
        found = keypoints[..., 2] > 0
        out[found, :2] = apply_affine(keypoints[found][:, :2].astype(np.float64), matrix)
    return out


class CoupledEmbeddingDecoder:
    """The CE test path and targets for one registered CE model.

    Args:
        head: the outputs' layout (heatmaps per resolution, D-dim tags).
        keypoints: joint layout (flip index).
        input_size: the square network input side (512 or 640).
        flip_test: run the mirrored image too and concatenate its tags.
        scales: test scale factors (1.0 among them when several; its tags are used).
        grouping: parser options (`joint_order` None: the CE order; `use_detection_val` and
            `ignore_too_much` do not exist in the CE parser and are ignored).
        sigma / max_people: target settings for `encode`.
    """

    def __init__(
        self,
        head: HeadLayout,
        keypoints: KeypointSpec,
        input_size: int,
        *,
        flip_test: bool = True,
        scales: Sequence[float] = (1.0,),
        grouping: GroupingParams | None = None,
        sigma: float = 2.0,
        max_people: int = 30,
    ) -> None:
        if head.tags is None:
            raise ValueError("coupled embedding needs a head with tags")
        self.head = head
        self.keypoints = keypoints
        self.input_size = int(input_size)
        self.flip_test = bool(flip_test)
        scales = check_scales(scales)
        # the official list starts with 1.0 (its tags are used); the others keep their order
        self.pass_scales = (1.0, *(s for s in scales if s != 1.0)) if 1.0 in scales else scales
        grouping = grouping or GroupingParams()
        if grouping.joint_order is None:
            grouping = dataclasses.replace(
                grouping, joint_order=ce_joint_order(keypoints.num_keypoints)
            )
        self.grouping = grouping
        self.sigma = float(sigma)
        self.max_people = int(max_people)

    @classmethod
    def for_model(
        cls, info: Any, input_size: int | tuple[int, int] | None, options: TestOptions
    ) -> CoupledEmbeddingDecoder:
        side = square_input_side(info.input_size[0], input_size)
        options.check_method_options((), "coupled embedding")
        return cls(
            info.head_layout, info.keypoints, side, flip_test=options.flip_test,
            scales=options.scales, grouping=options.grouping,
        )

    @property
    def input_wh(self) -> tuple[int, int]:
        return (self.input_size, self.input_size)

    # ------------------------------------------------------------------------------ encode
    def encode(self, keypoints: np.ndarray, **frame: Any) -> dict[str, np.ndarray]:
        """Targets of people (P, J, 3) in network-input pixels; `boxes` (P, 4, 2) warped box
        corners (tl, bl, tr, br) in input pixels give the instance scales and codes."""
        from pose_core.codecs.coupled_embedding_targets import encode_ce_targets

        return encode_ce_targets(
            keypoints, frame.get("boxes"), self.input_size, len(self.head.heatmaps),
            self.head.num_joints, self.head.tag_dim, self.sigma, self.max_people,
        )

    # ------------------------------------------------------------------------------ decode
    def prepare(self, image_bgr: np.ndarray, boxes: np.ndarray | None) -> Prepared:
        if boxes is not None:
            raise ValueError("this model is bottom-up; boxes are for top-down models")
        base_wh, center, scale = ce_resize_align(image_bgr.shape[:2], self.input_size)
        inputs = []
        for factor in self.pass_scales:
            size = (int(base_wh[0] * factor), int(base_wh[1] * factor))
            matrix = affine_matrix(center, scale, size)
            inputs.append(ce_normalize(cv2.warpAffine(image_bgr, matrix, size)))
        return Prepared(tuple(inputs), CoupledEmbeddingFrame(base_wh, center, scale))

    def merge(
        self,
        outputs: Sequence[torch.Tensor],
        flipped: Sequence[torch.Tensor] | None,
        pass_index: int,
        pool: BufferPool | None,
    ) -> PassMaps:
        heatmaps, tags = ce_inference_maps(outputs, self.head)
        if flipped is None:
            return PassMaps(heatmaps, tags)
        flipped_heatmaps, flipped_tags = ce_inference_maps(flipped, self.head)
        return PassMaps(heatmaps, tags, flipped_heatmaps, flipped_tags)

    def decode(
        self, maps: Sequence[Any], prepared: Prepared, rows: slice, pool: BufferPool | None
    ) -> Poses:
        frame = prepared.frame
        result = self.group_passes(maps, rows.start, frame.base_size_wh)
        keypoints = ce_back_project(result.refined, frame.center, frame.scale, frame.base_size_wh)
        return Poses(keypoints.astype(np.float32), result.scores.astype(np.float32))

    def group_passes(
        self, maps: Sequence[PassMaps], row: int, base_size_wh: tuple[int, int]
    ) -> CoupledEmbeddingGrouping:
        """Aggregation and the CE parse of batch row `row` (map pixels, full record)."""
        heatmaps, tags_of_joint = ce_aggregate(maps, row, base_size_wh, self.keypoints.flip_index)
        if not all_finite(heatmaps):
            raise ValueError("the network produced NaN or infinite heatmaps")
        params = self.grouping
        return parse_coupled_embedding(
            heatmaps,
            tags_of_joint,
            detection_threshold=params.detection_threshold,
            tag_threshold=params.tag_threshold,
            max_people=params.max_people,
            nms_kernel=params.nms_kernel,
            adjust=params.adjust,
            refine=params.refine,
            joint_order=params.joint_order,
            refine_min_score=params.refine_min_score,
        )
