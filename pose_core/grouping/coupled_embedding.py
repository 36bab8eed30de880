"""Coupled Embedding grouping: multi-dimensional tags, rounded-distance costs, refine always.

Mirrors `post_processing` of the official CE release (`CR320/CoupledEmbedding` @ cc57620,
`models/evaluate.py`: `nms`, `sample_candidates`, `munkres_group`, `adjust_coordinates`,
`refine`), after its map projection and flip/scale aggregation (those live in
`pose_core.codecs.coupled_embedding`). Differences from HigherHRNet's parser (parity README
§4.3, §4.6):

- tags are L-dimensional (16 with flip test: the 8 values of the normal pass, then the 8 of the
  mirrored pass); distances are L2 over all L;
- joint types are matched in the CE order (COCO 0..16, CrowdPose 13, 12, 0..11), only
  candidates with value > detection_threshold;
- cost = round(distance / tag_threshold) (half to even), 1e5 when > 1, otherwise minus the
  candidate value; columns padded with 1e5; a pair joins the person only if distance <=
  tag_threshold (else the candidate opens a new person); a person's tag is the mean tag of its
  joints with value > 0 (its first joint's tag when new);
- adjust: +-0.25 towards the larger neighbour with clamped neighbours (ties go -0.25), +0.5;
- person score: mean value over all J joints, before refine;
- refine (on by default) for every missing joint: argmax over the whole map of heat -
  round(||tag - person tag||) (first maximum in row-major order), x = col + 0.5, y = row + 0.5,
  then +-0.25 as adjust; the joint is set unconditionally (also with a value <= 0); its tag 0.

The assignment uses scipy's `linear_sum_assignment` (munkres 1.1.4 officially; the same optimum,
they can differ only on exactly tied optima).

Frames and shapes: heatmaps (J, H, W) float32 (the aggregated maps before NMS); tags are read
per joint type through `tags_of_joint(j) -> (H, W, L)` (dense maps or a lazy projection);
outputs in map pixels: `grouped` (P, J, 3 + L) x, y, value, tag; scores (P,).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from pose_core.grouping.nms import heatmap_nms
from pose_core.structures import Poses

__all__ = [
    "CE_UNMATCHED_COST",
    "ce_joint_order",
    "CoupledEmbeddingGrouping",
    "ce_candidates",
    "ce_match",
    "ce_adjust",
    "ce_refine",
    "group_coupled_embedding",
    "parse_coupled_embedding",
]

CE_UNMATCHED_COST = 1e5
# refine compares up to this many tag values at once (people x H x W x L)
_REFINE_BATCH_ELEMENTS = 1 << 24
TagsOfJoint = Callable[[int], torch.Tensor]


def ce_joint_order(num_joints: int) -> tuple[int, ...]:
    """CE matching order (`inference_channel`): COCO identity, CrowdPose 13, 12, 0..11."""
    if num_joints == 14:
        return (13, 12, *range(12))
    return tuple(range(num_joints))


@dataclass(frozen=True)
class CoupledEmbeddingGrouping:
    """Everything the CE parser produced, map pixels.

    Attributes:
        grouped: (P, J, 3 + L) float32 after matching (integer x, y).
        adjusted: (P, J, 3 + L) after the quarter-offset adjust.
        refined: (P, J, 3 + L) final people (equal to `adjusted` without refine).
        scores: (P,) float64, before refine.
        val_k (J, k), loc_k (J, k, 2) (x, y), tag_k (J, k, L): the NMS candidates.
    """

    grouped: np.ndarray
    adjusted: np.ndarray
    refined: np.ndarray
    scores: np.ndarray
    val_k: np.ndarray
    loc_k: np.ndarray
    tag_k: np.ndarray

    def to_poses(self) -> Poses:
        return Poses(self.refined[:, :, :3].astype(np.float32), self.scores.astype(np.float32))


def ce_candidates(
    heatmaps: torch.Tensor, tags_of_joint: TagsOfJoint, nms_kernel: int, top_k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """NMS then the top-k pixels per joint: val_k (J, k), loc_k (J, k, 2) int64 (x, y) and
    tag_k (J, k, L) (official `nms` + `sample_candidates`)."""
    num_joints, _, width = heatmaps.shape
    filtered = heatmap_nms(heatmaps, nms_kernel).reshape(num_joints, -1)
    k = min(int(top_k), filtered.shape[1])
    val_k, index = filtered.topk(k, dim=1)
    loc_k = torch.stack((index % width, index // width), dim=2)
    tag_k = torch.stack([_flat(tags_of_joint(j))[index[j]] for j in range(num_joints)])
    return val_k, loc_k, tag_k


def _flat(tags: torch.Tensor) -> torch.Tensor:
    return tags.reshape(-1, tags.shape[-1])


def ce_match(
    val_k: torch.Tensor,
    loc_k: torch.Tensor,
    tag_k: torch.Tensor,
    detection_threshold: float,
    tag_threshold: float,
    joint_order: Sequence[int],
) -> list[torch.Tensor]:
    """Official `munkres_group`: people as (J, 3 + L) float32 tensors (x, y, value, tag)."""
    num_joints = val_k.shape[0]
    people: list[torch.Tensor] = []
    person_tags: list[torch.Tensor] = []
    for joint in joint_order:
        keep = val_k[joint] > detection_threshold
        if not bool(keep.any()):
            continue
        found = torch.cat(
            (loc_k[joint][keep].float(), val_k[joint][keep][:, None], tag_k[joint][keep]), dim=1
        )
        if not people:
            for row in found:
                people.append(_new_person(num_joints, joint, row))
                person_tags.append(row[3:])
            continue
        distance = torch.linalg.vector_norm(
            found[:, None, 3:] - torch.stack(person_tags)[None], dim=2
        )
        pairs = _assign(distance, found[:, 2], tag_threshold)
        num_people = len(people)
        for row, column in pairs:
            if column < num_people and float(distance[row, column]) <= tag_threshold:
                person = people[column]
                person[joint] = found[row]
                person_tags[column] = person[person[:, 2] > 0][:, 3:].mean(dim=0)
            else:
                people.append(_new_person(num_joints, joint, found[row]))
                person_tags.append(found[row, 3:])
    return people


def _new_person(num_joints: int, joint: int, row: torch.Tensor) -> torch.Tensor:
    person = row.new_zeros((num_joints, row.shape[0]))
    person[joint] = row
    return person


def _assign(
    distance: torch.Tensor, values: torch.Tensor, tag_threshold: float
) -> list[tuple[int, int]]:
    """The official cost matrix and its optimal assignment, pairs in row order."""
    cost = torch.round(distance / tag_threshold)
    near = cost <= 1
    cost[~near] = CE_UNMATCHED_COST
    cost[near] -= values[:, None].expand_as(cost)[near]
    matrix = cost.cpu().numpy().astype(np.float64)
    num_rows, num_columns = matrix.shape
    if num_rows > num_columns:
        padding = np.full((num_rows, num_rows - num_columns), CE_UNMATCHED_COST, np.float32)
        matrix = np.concatenate((matrix, padding), axis=1)
    rows, columns = linear_sum_assignment(matrix)
    return sorted(zip(rows.tolist(), columns.tolist()))


def _quarter_step(heat: torch.Tensor, row: int, column: int) -> tuple[float, float]:
    """(dx, dy) of +-0.25 towards the larger clamped neighbour (ties: -0.25)."""
    height, width = heat.shape
    right, left = heat[row, min(width - 1, column + 1)], heat[row, max(0, column - 1)]
    below, above = heat[min(height - 1, row + 1), column], heat[max(0, row - 1), column]
    return (0.25 if bool(right > left) else -0.25), (0.25 if bool(below > above) else -0.25)


def ce_adjust(people: list[torch.Tensor], heatmaps: torch.Tensor) -> list[torch.Tensor]:
    """Official `adjust_coordinates` on copies: found joints at x +- 0.25 + 0.5, y likewise."""
    adjusted = []
    for person in people:
        person = person.clone()
        for joint in torch.nonzero(person[:, 2] > 0).flatten().tolist():
            x, y = person[joint, 0], person[joint, 1]
            dx, dy = _quarter_step(heatmaps[joint], int(y), int(x))
            person[joint, 0] = x + dx + 0.5
            person[joint, 1] = y + dy + 0.5
        adjusted.append(person)
    return adjusted


def ce_refine(
    people: list[torch.Tensor], heatmaps: torch.Tensor, tags_of_joint: TagsOfJoint
) -> list[torch.Tensor]:
    """Official `refine` of every person (on copies), joint type by joint type so that each
    type's tag map is read once, the people missing it in batches; each person's tag is the
    mean tag of its found joints before refine."""
    refined = [person.clone() for person in people]
    missing = [person[:, 2] <= 0 for person in people]
    person_tags = [
        person[~gaps][:, 3:].mean(dim=0) if bool((~gaps).any()) else None
        for person, gaps in zip(people, missing)
    ]
    num_joints, height, width = heatmaps.shape
    for joint in range(num_joints):
        waiting = [i for i, gaps in enumerate(missing)
                   if bool(gaps[joint]) and person_tags[i] is not None]
        if not waiting:
            continue
        heat = heatmaps[joint]
        tags = tags_of_joint(joint)
        batch = max(1, _REFINE_BATCH_ELEMENTS // max(1, tags.numel()))
        for first in range(0, len(waiting), batch):
            chunk = waiting[first : first + batch]
            wanted = torch.stack([person_tags[i] for i in chunk])  # type: ignore[misc]
            distance = torch.linalg.vector_norm(tags[None] - wanted[:, None, None, :], dim=3)
            best = torch.argmax((heat[None] - torch.round(distance)).reshape(len(chunk), -1), 1)
            for i, flat in zip(chunk, best.tolist()):
                row, column = divmod(flat, width)
                dx, dy = _quarter_step(heat, row, column)
                refined[i][joint, 0] = column + 0.5 + dx
                refined[i][joint, 1] = row + 0.5 + dy
                refined[i][joint, 2] = heat[row, column]
    return refined


def parse_coupled_embedding(
    heatmaps: torch.Tensor,
    tags_of_joint: TagsOfJoint,
    *,
    detection_threshold: float = 0.1,
    tag_threshold: float = 1.0,
    max_people: int = 30,
    nms_kernel: int = 5,
    adjust: bool = True,
    refine: bool = True,
    joint_order: Sequence[int] | None = None,
    refine_min_score: float = 0.0,
) -> CoupledEmbeddingGrouping:
    """The whole CE parse of aggregated maps (see the module docstring); `refine_min_score` > 0
    refines only the people scoring at least that much (not official; scores are taken
    before refine)."""
    heatmaps = heatmaps.float()
    order = tuple(joint_order) if joint_order is not None else ce_joint_order(heatmaps.shape[0])
    val_k, loc_k, tag_k = ce_candidates(heatmaps, tags_of_joint, nms_kernel, max_people)
    grouped = ce_match(val_k, loc_k, tag_k, detection_threshold, tag_threshold, order)
    adjusted = ce_adjust(grouped, heatmaps) if adjust else grouped
    scores = np.asarray([float(p[:, 2].mean()) for p in adjusted], np.float64)
    refined = list(adjusted)
    if refine:
        chosen = [i for i, score in enumerate(scores) if score >= refine_min_score]
        for i, person in zip(chosen, ce_refine([adjusted[i] for i in chosen], heatmaps,
                                               tags_of_joint)):
            refined[i] = person
    width = 3 + tag_k.shape[-1]

    def stack(people: list[torch.Tensor]) -> np.ndarray:
        if not people:
            return np.zeros((0, heatmaps.shape[0], width), np.float32)
        return torch.stack(people).cpu().numpy().astype(np.float32)

    return CoupledEmbeddingGrouping(
        grouped=stack(grouped),
        adjusted=stack(adjusted),
        refined=stack(refined),
        scores=scores,
        val_k=val_k.cpu().numpy(),
        loc_k=loc_k.cpu().numpy(),
        tag_k=tag_k.cpu().numpy(),
    )


def group_coupled_embedding(
    heatmaps: torch.Tensor, tags: torch.Tensor, params: object
) -> Poses:
    """`GROUPING_METHODS["coupled_embedding"]`: heatmaps (J, H, W), tags (J, H, W, L) (L = 16
    with flip, 8 without) and a `GroupingParams` -> Poses in map pixels (scores before refine).

    `use_detection_val` and `ignore_too_much` are HigherHRNet options the CE parser does not
    have (it always uses the value in the cost and keeps every candidate above threshold).
    """
    result = parse_coupled_embedding(
        heatmaps,
        lambda joint: tags[joint],
        detection_threshold=params.detection_threshold,  # type: ignore[attr-defined]
        tag_threshold=params.tag_threshold,  # type: ignore[attr-defined]
        max_people=params.max_people,  # type: ignore[attr-defined]
        nms_kernel=params.nms_kernel,  # type: ignore[attr-defined]
        adjust=params.adjust,  # type: ignore[attr-defined]
        refine=params.refine,  # type: ignore[attr-defined]
        joint_order=params.joint_order,  # type: ignore[attr-defined]
    )
    return result.to_poses()
