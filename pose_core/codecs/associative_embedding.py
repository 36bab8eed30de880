"""Associative-embedding training targets: per-person joint indices into the tag maps.

Mirrors the official HigherHRNet `JointsGenerator`
(`lib/dataset/target_generators/target_generators.py`; Newell et al., "Associative Embedding",
NeurIPS 2017): for each person slot p, the visible in-bounds joints are packed densely in joint
order as (flat index, 1), with flat index `j·r² + y·r + x` (tag per joint) or `y·r + x`, where
x = int(x), y = int(y) are truncated output-resolution coordinates and r is that output's side.
Unused entries are (0, 0). The AE loss reads the tag map flattened over (J, H, W) at these
indices (only the first, 1/4-resolution output carries tags).

Frames: joints (P, J, >=3) x, y, visibility in output pixels of the resolution r.
Output: (max_people, J, 2) int64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["JointsIndexEncoder", "encode_joint_indices"]


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
