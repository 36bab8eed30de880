"""Poses <-> PersonArray: header unchanged, layout, order, boxes, pixel frame kept."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from pose_core.keypoint_specs import COCO_17, CROWDPOSE_14
from pose_core.structures import Poses
from pose_ros.pose_conversion import (
    PersonArrayBuilder,
    person_array_to_poses,
    poses_to_person_array,
)

pytestmark = pytest.mark.ros


def _poses(num_people: int, num_keypoints: int = 17, seed: int = 0) -> Poses:
    rng = np.random.default_rng(seed)
    keypoints = np.zeros((num_people, num_keypoints, 3), np.float32)
    keypoints[..., 0] = rng.uniform(0, 640, (num_people, num_keypoints))
    keypoints[..., 1] = rng.uniform(0, 480, (num_people, num_keypoints))
    keypoints[..., 2] = rng.uniform(0.05, 1.0, (num_people, num_keypoints))
    return Poses(keypoints, rng.uniform(0, 1, num_people))


def test_round_trip_keeps_pixels_header_and_sorts_by_score() -> None:
    poses = _poses(5)
    header = Header(stamp=Time(sec=1234, nanosec=567890), frame_id="camera_optical")
    msg = poses_to_person_array(poses, header, (640, 480), COCO_17)
    assert msg.header.stamp.sec == 1234 and msg.header.stamp.nanosec == 567890
    assert msg.header.frame_id == "camera_optical"
    assert (msg.image_width, msg.image_height) == (640, 480)
    assert list(msg.keypoint_names) == list(COCO_17.names)
    assert [(e.start, e.end) for e in msg.skeleton] == list(COCO_17.skeleton)
    scores = [p.score for p in msg.people]
    assert scores == sorted(scores, reverse=True)
    assert all(p.id == -1 for p in msg.people)
    back = person_array_to_poses(msg)
    order = np.argsort(-poses.scores)
    np.testing.assert_allclose(back.keypoints, poses.keypoints[order], atol=1e-4)
    np.testing.assert_allclose(back.scores, poses.scores[order], atol=1e-6)


def test_bbox_uses_only_detected_keypoints() -> None:
    keypoints = np.zeros((1, 14, 3), np.float32)
    keypoints[0, 0] = (10, 20, 0.9)
    keypoints[0, 5] = (110, 70, 0.5)
    keypoints[0, 6] = (500, 400, 0.0)  # not detected: ignored by the box
    msg = poses_to_person_array(Poses(keypoints, [0.7]), Header(), (640, 480), CROWDPOSE_14)
    person = msg.people[0]
    assert (person.bbox_x, person.bbox_y, person.bbox_width, person.bbox_height) == (
        10, 20, 100, 50)
    assert len(person.keypoints) == 14 and person.keypoints[6].score == 0.0
    assert not person.keypoints[0].has_position


def test_empty_poses_give_an_empty_array_with_layout() -> None:
    msg = poses_to_person_array(Poses.empty(17), Header(frame_id="cam"), (64, 48), COCO_17)
    assert len(msg.people) == 0 and len(msg.keypoint_names) == 17
    assert msg.header.frame_id == "cam"
    assert len(person_array_to_poses(msg)) == 0


def test_wrong_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="17 keypoints"):
        poses_to_person_array(_poses(1, 17), Header(), (64, 48), CROWDPOSE_14)


def test_reusing_builder_gives_the_same_message_as_the_function() -> None:
    builder = PersonArrayBuilder(COCO_17)
    header = Header(stamp=Time(sec=5), frame_id="cam")
    for num_people, seed in ((5, 1), (2, 2), (7, 3), (0, 4)):
        poses = _poses(num_people, seed=seed)
        built = builder.build(poses, header, (640, 480))
        assert built == poses_to_person_array(poses, header, (640, 480), COCO_17)
    with pytest.raises(ValueError, match="17 keypoints"):
        PersonArrayBuilder(CROWDPOSE_14).build(_poses(1), header, (64, 48))
