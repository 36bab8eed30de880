"""`PoseEstimator`: BGR image -> `Poses` in image pixels (bottom-up HigherHRNet or top-down HRNet).

Bottom-up follows the official HigherHRNet `tools/valid.py` path (spec d): official resize/pad,
flip test, multi-scale aggregation projected to the scale-1.0 input size, the exact parser
(`pose_core.grouping`), back-projection with the centre/scale of the smallest scale.
Top-down follows HRNet `tools/test.py` (spec d.6): boxes -> crops, flip with the 1-px shift
(none with DARK, as DarkPose), quarter-offset or DARK decoding, rescoring by the mean joint
maximum above 0.2 times the box score, then OKS-NMS at 0.9.

Frames: input BGR uint8 (H, W, 3); the network sees RGB normalised with `ModelInfo.mean/std`;
output keypoints (P, J, 3) = x, y in original image pixels and the joint value.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch

from pose_core.codecs.refinement import dark_decode, dark_offsets_at, quarter_offset_decode
from pose_core.geometry import (
    back_project_centre_aligned,
    back_project_corner_aligned,
    multi_scale_size,
)
from pose_core.grouping.nms import oks_nms
from pose_core.grouping.tag_grouping import GroupingParams, TagSampler, parse_bottom_up
from pose_core.inference.backends import InferenceBackend, TorchBackend
from pose_core.inference.buffers import BufferPool
from pose_core.inference.preprocess import bottom_up_input, check_image, top_down_inputs
from pose_core.inference.test_time_aug import ScaleMaps, aggregate_scales, merge_stage_outputs
from pose_core.keypoint_specs import KeypointSpec
from pose_core.structures import Poses

__all__ = ["PoseEstimator"]

_GROUPING_NAMES = frozenset(f.name for f in fields(GroupingParams))


class PoseEstimator:
    """Multi-person pose estimation on images.

    Args:
        name: registered model name (`pose_core.models.MODEL_NAMES`).
        checkpoint: weights file; None loads the shipped weights for `DEFAULT_MODEL` and keeps
            random weights (with a warning) for any other name.
        device: torch device string.
        flip_test: average with the mirrored image (official default on).
        scales: bottom-up test scales (must contain 1.0 when more than one).
        input_size: overrides the model's input size: an int (bottom-up short side, or a
            top-down width with the model's aspect) or (w, h).
        fp16: half precision (CUDA only).
        top_down_decoder: "quarter" (HRNet) or "dark" (DarkPose: corner-aligned crops, no flip
            shift, DARK decoding with `dark_kernel`).
        dark_kernel: DARK blur size.
        dark_refine: bottom-up only, our own addition (the official path has none): replace
            the quarter offset of every found joint by the DARK Taylor offset on the
            aggregated heatmap (x = pixel + DARK offset + 0.5, same frame as the official one);
            steps longer than one pixel (no concave peak) keep the quarter offset.
        oks_threshold: top-down OKS-NMS threshold.
        backend: a ready backend instead of building the torch model (advanced).
        **grouping_options: `GroupingParams` fields (detection_threshold, tag_threshold,
            max_people, use_detection_val, ignore_too_much, adjust, refine, nms_kernel,
            joint_order).
    """

    def __init__(
        self,
        name: str,
        checkpoint: str | Path | None = None,
        device: str = "cpu",
        flip_test: bool = True,
        scales: Sequence[float] = (1.0,),
        input_size: int | tuple[int, int] | None = None,
        fp16: bool = False,
        *,
        top_down_decoder: Literal["quarter", "dark"] = "quarter",
        dark_kernel: int = 11,
        dark_refine: bool = False,
        oks_threshold: float = 0.9,
        backend: InferenceBackend | None = None,
        **grouping_options: Any,
    ) -> None:
        from pose_core.models import build_model, model_info

        unknown = set(grouping_options) - _GROUPING_NAMES
        if unknown:
            raise TypeError(f"unknown PoseEstimator options: {sorted(unknown)}")
        if "joint_order" in grouping_options and grouping_options["joint_order"] is not None:
            grouping_options["joint_order"] = tuple(grouping_options["joint_order"])
        self.info = model_info(name)
        self.keypoint_spec: KeypointSpec = self.info.keypoints
        self.grouping = GroupingParams(**grouping_options)
        if self.info.family == "higherhrnet" and self.grouping.joint_order is None:
            self.grouping = GroupingParams(
                **{**grouping_options, "joint_order": self.keypoint_spec.joint_order}
            )
        self.flip_test = bool(flip_test)
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or any(s <= 0 for s in self.scales):
            raise ValueError(f"scales must be positive, got {self.scales}")
        if len(self.scales) > 1 and 1.0 not in self.scales:
            raise ValueError("multi-scale test needs 1.0 among the scales (tags come from it)")
        if top_down_decoder not in ("quarter", "dark"):
            raise ValueError(f"top_down_decoder must be 'quarter' or 'dark': {top_down_decoder}")
        self.top_down_decoder = top_down_decoder
        self.dark_kernel = int(dark_kernel)
        self.dark_refine = bool(dark_refine)
        self.oks_threshold = float(oks_threshold)
        self.input_wh = self._resolve_input_size(input_size)
        self.last_timings: dict[str, float] = {"preprocess": 0.0, "network": 0.0, "grouping": 0.0}
        if backend is None:
            model = build_model(name)
            self._load_weights(model, name, checkpoint)
            backend = TorchBackend(model, device, fp16)
        self.backend = backend
        self.device = backend.device
        # The bottom-up path's large maps are reused from image to image (no page faults for
        # them; see BufferPool); one pool per calling thread, so threads never share buffers.
        self._pools = threading.local()

    # ----------------------------------------------------------------------------------------
    def _resolve_input_size(self, input_size: int | tuple[int, int] | None) -> tuple[int, int]:
        base_w, base_h = self.info.input_size
        if input_size is None:
            return (base_w, base_h)
        if isinstance(input_size, (int, np.integer)):
            size = int(input_size)
            wh = (size, size) if self.info.family == "higherhrnet" else (
                size, int(round(size * base_h / base_w / 32)) * 32
            )
        else:
            wh = (int(input_size[0]), int(input_size[1]))
        if min(wh) < 32 or max(wh) > 4096:
            raise ValueError(f"input_size {wh} out of range [32, 4096]")
        if self.info.family == "higherhrnet" and wh[0] != wh[1]:
            raise ValueError("bottom-up input_size is the square training size (one number)")
        if self.info.family == "hrnet" and (wh[0] % 32 or wh[1] % 32):
            raise ValueError(f"top-down input_size {wh} must be multiples of 32 (w, h)")
        return wh

    @staticmethod
    def _load_weights(model: torch.nn.Module, name: str, checkpoint: str | Path | None) -> None:
        from pose_core.models.checkpoint import load_checkpoint

        if checkpoint is None:
            from pose_core.default_model import DEFAULT_MODEL, default_checkpoint_path

            if name != DEFAULT_MODEL:
                warnings.warn(
                    f"PoseEstimator({name!r}) without a checkpoint keeps RANDOM weights",
                    stacklevel=3,
                )
                return
            checkpoint = default_checkpoint_path()  # raises FileNotFoundError with a message
        load_checkpoint(model, checkpoint)

    # ----------------------------------------------------------------------------------------
    def __call__(self, image_bgr: np.ndarray, boxes: np.ndarray | None = None) -> Poses:
        """Poses of one BGR uint8 image (keypoints in image pixels).

        Args:
            image_bgr: (H, W, 3) uint8, BGR.
            boxes: top-down models only: (B, 4) x, y, w, h (optionally a 5th column, the box
                score); None uses the whole image as one box.
        """
        check_image(image_bgr)
        if self.info.family == "higherhrnet":
            if boxes is not None:
                raise ValueError(f"{self.info.name} is bottom-up; boxes are for top-down models")
            return self._bottom_up(image_bgr)
        return self._top_down(image_bgr, boxes)

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        boxes: Sequence[np.ndarray | None] | None = None,
        batch_size: int = 8,
    ) -> list[Poses]:
        """Poses for several images, in order; `last_timings` holds the sums over the batch.

        Bottom-up models run the network once per group of up to `batch_size` images whose
        network inputs have the same size at every scale (e.g. frames of one camera), flip
        test included (2 x the group in one forward); grouping runs per image. Top-down models
        run image by image (each with its own boxes).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if boxes is not None and len(boxes) != len(images):
            raise ValueError(f"{len(images)} images but {len(boxes)} box arrays")
        for image in images:
            check_image(image)
        if self.info.family != "higherhrnet":
            totals = {"preprocess": 0.0, "network": 0.0, "grouping": 0.0}
            results = []
            for i, image in enumerate(images):
                results.append(self(image, None if boxes is None else boxes[i]))
                for key in totals:
                    totals[key] += self.last_timings[key]
            self.last_timings = totals
            return results
        if boxes is not None and any(b is not None for b in boxes):
            raise ValueError(f"{self.info.name} is bottom-up; boxes are for top-down models")
        return self._bottom_up_batch(list(images), batch_size)

    # ----------------------------------------------------------------------------------------
    def _run(self, batch: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        if self.flip_test:
            outputs = self.backend(torch.cat((batch, torch.flip(batch, dims=[3]))))
            n = batch.shape[0]
            return [o[:n] for o in outputs], [o[n:] for o in outputs]
        return list(self.backend(batch)), None

    def _pool(self) -> BufferPool:
        pool = getattr(self._pools, "pool", None)
        if pool is None:
            pool = self._pools.pool = BufferPool()
        return pool

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _bottom_up_passes(self, image_bgr: np.ndarray) -> tuple[list[Any], tuple[int, int]]:
        """The network inputs of every scale (largest first) and the scale-1.0 input size (the
        projection target; computed, not warped: it is only a size)."""
        image_rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        min_scale = min(self.scales)
        size = self.input_wh[0]
        passes = [
            bottom_up_input(image_rgb, size, s, min_scale, self.info.mean, self.info.std)
            for s in sorted(self.scales, reverse=True)
        ]
        return passes, multi_scale_size(image_rgb.shape[1::-1], size, 1.0, min_scale)[0]

    def _scale_maps(
        self,
        inputs: Sequence[torch.Tensor],
        scale_factors: Sequence[float],
        pool: BufferPool | None = None,
    ) -> tuple[list[ScaleMaps], float]:
        """Network (flip test as configured) and flip/stage merge of each scale pass's input
        batch; returns the maps (from `pool` when given: valid in its open frame) and the
        network's own time (the merge counts as grouping)."""
        maps, network = [], 0.0
        for batch, scale_factor in zip(inputs, scale_factors):
            start = time.perf_counter()
            outputs, flipped = self._run(batch)
            self._sync()
            network += time.perf_counter() - start
            maps.append(merge_stage_outputs(
                outputs, flipped, self.info.num_joints, self.keypoint_spec.flip_index,
                scale_factor, pool,
            ))
        return maps, network

    def _bottom_up_batch(self, images: list[np.ndarray], batch_size: int) -> list[Poses]:
        t0 = time.perf_counter()
        prepared = [self._bottom_up_passes(image_bgr) for image_bgr in images]
        preprocess = time.perf_counter() - t0
        groups: dict[tuple, list[int]] = {}
        for i, (passes, _) in enumerate(prepared):
            groups.setdefault(tuple(tuple(p.tensor.shape) for p in passes), []).append(i)
        results: list[Poses | None] = [None] * len(images)
        network = grouping = 0.0
        for members in groups.values():
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                started = time.perf_counter()
                first_passes = prepared[chunk[0]][0]
                pool = self._pool()
                with pool.frame():
                    maps, chunk_network = self._scale_maps(
                        [torch.cat([prepared[i][0][s].tensor for i in chunk])
                         for s in range(len(first_passes))],
                        [p.scale_factor for p in first_passes],
                        pool,
                    )
                    for index, i in enumerate(chunk):
                        passes, base = prepared[i]
                        results[i] = self.decode_bottom_up(
                            maps, base, passes[-1].center, passes[-1].scale, index=index
                        )
                network += chunk_network
                grouping += time.perf_counter() - started - chunk_network
        self.last_timings = {"preprocess": preprocess, "network": network, "grouping": grouping}
        return [poses for poses in results if poses is not None]

    def _bottom_up(self, image_bgr: np.ndarray) -> Poses:
        t0 = time.perf_counter()
        passes, base_size_wh = self._bottom_up_passes(image_bgr)
        t1 = time.perf_counter()
        pool = self._pool()
        with pool.frame():
            maps, network = self._scale_maps(
                [p.tensor for p in passes], [p.scale_factor for p in passes], pool
            )
            poses = self.decode_bottom_up(
                maps, base_size_wh, passes[-1].center, passes[-1].scale
            )
        t2 = time.perf_counter()
        self.last_timings = {
            "preprocess": t1 - t0,
            "network": network,
            "grouping": t2 - t1 - network,
        }
        return poses

    def bottom_up_maps(self, image_bgr: np.ndarray) -> tuple[torch.Tensor, TagSampler]:
        """What the grouping of one image sees: the aggregated heatmaps (J, H, W) at the network
        input size and the tag sampler on the same grid (flip test and scales as configured).

        For diagnostics and training reports; `__call__` is the estimator.
        """
        check_image(image_bgr)
        if self.info.family != "higherhrnet":
            raise ValueError(f"{self.info.name} is top-down: it has no bottom-up maps")
        passes, base_size_wh = self._bottom_up_passes(image_bgr)
        maps, _ = self._scale_maps([p.tensor for p in passes], [p.scale_factor for p in passes])
        return aggregate_scales(maps, base_size_wh)

    def decode_bottom_up(
        self,
        maps: Sequence[Any],
        base_size_wh: tuple[int, int],
        center: Sequence[float],
        scale: Sequence[float],
        index: int = 0,
    ) -> Poses:
        """Aggregated maps -> grouping -> image pixels (used by the tests and the benchmark);
        `index` picks the image within batched maps."""
        pool = self._pool()
        with pool.frame():  # nothing from the pool leaves this call: Poses are numpy copies
            heatmaps, tags = aggregate_scales(maps, base_size_wh, index, pool)
            return self._grouped_poses(heatmaps, tags, base_size_wh, center, scale)

    def _grouped_poses(
        self,
        heatmaps: torch.Tensor,
        tags: TagSampler,
        base_size_wh: tuple[int, int],
        center: Sequence[float],
        scale: Sequence[float],
    ) -> Poses:
        if not bool(torch.isfinite(heatmaps).all()):
            raise ValueError("the network produced NaN or infinite heatmaps")
        result = parse_bottom_up(heatmaps, tags, self.grouping)
        keypoints = result.grouped[:, :, :3].astype(np.float64)
        if self.dark_refine and len(keypoints):
            people, joints = np.nonzero(keypoints[:, :, 2] > 0)
            pixels = np.round(keypoints[people, joints, :2] - 0.5).astype(np.int64)
            offsets = dark_offsets_at(
                heatmaps,
                torch.as_tensor(joints, device=heatmaps.device),
                torch.as_tensor(pixels, device=heatmaps.device),
                self.dark_kernel,
            )
            offsets_np = offsets.cpu().numpy()
            # A Newton step longer than a pixel means the log-map is not locally concave (no
            # peak): keep the official quarter offset there.
            usable = (np.abs(offsets_np) <= 1.0).all(axis=1) & (offsets_np != 0).any(axis=1)
            keypoints[people[usable], joints[usable], :2] = (
                pixels[usable] + offsets_np[usable] + 0.5
            )
        if len(keypoints):
            keypoints[:, :, :2] = back_project_centre_aligned(
                keypoints[:, :, :2], np.asarray(center), np.asarray(scale), base_size_wh
            )
        return Poses(keypoints.astype(np.float32), result.scores)

    # ----------------------------------------------------------------------------------------
    def _top_down(self, image_bgr: np.ndarray, boxes: np.ndarray | None) -> Poses:
        t0 = time.perf_counter()
        height, width = image_bgr.shape[:2]
        num_joints = self.info.num_joints
        if boxes is None:
            boxes = np.array([[0.0, 0.0, width, height, 1.0]])
        boxes = np.asarray(boxes, np.float64)
        if boxes.ndim != 2 or boxes.shape[1] not in (4, 5) or not np.isfinite(boxes).all():
            raise ValueError(f"boxes must be finite (B, 4) or (B, 5), got {boxes.shape}")
        if len(boxes) == 0:
            self.last_timings = {"preprocess": 0.0, "network": 0.0, "grouping": 0.0}
            return Poses.empty(num_joints)
        box_scores = boxes[:, 4] if boxes.shape[1] == 5 else np.ones(len(boxes))
        dark = self.top_down_decoder == "dark"
        image_rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        crops, centers, scales = top_down_inputs(
            image_rgb, boxes[:, :4], self.input_wh, self.info.mean, self.info.std, dark
        )
        t1 = time.perf_counter()
        outputs, flipped = self._run(crops)
        self._sync()
        t2 = time.perf_counter()
        heatmaps = outputs[0]
        if flipped is not None:
            back = torch.flip(flipped[0], dims=[3])[:, list(self.keypoint_spec.flip_index)]
            if not dark:  # HRNet SHIFT_HEATMAP: the mirrored map is shifted right by one pixel
                back = torch.cat((back[..., :1], back[..., :-1]), dim=3)
            heatmaps = (heatmaps + back) * 0.5
        heatmap_wh = (heatmaps.shape[3], heatmaps.shape[2])
        if dark:
            coords, maxvals = dark_decode(heatmaps.cpu().numpy(), self.dark_kernel)
            preds = back_project_corner_aligned(coords, centers, scales, heatmap_wh)
        else:
            coords, maxvals = quarter_offset_decode(heatmaps.cpu().numpy())
            preds = back_project_centre_aligned(coords, centers, scales, heatmap_wh)
        keypoints = np.concatenate((preds, np.asarray(maxvals)[..., None]), axis=2)
        visible = keypoints[:, :, 2] > 0.2
        kpt_score = np.where(
            visible.any(axis=1),
            (keypoints[:, :, 2] * visible).sum(axis=1) / np.maximum(visible.sum(axis=1), 1),
            0.0,
        )
        scores = kpt_score * box_scores
        areas = np.prod(scales.astype(np.float64) * 200.0, axis=1)
        keep = oks_nms(
            keypoints, scores, areas, np.asarray(self.keypoint_spec.sigmas), self.oks_threshold
        )
        t3 = time.perf_counter()
        self.last_timings = {"preprocess": t1 - t0, "network": t2 - t1, "grouping": t3 - t2}
        return Poses(keypoints[keep].astype(np.float32), scores[keep])
