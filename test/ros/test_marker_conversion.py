"""Poses -> MarkerArray: DELETEALL first, one LINE_LIST + SPHERE_LIST per person, pixel scale."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from pose_core.keypoint_specs import COCO_17
from pose_core.structures import Poses
from pose_ros.marker_conversion import pixel_to_marker_point, poses_to_markers

pytestmark = pytest.mark.ros


def test_markers_per_person_in_score_order() -> None:
    keypoints = np.zeros((2, 17, 3), np.float32)
    keypoints[:, :, 0] = np.arange(17) * 10
    keypoints[:, :, 1] = 100
    keypoints[:, :, 2] = 0.9
    keypoints[0, 0, 2] = 0.0  # nose of person 0 not found
    poses = Poses(keypoints, [0.3, 0.8])
    header = Header(frame_id="cam")
    array = poses_to_markers(poses, header, (640, 480), COCO_17, min_score=0.1)
    markers = array.markers
    assert markers[0].action == Marker.DELETEALL
    assert [m.type for m in markers[1:]] == [Marker.LINE_LIST, Marker.SPHERE_LIST] * 2
    assert [m.id for m in markers[1:]] == [0, 1, 2, 3]
    assert all(m.header.frame_id == "cam" for m in markers)
    # rank 0 is the more confident person (index 1): all 17 joints, all 19 edges
    assert len(markers[2].points) == 17 and len(markers[1].points) == 2 * 19
    # rank 1 lost its nose: 16 joints, and the 2 edges touching joint 0 are gone
    assert len(markers[4].points) == 16 and len(markers[3].points) == 2 * 17
    assert markers[1].color != markers[3].color


def test_pixel_scale_and_plane() -> None:
    point = pixel_to_marker_point(320, 240, (640, 480), metres_per_pixel=0.002, plane_depth=1.5)
    assert (point.x, point.y, point.z) == (0.0, 0.0, 1.5)
    corner = pixel_to_marker_point(0, 0, (640, 480), metres_per_pixel=0.002)
    assert corner.x == pytest.approx(-0.64) and corner.y == pytest.approx(-0.48)


def test_nobody_gives_only_deleteall() -> None:
    array = poses_to_markers(Poses.empty(17), Header(), (64, 48), COCO_17)
    assert len(array.markers) == 1 and array.markers[0].action == Marker.DELETEALL


def test_markers_use_3d_positions_when_given() -> None:
    import numpy as np
    from std_msgs.msg import Header

    from pose_core.keypoint_specs import COCO_17
    from pose_core.structures import Poses
    from pose_ros.marker_conversion import poses_to_markers

    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, :, 2] = 0.9
    positions = np.zeros((1, 17, 3))
    positions[0, :, 2] = np.arange(17) + 1.0
    valid = np.ones((1, 17), bool)
    valid[0, 3] = False
    array = poses_to_markers(Poses(keypoints, np.ones(1)), Header(frame_id="depth"), (64, 48),
                             COCO_17, positions=positions, valid=valid)
    joints = array.markers[2]
    assert [p.z for p in joints.points] == [z for j, z in enumerate(range(1, 18)) if j != 3]
