"""The demo's evaluation: each published PersonArray scored against the camera's exact truth.

`DemoEvaluation` looks up the ground truth of the frame a PersonArray answers (by its header
stamp, `SyntheticCameraNode.ground_truth`) and scores it with
`pose_core.evaluation.FrameScorer` (people recall and precision at OKS >= 0.5, keypoint error in
input-image pixels, wrong-person edges among the drawn ones). With `max_frames` it scores that
many frames and no more, so an `--eval-frames N` run reports exactly N frames.
With depth (`--depth`), `score_3d` scores each `people_3d` message against the frame's exact 3D
keypoints (`SyntheticCameraNode.ground_truth_positions`): people matched to the truth by OKS as
above, the error of every visible joint that got a position. `evaluation_line`,
`evaluation_3d_line` and `missed_goals` turn the totals into the demo's printed lines and exit
status.
"""

from __future__ import annotations

import threading

import numpy as np

from pose_core.evaluation.frame_scoring import FrameScorer, match_people, position_errors
from pose_ros.msg import PersonArray
from pose_ros.pose_conversion import person_array_positions, person_array_to_poses
from pose_ros.synthetic_camera import SyntheticCameraNode

__all__ = ["DemoEvaluation", "evaluation_3d_line", "evaluation_line", "missed_goals"]


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
        self.frames_3d = 0  # people_3d messages scored
        self.errors_3d: list[float] = []  # metres
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

    def score_3d(self, msg: PersonArray) -> None:
        """Score one people_3d message against its frame's exact 3D keypoints."""
        truth = self.camera.ground_truth(msg.header)
        truth_positions = self.camera.ground_truth_positions(msg.header)
        if truth is None or truth_positions is None:
            return
        keypoints, areas = truth
        matched = match_people(person_array_to_poses(msg).keypoints, keypoints, areas,
                               np.asarray(self.scorer.spec.sigmas), self.scorer.oks_threshold)
        errors = position_errors(*person_array_positions(msg), truth_positions,
                                 keypoints[..., 2], matched)
        with self._lock:
            self.frames_3d += 1
            self.errors_3d.extend(float(e) for e in errors)

    def summary(self) -> dict[str, float | int]:
        """The scorer's totals plus the frame counts of this run (and the 3D errors, metres,
        when people_3d messages were scored)."""
        with self._lock:
            summary = self.scorer.summary()
            summary["frames_asked"] = self.max_frames
            summary["frames_without_truth"] = self.frames_without_truth
            summary["frames_after_limit"] = self.frames_after_limit
            if self.frames_3d:
                errors = np.asarray(self.errors_3d)
                summary["frames_3d"] = self.frames_3d
                summary["keypoints_3d"] = int(errors.size)
                summary["keypoint_error_3d_m_median"] = (
                    float(np.median(errors)) if errors.size else float("nan"))
                summary["keypoint_error_3d_m_p90"] = (
                    float(np.percentile(errors, 90)) if errors.size else float("nan"))
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


def evaluation_3d_line(evaluation: dict[str, float | int]) -> str:
    """The printed 3D totals (`score_3d`)."""
    return (
        f"3D keypoint error over {evaluation['frames_3d']} people_3d frames "
        f"({evaluation['keypoints_3d']} visible joints with a position): median "
        f"{100 * evaluation['keypoint_error_3d_m_median']:.1f} cm, p90 "
        f"{100 * evaluation['keypoint_error_3d_m_p90']:.1f} cm"
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
