"""Straightforward loop-over-people implementation of the HigherHRNet parser (numpy).

The same algorithm as `parser.parse_bottom_up`, written the plain way the official HigherHRNet
`lib/core/group.py::HeatmapParser.parse` is structured: `HeatmapParser.adjust` loops over people
and joints, `HeatmapParser.refine` loops over people and scans every joint's full map. It
exists as an independent cross-check for the tests and as the baseline of
`training/benchmark_postprocess.py`; use `group_bottom_up` in real code.

Shapes: det (J, H, W) float32, tags (J, H, W, L) float32, heatmap pixels, x first.
"""

from __future__ import annotations

import numpy as np
import torch

from pose_core.grouping.nms import heatmap_nms
from pose_core.grouping.matching import match_by_tag
from pose_core.grouping.parser import GroupingParams

__all__ = ["reference_parse"]


def _quarter(det_j: np.ndarray, x: int, y: int) -> tuple[float, float]:
    height, width = det_j.shape
    dx = 0.25 if det_j[y, min(x + 1, width - 1)] > det_j[y, max(x - 1, 0)] else -0.25
    dy = 0.25 if det_j[min(y + 1, height - 1), x] > det_j[max(y - 1, 0), x] else -0.25
    return dx, dy


def _refine_one(det: np.ndarray, tags: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Refine one person (J, 3 + L) over the full maps; returns a new array."""
    person = person.copy()
    found = [
        tags[j, int(np.int32(person[j, 1])), int(np.int32(person[j, 0]))]
        for j in range(person.shape[0])
        if person[j, 2] > 0
    ]
    prev = np.mean(found, axis=0)
    # Like the official code: every joint's full map is searched, missing ones are filled.
    for j in range(person.shape[0]):
        dist = np.sqrt(((tags[j] - prev[None, None, :]) ** 2).sum(axis=2))
        score = det[j] - np.round(dist)
        y, x = np.unravel_index(int(np.argmax(score)), score.shape)
        val = det[j, y, x]
        if val > 0 and person[j, 2] == 0:
            dx, dy = _quarter(det[j], int(x), int(y))
            person[j, 0] = x + 0.5 + dx
            person[j, 1] = y + 0.5 + dy
            person[j, 2] = val
    return person


def reference_parse(
    det: np.ndarray, tags: np.ndarray, params: GroupingParams
) -> tuple[np.ndarray, np.ndarray]:
    """The official parse with per-person loops.

    Args:
        det: (J, H, W) float32 aggregated heatmaps.
        tags: (J, H, W, L) float32 tags.
        params: parser settings.

    Returns:
        grouped (P, J, 3 + L) float32 (heatmap pixels) and scores (P,) float64 (before refine).
    """
    det = np.ascontiguousarray(det, np.float32)
    tags = np.ascontiguousarray(tags, np.float32)
    num_joints, height, width = det.shape
    suppressed = heatmap_nms(torch.from_numpy(det), params.nms_kernel).reshape(num_joints, -1)
    val_k, ind_k = suppressed.topk(min(params.max_people, height * width), dim=1)
    ind = ind_k.numpy()
    loc_k = np.stack((ind % width, ind // width), axis=-1).astype(np.int64)
    flat_tags = tags.reshape(num_joints, -1, tags.shape[3])
    tag_k = np.stack([flat_tags[j, ind[j]] for j in range(num_joints)])
    grouped = match_by_tag(tag_k, loc_k, val_k.numpy(), params)
    if params.adjust:
        for person in grouped:
            for j in range(num_joints):
                if person[j, 2] > 0:
                    x, y = int(person[j, 0]), int(person[j, 1])
                    dx, dy = _quarter(det[j], x, y)
                    person[j, 0] = x + dx + 0.5
                    person[j, 1] = y + dy + 0.5
    scores = np.array([person[:, 2].mean() for person in grouped], np.float64)
    if params.refine:
        grouped = np.stack([_refine_one(det, tags, person) for person in grouped]) if len(
            grouped
        ) else grouped
    return grouped.astype(np.float32), scores
