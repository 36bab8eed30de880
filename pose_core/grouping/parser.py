"""The whole associative-embedding parser (HigherHRNet `HeatmapParser`), exact and batched.

Follows the official HigherHRNet (Cheng et al., CVPR 2020; Newell et al., "Associative
Embedding", NeurIPS 2017) `lib/core/group.py::HeatmapParser.parse` with the settings of
`lib/core/group.py::Params`, step by step, written anew:

1. NMS: k x k max-pool, keep exact maxima (`HeatmapParser.nms`; `candidates`).
2. Top-k per joint (k = `max_people`), with the L-vector tag at each location
   (`HeatmapParser.top_k`; `candidates`).
3. Tag matching in the official joint order (`match_by_tag`; `matching`, on the host).
4. Adjust: quarter offset towards the larger neighbour (ties go -), then +0.5
   (`HeatmapParser.adjust`; `adjust`).
5. Person score = mean value over all J joints (missing = 0), taken **before** refine.
6. Refine: for every person, every joint whose value is 0 is searched on the full map with
   score = det_j - round(||tag_j - mean tag||) (first row-major argmax), value and quarter
   offset as in 4; it is filled when the value found is > 0 (`HeatmapParser.refine`;
   `refine`, all people at once). `refine_min_score` > 0 (not official) refines only the
   people scoring at least that much: a caller that drops the others anyway (the node) gets
   the same people for less work, since refine never changes a score.

Shapes and frames: heatmaps (J, H, W), tags (J, H, W, L) (L = 2 with flip test) or a
`TagSampler` on the same grid; all positions in heatmap pixels of those maps, x (column)
first. Outputs keep the official convention: the stored coordinate is pixel index
+ 0.5 +- 0.25. `GroupingResult.grouped` is (P, J, 3 + L), scores (P,).

Where things run: NMS, top-k, tag gathering, adjust and refine are torch ops on the maps'
device; tag matching runs on the host after a single device-to-host copy of the candidates.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pose_core.grouping.adjust import adjust_positions
from pose_core.grouping.candidates import _TILE, _tile_max, top_k_candidates
from pose_core.grouping.matching import default_joint_order, match_by_tag
from pose_core.grouping.refine import refine_people
from pose_core.grouping.tag_sampling import DenseTags, TagSampler
from pose_core.numerics import all_finite
from pose_core.structures import Poses

__all__ = [
    "GroupingParams",
    "GroupingResult",
    "default_joint_order",
    "parse_bottom_up",
    "group_bottom_up",
    "GROUPING_METHODS",
    "grouping_method",
]


@dataclass(frozen=True)
class GroupingParams:
    """Parser settings (official W32-512 COCO test values as defaults)."""

    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_people: int = 30
    use_detection_val: bool = True
    ignore_too_much: bool = False
    adjust: bool = True
    refine: bool = True
    nms_kernel: int = 5
    joint_order: tuple[int, ...] | None = None
    refine_min_score: float = 0.0


@dataclass(frozen=True)
class GroupingResult:
    """Full parser output, heatmap pixels.

    Attributes:
        grouped: (P, J, 3 + L) float32: x, y, value, then the L tag components (0 for joints
            filled by refine or missing).
        scores: (P,) float64 person scores (before refine).
        tag_k: (J, k, L) float32, loc_k: (J, k, 2) int64 (x, y), val_k: (J, k) float32: the
            top-k candidates after NMS (entries at or below the detection threshold, which
            the matcher ignores, may be left as zeros; see `top_k_candidates`).
    """

    grouped: np.ndarray
    scores: np.ndarray
    tag_k: np.ndarray
    loc_k: np.ndarray
    val_k: np.ndarray

    def to_poses(self) -> Poses:
        return Poses(self.grouped[:, :, :3], self.scores)



def parse_bottom_up(
    heatmaps: torch.Tensor, sampler: TagSampler, params: GroupingParams
) -> GroupingResult:
    """The full official parse on one image.

    Args:
        heatmaps: (J, H, W) float tensor (any device), finite.
        sampler: tags on the same (H, W) grid.
        params: settings.

    Returns:
        GroupingResult in heatmap pixels.
    """
    num_joints, height, width = heatmaps.shape
    if (sampler.height, sampler.width) != (height, width):
        raise ValueError(
            f"tag grid {(sampler.height, sampler.width)} != heatmap grid {(height, width)}"
        )
    heatmaps = heatmaps.float()
    # 4 x 4 block maxima, then the 8 x 8 ones from them (max of maxima: exact); shared by the
    # top-k and the refine bounds.
    sub_tile_max = _tile_max(heatmaps, _TILE // 2)
    tile_max = _tile_max(sub_tile_max, 2)
    val_k, ind_k, tag_k = top_k_candidates(
        heatmaps, sampler, params.max_people, params.nms_kernel, above=params.detection_threshold,
        tile_max=tile_max,
    )
    val_np = val_k.cpu().numpy().astype(np.float32)
    ind_np = ind_k.cpu().numpy()
    tag_np = tag_k.cpu().numpy().astype(np.float32)
    loc_np = np.stack((ind_np % width, ind_np // width), axis=-1).astype(np.int64)
    grouped = match_by_tag(tag_np, loc_np, val_np, params)
    if params.adjust:
        grouped = adjust_positions(grouped, heatmaps)
    scores = grouped[:, :, 2].mean(axis=1).astype(np.float64)
    if params.refine:
        chosen = refined_rows(scores, params.refine_min_score)
        refined = refine_people(
            grouped[chosen], heatmaps, sampler, tile_max=tile_max, sub_tile_max=sub_tile_max,
            seed_pixels=ind_k,
        )
        grouped = grouped.astype(np.float32, copy=True)
        grouped[chosen] = refined
    return GroupingResult(grouped, scores, tag_np, loc_np, val_np)


def refined_rows(scores: np.ndarray, min_score: float) -> np.ndarray:
    """Indices of the people that refine visits: all of them when `min_score` <= 0, else
    those scoring at least `min_score` (scores are taken before refine, so the choice is
    exact)."""
    if min_score <= 0:
        return np.arange(len(scores))
    return np.flatnonzero(scores >= min_score)


def _as_single_image(array: torch.Tensor, ndim: int, name: str) -> torch.Tensor:
    if array.ndim == ndim + 1:
        if array.shape[0] != 1:
            raise ValueError(f"{name}: one image at a time, got batch {array.shape[0]}")
        array = array[0]
    if array.ndim != ndim:
        raise ValueError(f"{name} has shape {tuple(array.shape)}; expected {ndim} dimensions")
    return array


def group_bottom_up(
    heatmaps: torch.Tensor | np.ndarray,
    tags: torch.Tensor | np.ndarray,
    *,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    use_detection_val: bool = True,
    ignore_too_much: bool = False,
    adjust: bool = True,
    refine: bool = True,
    nms_kernel: int = 5,
    joint_order: Sequence[int] | None = None,
    refine_min_score: float = 0.0,
    method: str = "associative_embedding",
    **method_options: Any,
) -> Poses:
    """Group keypoints into people (default: associative embedding, official HeatmapParser).

    Args:
        heatmaps: (J, H, W) or (1, J, H, W), torch (any device) or numpy.
        tags: (J, H, W, L) or (1, J, H, W, L) on the same grid (L = 2 with flip test).
        detection_threshold: candidates need a value above it.
        tag_threshold: a candidate joins a person when the tag distance is below it.
        max_people: top-k per joint and number of people eligible for matching.
        use_detection_val: cost = round(dist) * 100 - value (else the raw distance).
        ignore_too_much: skip a joint once max_people people exist.
        adjust: quarter offset + 0.5.
        refine: fill missing joints from the full maps.
        nms_kernel: NMS window (official test value 5).
        joint_order: matching order; default `default_joint_order(J)`.
        refine_min_score: refine only people scoring at least this (0: everyone, official).
        method: the grouping method (`GROUPING_METHODS`): "associative_embedding" (here) or
            another method's grouping, which receives the checked maps, the `GroupingParams`
            and `method_options` (e.g. offsets).
        **method_options: options of that method (TypeError for associative embedding).

    Returns:
        Poses in heatmap pixels: keypoints (P, J, 3) x, y, value; scores (P,) (before refine).

    Raises:
        ValueError: bad shapes or non-finite values in the maps.
    """
    heatmaps_t = torch.as_tensor(heatmaps)
    tags_t = torch.as_tensor(tags, device=heatmaps_t.device)
    heatmaps_t = _as_single_image(heatmaps_t, 3, "heatmaps").float()
    tags_t = _as_single_image(tags_t, 4, "tags").float()
    if tags_t.shape[:3] != heatmaps_t.shape:
        raise ValueError(
            f"tags {tuple(tags_t.shape)} do not match heatmaps {tuple(heatmaps_t.shape)}"
        )
    if heatmaps_t.numel() == 0:
        raise ValueError("empty heatmaps")
    if not all_finite(heatmaps_t) or not all_finite(tags_t):
        raise ValueError("heatmaps or tags contain NaN or infinite values")
    params = GroupingParams(
        detection_threshold=detection_threshold,
        tag_threshold=tag_threshold,
        max_people=max_people,
        use_detection_val=use_detection_val,
        ignore_too_much=ignore_too_much,
        adjust=adjust,
        refine=refine,
        nms_kernel=nms_kernel,
        joint_order=tuple(joint_order) if joint_order is not None else None,
        refine_min_score=refine_min_score,
    )
    if method == "associative_embedding":
        if method_options:
            raise TypeError(f"unknown grouping options: {sorted(method_options)}")
        return parse_bottom_up(heatmaps_t, DenseTags(tags_t), params).to_poses()
    return grouping_method(method)(heatmaps_t, tags_t, params, **method_options)


# Grouping methods beside associative embedding: name -> (module, function). Each function
# takes (heatmaps (J, H, W) float tensor, tags (J, H, W, L) float tensor, GroupingParams,
# **method options) and returns Poses in map pixels. Imported lazily.
GROUPING_METHODS: dict[str, tuple[str, str]] = {
    # --- Coupled Embedding
    "coupled_embedding": ("pose_core.grouping.coupled_embedding", "group_coupled_embedding"),
    # --- Double Embedding
    "double_embedding": ("pose_core.grouping.double_embedding", "group_double_embedding"),
}


def grouping_method(name: str) -> Callable[..., Poses]:
    """The grouping function registered as `name` (ValueError listing the known ones)."""
    if name not in GROUPING_METHODS:
        known = ", ".join(["associative_embedding", *GROUPING_METHODS])
        raise ValueError(f"unknown grouping method {name!r}; known: {known}")
    module, function = GROUPING_METHODS[name]
    return getattr(importlib.import_module(module), function)
