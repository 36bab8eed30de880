"""Top-down heatmaps (HRNet, DarkPose): person crops in, one person per box out.

Follows HRNet `tools/test.py` -> `lib/core/function.py::validate`: boxes -> centre/scale at the
input aspect x1.25 (`lib/dataset/coco.py::_box2cs`), crops by the centre-aligned affine (HRNet)
or the corner-aligned one (DarkPose), flip test with the mirrored map shifted right by one pixel
(`SHIFT_HEATMAP`; DarkPose has no shift), quarter-offset (`lib/core/inference.py::
get_final_preds`) or DARK decoding, rescoring by the mean joint maximum above 0.2 times the box
score, then OKS-NMS at 0.9 (`lib/nms/nms.py::oks_nms`).

Frames: boxes (B, 4|5) x, y, w, h[, score] in image pixels; heatmaps (B, J, h/4, w/4);
keypoints out in image pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch

from pose_core.codecs.base import Prepared, TestOptions
from pose_core.codecs.heatmap import TopDownHeatmapEncoder
from pose_core.codecs.refinement import dark_decode, quarter_offset_decode
from pose_core.geometry import back_project_centre_aligned, back_project_corner_aligned
from pose_core.grouping.nms import oks_nms
from pose_core.inference.buffers import BufferPool
from pose_core.inference.preprocess import top_down_inputs
from pose_core.keypoint_specs import KeypointSpec
from pose_core.models.heads import HeadLayout
from pose_core.structures import Poses

__all__ = ["CropFrame", "TopDownHeatmapDecoder"]

# Joints whose maximum is above this count in the person score (HRNet `in_vis_thre`).
VISIBLE_JOINT_SCORE = 0.2


@dataclass(frozen=True)
class CropFrame:
    """The crops of one image: centres / scales (B, 2) and box scores (B,)."""

    centers: np.ndarray
    scales: np.ndarray
    box_scores: np.ndarray


class TopDownHeatmapDecoder:
    """Top-down HRNet / DarkPose decoding.

    Args:
        head: the outputs' layout (one heatmap block).
        keypoints: joint layout (flip index, OKS sigmas).
        input_wh: network input (w, h).
        mean / std: RGB normalisation.
        flip_test: average with the mirrored crop.
        variant: "quarter" (HRNet) or "dark" (DarkPose: corner-aligned crops, no flip shift,
            DARK decoding with `dark_kernel`).
        dark_kernel: DARK blur size.
        oks_threshold: OKS-NMS threshold.
        sigma: target sigma for `encode` (heatmap pixels).
    """

    def __init__(
        self,
        head: HeadLayout,
        keypoints: KeypointSpec,
        input_wh: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        *,
        flip_test: bool = True,
        variant: Literal["quarter", "dark"] = "quarter",
        dark_kernel: int = 11,
        oks_threshold: float = 0.9,
        sigma: float = 2.0,
    ) -> None:
        if variant not in ("quarter", "dark"):
            raise ValueError(f"top_down_decoder must be 'quarter' or 'dark': {variant}")
        self.head = head
        self.keypoints = keypoints
        self.input_wh = (int(input_wh[0]), int(input_wh[1]))
        self.mean, self.std = tuple(mean), tuple(std)
        self.flip_test = bool(flip_test)
        self.variant = variant
        self.dark_kernel = int(dark_kernel)
        self.oks_threshold = float(oks_threshold)
        self.sigma = float(sigma)

    @classmethod
    def for_model(
        cls, info: Any, input_size: int | tuple[int, int] | None, options: TestOptions
    ) -> TopDownHeatmapDecoder:
        """The decoder of a registered top-down model; `input_size`: a width (the height keeps
        the model's aspect, rounded to a multiple of `info.input_multiple`, 32 for HRNet) or
        (w, h), None for the model's."""
        base_w, base_h = info.input_size
        multiple = int(info.input_multiple)
        wh = (base_w, base_h)
        if isinstance(input_size, (int, np.integer)):
            size = int(input_size)
            wh = (size, int(round(size * base_h / base_w / multiple)) * multiple)
        elif input_size is not None:
            wh = (int(input_size[0]), int(input_size[1]))
        if min(wh) < 32 or max(wh) > 4096:
            raise ValueError(f"input_size {wh} out of range [32, 4096]")
        if wh[0] % multiple or wh[1] % multiple:
            raise ValueError(
                f"top-down input_size {wh} must be multiples of {multiple} (w, h)")
        options.check_method_options((), "top-down heatmaps")
        return cls(
            info.head_layout, info.keypoints, wh, info.mean, info.std,
            flip_test=options.flip_test, variant=options.top_down_decoder,  # type: ignore[arg-type]
            dark_kernel=options.dark_kernel, oks_threshold=options.oks_threshold,
        )

    @property
    def dark(self) -> bool:
        return self.variant == "dark"

    # ------------------------------------------------------------------------------ encode
    def encode(self, keypoints: np.ndarray, **frame: Any) -> dict[str, np.ndarray]:
        """Targets of one crop's person: keypoints (1, J, 3) or (J, 3) in crop pixels.

        Returns: "target" (J, h/4, w/4) and "target_weight" (J, 1).
        """
        joints = np.asarray(keypoints, np.float64).reshape(-1, 3)
        heatmap_wh = (self.input_wh[0] // 4, self.input_wh[1] // 4)
        encoder = TopDownHeatmapEncoder(
            self.input_wh, heatmap_wh, self.sigma, "dark" if self.dark else "standard"
        )
        target, weight = encoder.encode(joints[:, :2], (joints[:, 2] > 0).astype(np.float32))
        return {"target": target, "target_weight": weight}

    # ------------------------------------------------------------------------------ decode
    def prepare(self, image_bgr: np.ndarray, boxes: np.ndarray | None) -> Prepared:
        height, width = image_bgr.shape[:2]
        if boxes is None:
            boxes = np.array([[0.0, 0.0, width, height, 1.0]])
        boxes = np.asarray(boxes, np.float64)
        if boxes.ndim != 2 or boxes.shape[1] not in (4, 5) or not np.isfinite(boxes).all():
            raise ValueError(f"boxes must be finite (B, 4) or (B, 5), got {boxes.shape}")
        if len(boxes) == 0:
            return Prepared((), None, Poses.empty(self.head.num_joints))
        box_scores = boxes[:, 4] if boxes.shape[1] == 5 else np.ones(len(boxes))
        image_rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        crops, centers, scales = top_down_inputs(
            image_rgb, boxes[:, :4], self.input_wh, self.mean, self.std, self.dark
        )
        return Prepared((crops,), CropFrame(centers, scales, box_scores))

    def merge(
        self,
        outputs: Sequence[torch.Tensor],
        flipped: Sequence[torch.Tensor] | None,
        pass_index: int,
        pool: BufferPool | None,
    ) -> torch.Tensor:
        """(B, J, h, w) heatmaps, flip-averaged."""
        heatmaps = self.head.heatmap_maps(outputs, 0)
        if flipped is None:
            return heatmaps
        back = torch.flip(self.head.heatmap_maps(flipped, 0), dims=[3])
        back = back[:, list(self.keypoints.flip_index)]
        if not self.dark:  # HRNet SHIFT_HEATMAP: the mirrored map is shifted right by one pixel
            back = torch.cat((back[..., :1], back[..., :-1]), dim=3)
        return (heatmaps + back) * 0.5

    def decode(
        self, maps: Sequence[Any], prepared: Prepared, rows: slice, pool: BufferPool | None
    ) -> Poses:
        frame: CropFrame = prepared.frame
        heatmaps = maps[0][rows].cpu().numpy()
        heatmap_wh = (heatmaps.shape[3], heatmaps.shape[2])
        if self.dark:
            coords, maxvals = dark_decode(heatmaps, self.dark_kernel)
            preds = back_project_corner_aligned(coords, frame.centers, frame.scales, heatmap_wh)
        else:
            coords, maxvals = quarter_offset_decode(heatmaps)
            preds = back_project_centre_aligned(coords, frame.centers, frame.scales, heatmap_wh)
        keypoints = np.concatenate((preds, np.asarray(maxvals)[..., None]), axis=2)
        return self._rescore(keypoints, frame)

    def _rescore(self, keypoints: np.ndarray, frame: CropFrame) -> Poses:
        """Person score = mean visible joint maximum x box score; OKS-NMS."""
        visible = keypoints[:, :, 2] > VISIBLE_JOINT_SCORE
        kpt_score = np.where(
            visible.any(axis=1),
            (keypoints[:, :, 2] * visible).sum(axis=1) / np.maximum(visible.sum(axis=1), 1),
            0.0,
        )
        scores = kpt_score * frame.box_scores
        areas = np.prod(frame.scales.astype(np.float64) * 200.0, axis=1)
        keep = oks_nms(
            keypoints, scores, areas, np.asarray(self.keypoints.sigmas), self.oks_threshold
        )
        return Poses(keypoints[keep].astype(np.float32), scores[keep])
