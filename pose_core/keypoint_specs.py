"""Keypoint layouts as data: names, flip index, OKS sigmas, skeleton and grouping order.

COCO (17 joints) and CrowdPose (14 joints) as the official HigherHRNet / HRNet code and the
COCO / CrowdPose evaluation APIs define them. Never infer the layout from the joint count: pass
the spec.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "KeypointSpec", "COCO_17", "CROWDPOSE_14", "UNION_24", "COCO_17_TO_UNION_24", "KEYPOINT_SPECS",
    "get_keypoint_spec",
]


@dataclass(frozen=True)
class KeypointSpec:
    """One keypoint layout.

    Attributes:
        name: short identifier ("coco", "crowdpose").
        names: joint names in channel order.
        flip_index: joint index that each joint becomes after a horizontal mirror.
        sigmas: per-joint OKS sigmas (the evaluator's constants).
        skeleton: limbs as 0-based (start, end) joint index pairs, for drawing.
        joint_order: order in which the official bottom-up parser matches joints.
    """

    name: str
    names: tuple[str, ...]
    flip_index: tuple[int, ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...]
    joint_order: tuple[int, ...]

    def __post_init__(self) -> None:
        n = len(self.names)
        for field_name in ("flip_index", "sigmas", "joint_order"):
            if len(getattr(self, field_name)) != n:
                raise ValueError(f"KeypointSpec {self.name}: {field_name} must have {n} entries")
        if sorted(self.flip_index) != list(range(n)) or sorted(self.joint_order) != list(range(n)):
            raise ValueError(f"KeypointSpec {self.name}: flip_index/joint_order not permutations")

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    @property
    def skeleton_1based(self) -> list[list[int]]:
        """The skeleton as COCO's `categories[].skeleton` stores it (1-based)."""
        return [[a + 1, b + 1] for a, b in self.skeleton]


COCO_17 = KeypointSpec(
    name="coco",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
    # COCO's categories[0].skeleton, converted to 0-based indices.
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
        (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    joint_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
)

CROWDPOSE_14 = KeypointSpec(
    name="crowdpose",
    names=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
    ),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    sigmas=(
        0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
        0.087, 0.087, 0.089, 0.089, 0.079, 0.079,
    ),
    skeleton=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7),
        (6, 8), (8, 10), (7, 9), (9, 11),
    ),
    # The official parser truncates the COCO order to 14 entries; kept as is (a known quirk).
    joint_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13),
)

# The 24-joint "union" set of the semi-supervised pose study (Xie et al., ICCV 2021; official
# `xierc/Semi_Human_Pose` `lib/dataset/*::get_mapping`), shared by COCO, MPII and AI Challenger.
# Sigmas: COCO's for the 17 channels that receive a COCO joint, 0.1 for the others (never
# evaluated: their training weight is always 0 on COCO).
UNION_24 = KeypointSpec(
    name="union24",
    names=(
        "root", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
        "left_ankle", "belly", "thorax", "neck", "upper_neck", "nose", "head", "head_top",
        "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow",
        "right_wrist", "right_eye", "left_eye", "right_ear", "left_ear",
    ),
    flip_index=(
        0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 17, 18, 19, 14, 15, 16, 21, 20, 23, 22,
    ),
    sigmas=(
        0.1, 0.107, 0.087, 0.089, 0.107, 0.087, 0.089, 0.1, 0.1, 0.1, 0.1, 0.026, 0.1, 0.1,
        0.079, 0.072, 0.062, 0.079, 0.072, 0.062, 0.025, 0.025, 0.035, 0.035,
    ),
    skeleton=(
        (3, 2), (2, 1), (6, 5), (5, 4), (1, 4), (14, 4), (17, 1), (14, 17), (14, 15),
        (15, 16), (17, 18), (18, 19), (21, 20), (11, 21), (11, 20), (21, 23), (20, 22),
    ),
    joint_order=tuple(range(24)),
)

# Union channel of each COCO-17 joint (official `get_mapping`): 11 nose, 21 left eye, ...
COCO_17_TO_UNION_24: tuple[int, ...] = (
    11, 21, 20, 23, 22, 14, 17, 15, 18, 16, 19, 4, 1, 5, 2, 6, 3,
)

KEYPOINT_SPECS: dict[str, KeypointSpec] = {"coco": COCO_17, "crowdpose": CROWDPOSE_14}


def get_keypoint_spec(name: str) -> KeypointSpec:
    """Return the spec called `name` ("coco" or "crowdpose")."""
    try:
        return KEYPOINT_SPECS[name]
    except KeyError:
        raise ValueError(
            f"unknown keypoint set {name!r}; expected one of {sorted(KEYPOINT_SPECS)}"
        ) from None
