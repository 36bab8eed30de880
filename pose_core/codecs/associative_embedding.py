"""Associative embedding (bottom-up HigherHRNet): training targets and the decoder.

Encoding: per-person joint indices into the tag maps, with the heatmaps of `codecs.heatmap`.

Mirrors the official HigherHRNet `JointsGenerator`
(`lib/dataset/target_generators/target_generators.py`; Newell et al., "Associative Embedding",
NeurIPS 2017): for each person slot p, the visible in-bounds joints are packed densely in joint
order as (flat index, 1), with flat index `j·r² + y·r + x` (tag per joint) or `y·r + x`, where
x = int(x), y = int(y) are truncated output-resolution coordinates and r is that output's side.
Unused entries are (0, 0). The AE loss reads the tag map flattened over (J, H, W) at these
indices (only the first, 1/4-resolution output carries tags).

Frames: joints (P, J, >=3) x, y, visibility in output pixels of the resolution r.
Output: (max_people, J, 2) int64.

Decoding (`AssociativeEmbeddingDecoder`) follows HigherHRNet `tools/valid.py`:
`resize_align_multi_scale` inputs (`inference.preprocess.bottom_up_input`), flip test and
multi-scale aggregation (`get_multi_stage_outputs` / `aggregate_results` of
`lib/core/inference.py`, here `inference.test_time_aug`), `HeatmapParser.parse` with adjust and
refine (`lib/core/group.py`, here `pose_core.grouping`), optional DARK re-offsetting (our
addition), and `get_final_preds` back-projection with the centre/scale of the smallest scale.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from pose_core.codecs.base import Prepared, TestOptions, check_scales, square_input_side
from pose_core.codecs.heatmap import HeatmapGenerator
from pose_core.codecs.refinement import dark_offsets_at
from pose_core.geometry import back_project_centre_aligned, multi_scale_size
from pose_core.grouping import GroupingParams, TagSampler, parse_bottom_up
from pose_core.inference.buffers import BufferPool
from pose_core.inference.preprocess import bottom_up_input
from pose_core.inference.test_time_aug import ScaleMaps, aggregate_scales, merge_stage_outputs
from pose_core.keypoint_specs import KeypointSpec
from pose_core.models.heads import HeadLayout
from pose_core.numerics import all_finite
from pose_core.structures import Poses

__all__ = [
    "AssociativeEmbeddingDecoder",
    "BottomUpFrame",
    "JointsIndexEncoder",
    "encode_joint_indices",
]


def encode_joint_indices(
    joints: np.ndarray,
    output_size: int,
    max_people: int = 30,
    tag_per_joint: bool = True,
) -> np.ndarray:
    """Pack AE joint indices for one image.

    Args:
        joints: (P, J, >=3) x, y, visibility in output pixels.
        output_size: side r of the square output map the indices point into.
        max_people: number of person slots. People beyond it are dropped (the official code
            would fail with an index error instead).
        tag_per_joint: flat index over (J, r, r) when True, over (r, r) when False.

    Returns:
        (max_people, J, 2) int64: (flat index, 1) packed densely per person, then (0, 0).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[2] < 3:
        raise ValueError(f"joints must be (P, J, >=3), got {joints.shape}")
    num_joints = joints.shape[1]
    r = int(output_size)
    out = np.zeros((max_people, num_joints, 2), dtype=np.int64)
    for p, person in enumerate(joints[:max_people]):
        slot = 0
        for j, (x_f, y_f, vis) in enumerate(person[:, :3]):
            x, y = int(x_f), int(y_f)
            if vis > 0 and 0 <= x < r and 0 <= y < r:
                flat = y * r + x
                if tag_per_joint:
                    flat += j * r * r
                out[p, slot] = (flat, 1)
                slot += 1
    return out


class JointsIndexEncoder:
    """`encode_joint_indices` bound to one output size (official `JointsGenerator`).

    Args:
        output_size: side r of the output map.
        max_people: person slots (30 in the official yamls).
        tag_per_joint: flat index over (J, r, r) when True.
    """

    def __init__(self, output_size: int, max_people: int = 30, tag_per_joint: bool = True) -> None:
        self.output_size = int(output_size)
        self.max_people = int(max_people)
        self.tag_per_joint = bool(tag_per_joint)

    def __call__(self, joints: np.ndarray) -> np.ndarray:
        """(P, J, >=3) joints in output pixels -> (max_people, J, 2) int64 indices."""
        return encode_joint_indices(joints, self.output_size, self.max_people, self.tag_per_joint)


@dataclass(frozen=True)
class BottomUpFrame:
    """Where one image's maps live: the scale-1.0 input size (the projection target) and the
    centre / scale of the smallest scale pass (the back-projection, as the official test)."""

    base_size_wh: tuple[int, int]
    center: tuple[float, float]
    scale: tuple[float, float]


class AssociativeEmbeddingDecoder:
    """Bottom-up HigherHRNet: inputs, flip/scale aggregation, AE grouping, image pixels.

    Args:
        head: the outputs' layout (heatmaps per resolution, tags).
        keypoints: joint layout (flip index, joint order).
        input_size: the square network input side at scale 1.0.
        mean / std: RGB normalisation.
        flip_test: average with the mirrored image.
        scales: test scales (1.0 among them when several).
        grouping: the parser's options (`joint_order` None: the keypoints' official order).
        dark_refine: replace the quarter offset by the DARK Taylor offset (our addition).
        dark_kernel: DARK blur size.
        sigma: heatmap target sigma for `encode`.
        max_people: AE person slots for `encode`.
    """

    def __init__(
        self,
        head: HeadLayout,
        keypoints: KeypointSpec,
        input_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        flip_test: bool = True,
        scales: Sequence[float] = (1.0,),
        grouping: GroupingParams | None = None,
        dark_refine: bool = False,
        dark_kernel: int = 11,
        sigma: float = 2.0,
        max_people: int = 30,
    ) -> None:
        if head.tags is None:
            raise ValueError("associative embedding needs a head with tags")
        self.head = head
        self.keypoints = keypoints
        self.input_size = int(input_size)
        self.mean, self.std = tuple(mean), tuple(std)
        self.flip_test = bool(flip_test)
        self.scales = check_scales(scales)
        grouping = grouping or GroupingParams()
        if grouping.joint_order is None:
            grouping = dataclasses.replace(grouping, joint_order=keypoints.joint_order)
        self.grouping = grouping
        self.dark_refine = bool(dark_refine)
        self.dark_kernel = int(dark_kernel)
        self.sigma = float(sigma)
        self.max_people = int(max_people)
        # passes run largest scale first, as the official test
        self.pass_scales = tuple(sorted(self.scales, reverse=True))

    @classmethod
    def for_model(
        cls, info: Any, input_size: int | tuple[int, int] | None, options: TestOptions
    ) -> AssociativeEmbeddingDecoder:
        """The decoder of a registered bottom-up model; `input_size`: the square side (an int
        or (s, s)), None for the model's."""
        side = square_input_side(info.input_size[0], input_size)
        options.check_method_options((), "associative embedding")
        return cls(
            info.head_layout, info.keypoints, side, info.mean, info.std,
            flip_test=options.flip_test, scales=options.scales, grouping=options.grouping,
            dark_refine=options.dark_refine, dark_kernel=options.dark_kernel,
        )

    @property
    def input_wh(self) -> tuple[int, int]:
        return (self.input_size, self.input_size)

    # ------------------------------------------------------------------------------ encode
    def encode(self, keypoints: np.ndarray, **frame: Any) -> dict[str, np.ndarray]:
        """Targets of people (P, J, 3) given in network-input pixels (square input).

        Returns: "heatmaps_<i>" (J, r_i, r_i) per resolution (r_i: input / 4, / 2, ...) and
        "joints" (max_people, J, 2) AE indices at the tags' resolution.
        """
        joints = np.asarray(keypoints, np.float64)
        targets: dict[str, np.ndarray] = {}
        tag_resolution = self.head.tag_resolution()
        for i in range(len(self.head.heatmaps)):
            side = self.input_size // 4 * 2**i
            stride = self.input_size / side
            scaled = joints.copy()
            scaled[..., :2] /= stride
            num = self.head.num_joints
            targets[f"heatmaps_{i}"] = HeatmapGenerator(side, num, self.sigma)(scaled)
            if i == tag_resolution:
                targets["joints"] = encode_joint_indices(scaled, side, self.max_people)
        return targets

    # ------------------------------------------------------------------------------ decode
    def prepare(self, image_bgr: np.ndarray, boxes: np.ndarray | None) -> Prepared:
        if boxes is not None:
            raise ValueError("this model is bottom-up; boxes are for top-down models")
        image_rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        min_scale = min(self.scales)
        passes = [
            bottom_up_input(image_rgb, self.input_size, s, min_scale, self.mean, self.std)
            for s in self.pass_scales
        ]
        # the scale-1.0 input size is only a size: computed, not warped
        base_wh = multi_scale_size(image_rgb.shape[1::-1], self.input_size, 1.0, min_scale)[0]
        frame = BottomUpFrame(tuple(base_wh), tuple(passes[-1].center), tuple(passes[-1].scale))
        return Prepared(tuple(p.tensor for p in passes), frame)

    def merge(
        self,
        outputs: Sequence[torch.Tensor],
        flipped: Sequence[torch.Tensor] | None,
        pass_index: int,
        pool: BufferPool | None,
    ) -> ScaleMaps:
        return merge_stage_outputs(
            outputs, flipped, self.head, self.keypoints.flip_index,
            self.pass_scales[pass_index], pool,
        )

    def decode(
        self, maps: Sequence[Any], prepared: Prepared, rows: slice, pool: BufferPool | None
    ) -> Poses:
        frame = prepared.frame
        return self.decode_maps(maps, frame.base_size_wh, frame.center, frame.scale,
                                rows.start, pool)

    def decode_maps(
        self,
        maps: Sequence[ScaleMaps],
        base_size_wh: tuple[int, int],
        center: Sequence[float],
        scale: Sequence[float],
        index: int = 0,
        pool: BufferPool | None = None,
    ) -> Poses:
        """Aggregated maps of image `index` -> grouping -> image pixels."""
        if pool is None:
            heatmaps, tags = aggregate_scales(maps, base_size_wh, index)
            return self.group(heatmaps, tags, base_size_wh, center, scale)
        with pool.frame():  # nothing from the pool leaves this call: Poses are numpy copies
            heatmaps, tags = aggregate_scales(maps, base_size_wh, index, pool)
            return self.group(heatmaps, tags, base_size_wh, center, scale)

    def group(
        self,
        heatmaps: torch.Tensor,
        tags: TagSampler,
        base_size_wh: tuple[int, int],
        center: Sequence[float],
        scale: Sequence[float],
    ) -> Poses:
        """Grouping of aggregated maps (J, H, W) and back-projection to image pixels."""
        if not all_finite(heatmaps):
            raise ValueError("the network produced NaN or infinite heatmaps")
        result = parse_bottom_up(heatmaps, tags, self.grouping)
        keypoints = result.grouped[:, :, :3].astype(np.float64)
        if self.dark_refine and len(keypoints):
            self._dark_reoffset(keypoints, heatmaps)
        if len(keypoints):
            keypoints[:, :, :2] = back_project_centre_aligned(
                keypoints[:, :, :2], np.asarray(center), np.asarray(scale), base_size_wh
            )
        return Poses(keypoints.astype(np.float32), result.scores)

    def _dark_reoffset(self, keypoints: np.ndarray, heatmaps: torch.Tensor) -> None:
        """In place: found joints at pixel + DARK offset + 0.5 (the official frame)."""
        people, joints = np.nonzero(keypoints[:, :, 2] > 0)
        pixels = np.round(keypoints[people, joints, :2] - 0.5).astype(np.int64)
        offsets = dark_offsets_at(
            heatmaps,
            torch.as_tensor(joints, device=heatmaps.device),
            torch.as_tensor(pixels, device=heatmaps.device),
            self.dark_kernel,
        ).cpu().numpy()
        # A Newton step longer than a pixel means the log-map is not locally concave (no
        # peak): keep the official quarter offset there.
        usable = (np.abs(offsets) <= 1.0).all(axis=1) & (offsets != 0).any(axis=1)
        keypoints[people[usable], joints[usable], :2] = pixels[usable] + offsets[usable] + 0.5

    def maps(self, image_bgr: np.ndarray, run: Any) -> tuple[torch.Tensor, TagSampler]:
        """What the grouping of one image sees (diagnostics): `run(batch)` gives the network
        outputs and the mirrored pass's (or None)."""
        prepared = self.prepare(image_bgr, None)
        merged = []
        for k, batch in enumerate(prepared.inputs):
            outputs, flipped = run(batch)
            merged.append(self.merge(outputs, flipped, k, None))
        return aggregate_scales(merged, prepared.frame.base_size_wh)
