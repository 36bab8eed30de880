"""The demo's evaluation: each published PersonArray scored against the camera's exact truth.

`DemoEvaluation` looks up the ground truth of the frame a PersonArray answers (by its header
stamp, `SyntheticCameraNode.ground_truth`) and scores it with
`pose_core.evaluation.FrameScorer` (people recall and precision at OKS >= 0.5, keypoint error in
input-image pixels, wrong-person edges among the drawn ones). With `max_frames` it scores that
many frames and no more, so an `--eval-frames N` run reports exactly N frames.
`evaluation_line` and `missed_goals` turn the totals into the demo's printed line and exit
status.
"""

from __future__ import annotations

import threading

from pose_core.evaluation.frame_scoring import FrameScorer
from pose_ros.msg import PersonArray
from pose_ros.pose_conversion import person_array_to_poses
from pose_ros.synthetic_camera import SyntheticCameraNode

__all__ = ["DemoEvaluation", "evaluation_line", "missed_goals"]


class DemoEvaluation:
    """Scores PersonArrays against the in-process camera's ground truth; thread-safe.

    Args:
        camera: the synthetic camera whose frames the pose node answers.
        scorer: keeps the totals.
        max_frames: score at most this many frames (0 = no limit); later ones are counted in
            `frames_after_limit` only.
    """

    def __init__(self, camera: SyntheticCameraNode, scorer: FrameScorer,
                 max_frames: int = 0) -> None:
        if max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, got {max_frames}")
        self.camera = camera
        self.scorer = scorer
        self.max_frames = max_frames
        self.frames_without_truth = 0
        self.frames_after_limit = 0
        self._lock = threading.Lock()

    @property
    def frames_scored(self) -> int:
        with self._lock:
            return len(self.scorer.frames)

    @property
    def complete(self) -> bool:
        """True once `max_frames` frames are scored (never without a limit)."""
        return self.max_frames > 0 and self.frames_scored >= self.max_frames

    def score(self, msg: PersonArray) -> None:
        """Score one published PersonArray (called from the monitor's subscription)."""
        truth = self.camera.ground_truth(msg.header)
        keypoints = person_array_to_poses(msg).keypoints
        with self._lock:
            if truth is None:
                self.frames_without_truth += 1
            elif self.max_frames and len(self.scorer.frames) >= self.max_frames:
                self.frames_after_limit += 1
            else:
                self.scorer.score(keypoints, *truth)

    def summary(self) -> dict[str, float | int]:
        """The scorer's totals plus the frame counts of this run."""
        with self._lock:
            summary = self.scorer.summary()
            summary["frames_asked"] = self.max_frames
            summary["frames_without_truth"] = self.frames_without_truth
            summary["frames_after_limit"] = self.frames_after_limit
        return summary


def evaluation_line(evaluation: dict[str, float | int]) -> str:
    """The printed totals."""
    return (
        f"evaluation over {evaluation['frames']} frames ({evaluation['people_true']} people to "
        f"find): recall {evaluation['recall']:.3f}, precision {evaluation['precision']:.3f} at "
        f"OKS >= 0.5; keypoint error median {evaluation['keypoint_error_px_median']:.1f} px, "
        f"p90 {evaluation['keypoint_error_px_p90']:.1f} px; wrong-person edges "
        f"{evaluation['edges_wrong']} of {evaluation['edges_drawn']} drawn "
        f"({100 * evaluation['wrong_edge_fraction']:.2f} %)"
    )


def missed_goals(evaluation: dict[str, float | int], min_recall: float, min_precision: float,
                 max_wrong_edges: float, eval_frames: int = 0) -> list[str]:
    """Names of the goals the totals miss (a goal of 0 for recall / precision is no goal).

    With `eval_frames`, scoring fewer frames than asked (the time limit came first) is a miss:
    the totals would then speak for fewer frames than the check needs.
    """
    checks = (
        ("frames scored", eval_frames > 0 and evaluation["frames"] < eval_frames),
        ("recall", min_recall > 0 and not evaluation["recall"] >= min_recall),
        ("precision", min_precision > 0 and not evaluation["precision"] >= min_precision),
        ("wrong-person edges", evaluation["wrong_edge_fraction"] > max_wrong_edges),
    )
    return [name for name, missed in checks if missed]
