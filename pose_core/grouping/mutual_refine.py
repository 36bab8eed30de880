"""Mutual Refine Machine (MRM) of Double Embedding: confident joints correct their neighbours.

Follows `lib/core/group.py::HeatmapParser.mutual_refine_machine` of `plyplyply/pytorch-DEM2`
@ 06f188d (Xu et al., ACCV 2020), written anew. The release defines it but never calls it (the
call is commented out); `dem_mode="paper"` applies it. With threshold t (0.75), score s, position
p and each limb joint's offset o to its parent (o = parent - joint, map pixels):

- end joint j (wrist, ankle) with parent e: if s_e > t, s_e > s_j and s_j > 0,
  p_j <- (s_j p_j + s_e (p_e - o_j)) / (s_j + s_e);
- middle joint j (elbow, knee) with parent r and child c: if s_j > 0, each neighbour with score
  > t and > s_j adds its estimate (r: p_r - o_j; c: p_c + o_c) with weight s; p_j <- the
  score-weighted mean of p_j and the estimates;
- root joint r (shoulder, hip) with child c: if s_r > 0, s_c > t and s_c > s_r,
  p_r <- (s_r p_r + s_c (p_c + o_c)) / (s_r + s_c).

Every update reads the positions before any update (simultaneous). The release's face rule
(via the centre) is commented out there and not offered here.

Shapes and frames: one person (J, 5) float32 rows x, y, value, then (dx, dy) to the parent for
limb joints (other joints: anything); positions in map pixels.
"""

from __future__ import annotations

import numpy as np

from pose_core.models.double_embedding import DemPartition

__all__ = ["MRM_THRESHOLD", "mutual_refine"]

MRM_THRESHOLD = 0.75


def _confident(score: np.float32, own: np.float32, threshold: float) -> bool:
    return bool(score > threshold and score > own)


def mutual_refine(
    person: np.ndarray, partition: DemPartition, threshold: float = MRM_THRESHOLD
) -> np.ndarray:
    """One person's joints after MRM (a new array; the input is not modified).

    Args:
        person: (J, >=5) float32 x, y, value, dx, dy (offset to the parent for limb joints).
        partition: root / limb joints and the parent table.
        threshold: a neighbour takes part only with a score above it (and above the joint's).
    """
    p = np.asarray(person, dtype=np.float32)
    out = p.copy()
    for j in partition.limbs:
        s_j = p[j, 2]
        parent = partition.parent_of(j)
        child = partition.child_of(j)
        if child is None:
            s_e = p[parent, 2]
            if _confident(s_e, s_j, threshold) and s_j > 0:
                total = s_e + s_j
                out[j, :2] = s_j / total * p[j, :2] + s_e / total * (p[parent, :2] - p[j, 3:5])
            continue
        if not s_j > 0:
            continue
        estimates = []
        if _confident(p[parent, 2], s_j, threshold):
            estimates.append((p[parent, 2], p[parent, :2] - p[j, 3:5]))
        if _confident(p[child, 2], s_j, threshold):
            estimates.append((p[child, 2], p[child, :2] + p[child, 3:5]))
        if estimates:
            out[j, :2] = _weighted(s_j, p[j, :2], estimates)
    for r in partition.root:
        s_r = p[r, 2]
        child = partition.child_of(r)
        if child is None or not s_r > 0 or not _confident(p[child, 2], s_r, threshold):
            continue
        out[r, :2] = _weighted(s_r, p[r, :2], [(p[child, 2], p[child, :2] + p[child, 3:5])])
    return out


def _weighted(
    own_score: np.float32, own: np.ndarray, estimates: list[tuple[np.float32, np.ndarray]]
) -> np.ndarray:
    """(s p + sum s_k e_k) / (s + sum s_k), summed in the release's order."""
    total = own_score
    for score, _ in estimates:
        total = total + score
    moved = np.zeros(2, np.float32)
    for score, estimate in estimates:
        moved = moved + score / total * estimate
    return own_score / total * own + moved
