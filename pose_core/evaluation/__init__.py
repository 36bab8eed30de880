"""Evaluation: COCO / CrowdPose keypoint AP with the official tools, result records, `pose-eval`.

Exports: `KeypointEvaluator`, `evaluate_keypoint_results`, `poses_to_coco_results`,
`write_results_json`, `load_results_json`, and `FrameScorer` (people recall / precision at an OKS
threshold, keypoint error and wrong-person edges of published people, frame by frame). The COCO tools are imported only when evaluating.
"""

from __future__ import annotations

from pose_core.data.coco_results import (
    load_results_json,
    poses_to_coco_results,
    write_results_json,
)
from pose_core.evaluation.coco_evaluator import KeypointEvaluator, evaluate_keypoint_results
from pose_core.evaluation.frame_scoring import FrameScore, FrameScorer

__all__ = [
    "FrameScore",
    "FrameScorer",
    "KeypointEvaluator",
    "evaluate_keypoint_results",
    "load_results_json",
    "poses_to_coco_results",
    "write_results_json",
]
