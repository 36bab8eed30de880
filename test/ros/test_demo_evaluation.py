"""The demo's evaluation: PersonArrays scored against a real in-process camera's ground truth."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from pose_core.evaluation.frame_scoring import FrameScorer
from pose_core.keypoint_specs import COCO_17
from pose_core.structures import Poses
from pose_ros.demo_evaluation import DemoEvaluation, missed_goals
from pose_ros.msg import PersonArray
from pose_ros.pose_conversion import poses_to_person_array
from pose_ros.synthetic_camera import SyntheticCameraNode

pytestmark = pytest.mark.ros


def _published_headers(
    context: rclpy.Context, count: int
) -> tuple[SyntheticCameraNode, list[Header]]:
    """A camera (left alive for its ground truth) and the headers of `count` published images."""
    camera = SyntheticCameraNode(
        context=context,
        parameter_overrides=[
            Parameter("width", value=320), Parameter("height", value=240),
            Parameter("rate", value=30.0), Parameter("num_people", value=3),
            Parameter("seed", value=2),
        ],
    )
    listener = Node("evaluation_listener", context=context)
    headers: list[Header] = []
    listener.create_subscription(Image, "image", lambda m: headers.append(m.header),
                                 qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(camera)
    executor.add_node(listener)
    deadline = time.monotonic() + 20.0
    while len(headers) < count and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    executor.shutdown()
    listener.destroy_node()
    assert len(headers) >= count
    return camera, headers


NEVER_PUBLISHED = Header(stamp=Time(sec=1, nanosec=5), frame_id="camera_optical_frame")


def _answer(camera: SyntheticCameraNode, header: Header, shift_px: float = 0.0) -> PersonArray:
    """A PersonArray for the frame of `header` that publishes its true people (shifted)."""
    keypoints, _ = camera.ground_truth(header)
    keypoints = np.array(keypoints, np.float32)
    keypoints[..., :2] += shift_px
    keypoints[..., 2] = np.where(keypoints[..., 2] > 0, 0.9, 0.0)  # a score per labelled joint
    poses = Poses(keypoints, np.full(len(keypoints), 0.9, np.float32))
    return poses_to_person_array(poses, header, (camera.width, camera.height), COCO_17)


def test_evaluation_scores_true_people_perfectly_and_stops_at_its_frame_limit(
    ros_context: rclpy.Context,
) -> None:
    camera, headers = _published_headers(ros_context, 6)
    evaluation = DemoEvaluation(camera, FrameScorer(COCO_17), max_frames=4)
    for header in headers[:6]:
        assert not evaluation.complete
        evaluation.score(_answer(camera, header))
        if evaluation.frames_scored == 4:
            break
    assert evaluation.complete
    evaluation.score(_answer(camera, headers[5], shift_px=60.0))  # beyond the limit
    summary = evaluation.summary()
    assert summary["frames"] == 4 and summary["frames_asked"] == 4
    assert summary["frames_after_limit"] == 1 and summary["frames_without_truth"] == 0
    assert summary["people_true"] > 0
    assert summary["recall"] == 1.0 and summary["precision"] == 1.0
    assert summary["keypoint_error_px_median"] < 1.0  # keypoints travel as float32 pixels
    assert summary["wrong_edge_fraction"] == 0.0
    assert missed_goals(summary, 0.95, 0.90, 0.01, eval_frames=4) == []
    assert missed_goals(summary, 0.95, 0.90, 0.01, eval_frames=5) == ["frames scored"]
    camera.destroy_node()


def test_evaluation_counts_unknown_frames_and_misplaced_people(
    ros_context: rclpy.Context,
) -> None:
    camera, headers = _published_headers(ros_context, 3)
    evaluation = DemoEvaluation(camera, FrameScorer(COCO_17))
    evaluation.score(PersonArray(header=NEVER_PUBLISHED))
    for header in headers[:3]:
        evaluation.score(_answer(camera, header, shift_px=60.0))  # everyone 85 px off
    summary = evaluation.summary()
    assert summary["frames_without_truth"] == 1 and summary["frames"] == 3
    assert not evaluation.complete  # no limit: never complete
    assert summary["recall"] < 0.5 and summary["precision"] < 0.5
    assert missed_goals(summary, 0.95, 0.0, 1.0) == ["recall"]
    camera.destroy_node()
