"""Tracking people over frames: persistent ids (`PoseTracker`) and keypoint smoothing
(`OneEuroFilter`). Pure numpy / scipy; image pixels in, image pixels out."""

from __future__ import annotations

from pose_core.tracking.joint_gate import JointGate
from pose_core.tracking.one_euro import OneEuroFilter
from pose_core.tracking.similarity import box_iou_matrix, oks_matrix
from pose_core.tracking.tracker import PoseTracker, StampWentBack, TrackerConfig

__all__ = [
    "JointGate", "OneEuroFilter", "PoseTracker", "StampWentBack", "TrackerConfig",
    "box_iou_matrix", "oks_matrix",
]
