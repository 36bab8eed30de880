"""Tag matching: candidates to people, joint by joint, by associative-embedding distance.

Follows the official HigherHRNet (Cheng et al., CVPR 2020) `lib/core/group.py::match_by_tag`
(and its `Params.joint_order`), itself from Newell et al., "Associative Embedding" (NeurIPS
2017), written anew. A sequential state machine over the J joints on at most
max_people x max_people arrays: it runs on the host (numpy) after one device-to-host copy of
the candidates, next to the assignment solver, so a GPU does not sync once per joint.

Assignment solver: `scipy.optimize.linear_sum_assignment` replaces the official `munkres` 1.1.
Both return a minimum-cost assignment of every candidate (munkres pads the missing rows with 0,
scipy solves the rectangular problem directly; the optimum is the same). They can differ only
when several assignments share the minimum cost (exact ties, e.g. one candidate at the same
rounded tag distance from two people, or padded 1e10 columns); then either optimum is returned.
The official fixtures are not degenerate in that sense and give the same people with both.

Faithful quirks kept: people live in an insertion-ordered dict keyed by the float value of the
first tag component of the candidate that started them; a key collision writes the joint into
the existing person and resets its tag list to the new tag (Python `setdefault`); only the first
`max_people` people in insertion order are eligible for matching; `round` is half-to-even.

Shapes and frames: candidates tag_k (J, k, L), loc_k (J, k, 2) int64 (x, y) heatmap pixel
indices, val_k (J, k); output (P, J, 3 + L) float32 rows x, y, value, tags, with x, y the
integer pixel indices of the matched candidates (no offset yet; see `adjust`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import linear_sum_assignment

from pose_core.keypoint_specs import COCO_17, CROWDPOSE_14

if TYPE_CHECKING:  # the parser imports this module; the settings type only annotates here
    from pose_core.grouping.parser import GroupingParams

__all__ = ["default_joint_order", "match_by_tag"]


def default_joint_order(num_joints: int) -> tuple[int, ...]:
    """Official matching order: COCO's for J = 17, its 14-entry truncation for J = 14.

    Any other J gets the identity order (there is no official one).
    """
    if num_joints == COCO_17.num_keypoints:
        return COCO_17.joint_order
    if num_joints == CROWDPOSE_14.num_keypoints:
        return CROWDPOSE_14.joint_order
    return tuple(range(num_joints))


def match_by_tag(
    tag_k: np.ndarray,
    loc_k: np.ndarray,
    val_k: np.ndarray,
    params: GroupingParams,
) -> np.ndarray:
    """Greedy joint-by-joint matching of candidates to people by tag distance.

    Args:
        tag_k: (J, k, L) float32 candidate tags.
        loc_k: (J, k, 2) int64 candidate (x, y).
        val_k: (J, k) float32 candidate values.
        params: thresholds, max people, joint order.

    Returns:
        (P, J, 3 + L) float32: x, y, value, tags per person, in insertion order (zeros where a
        joint was not matched).
    """
    num_joints, _, num_tags = tag_k.shape
    order = params.joint_order or default_joint_order(num_joints)
    if len(set(order)) != len(order) or not all(0 <= j < num_joints for j in order):
        raise ValueError(f"joint_order {order} is not a list of distinct joints")
    width = 3 + num_tags
    people: dict[float, np.ndarray] = {}
    # Each person's tags as a running sum and count (slot per key) in the tags' own float
    # type: the official mean of the person's tag list (numpy's axis-0 mean, which keeps that
    # type) is this sequential sum divided by the count, bit for bit, and one division for all
    # people replaces a np.mean call per person and joint (most of the matching time before).
    slot_of: dict[float, int] = {}
    sum_dtype = tag_k.dtype if np.issubdtype(tag_k.dtype, np.floating) else np.float64
    tag_sums = np.zeros((2 * tag_k.shape[1] + 1, num_tags), sum_dtype)
    tag_counts = np.zeros(tag_sums.shape[0], sum_dtype)

    def start_or_overwrite(key: float, joint: int, row: np.ndarray, tag: np.ndarray) -> None:
        nonlocal tag_sums, tag_counts
        # setdefault semantics: a colliding key reuses that person and resets its tags.
        people.setdefault(key, np.zeros((num_joints, width)))[joint] = row
        slot = slot_of.setdefault(key, len(slot_of))
        if slot == tag_sums.shape[0]:
            tag_sums = np.concatenate((tag_sums, np.zeros_like(tag_sums)))
            tag_counts = np.concatenate((tag_counts, np.zeros_like(tag_counts)))
        tag_sums[slot] = tag
        tag_counts[slot] = 1

    for position, joint in enumerate(order):
        tags = tag_k[joint]
        # int64 + float32 columns concatenate to float64, as in the official parser.
        rows = np.concatenate((loc_k[joint], val_k[joint][:, None], tags), axis=1)
        keep = rows[:, 2] > params.detection_threshold
        tags, rows = tags[keep], rows[keep]
        if rows.shape[0] == 0:
            continue
        if position == 0 or len(people) == 0:
            for tag, row in zip(tags, rows):
                start_or_overwrite(float(tag[0]), joint, row, tag)
            continue
        keys = list(people.keys())[: params.max_people]
        if params.ignore_too_much and len(keys) == params.max_people:
            continue
        slots = np.array([slot_of[key] for key in keys])
        mean_tags = tag_sums[slots] / tag_counts[slots, None]
        dist = np.linalg.norm(rows[:, None, 3:] - mean_tags[None, :, :], ord=2, axis=2)
        cost = np.round(dist) * 100 - rows[:, 2:3] if params.use_detection_val else dist.copy()
        num_added, num_grouped = dist.shape
        if num_added > num_grouped:
            cost = np.concatenate(
                (cost, np.full((num_added, num_added - num_grouped), 1e10)), axis=1
            )
        row_ids, col_ids = linear_sum_assignment(cost)
        for r, c in zip(row_ids.tolist(), col_ids.tolist()):
            if c < num_grouped and dist[r, c] < params.tag_threshold:
                key = keys[c]
                people[key][joint] = rows[r]
                tag_sums[slots[c]] += tags[r]
                tag_counts[slots[c]] += 1
            else:
                start_or_overwrite(float(tags[r][0]), joint, rows[r], tags[r])
    if not people:
        return np.zeros((0, num_joints, width), np.float32)
    return np.stack(list(people.values())).astype(np.float32)
