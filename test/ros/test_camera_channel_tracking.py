"""CameraChannel.track: the node's per-camera tracking glue (ids, stamps, resets)."""

from __future__ import annotations

import dataclasses

import numpy as np
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from pose_core import COCO_17, Poses
from pose_ros.camera_channel import CameraChannel, Frame
from pose_ros.params import NodeParams

RNG = np.random.default_rng(0)
TEMPLATE = np.column_stack([RNG.uniform(0, 40, 17), np.linspace(0, 100, 17)])
IMAGE = np.zeros((480, 640, 3), np.uint8)
ON = NodeParams()


def people(*xs: float) -> Poses:
    keypoints = np.stack([np.column_stack([TEMPLATE + (x, 100.0), np.full(17, 0.9)])
                          for x in xs]).astype(np.float32)
    return Poses(keypoints, np.full(len(xs), 0.9))


def at(seconds: float, received: float = 0.0) -> Frame:
    stamp = Time(sec=int(seconds), nanosec=int(round((seconds % 1) * 1e9)))
    return Frame(Header(stamp=stamp), IMAGE, 0.0, received)


def test_ids_are_not_given_twice_after_tracking_is_switched_off_and_on() -> None:
    channel = CameraChannel("front")
    first = channel.track(people(0), at(1), ON, COCO_17).ids
    channel.track(people(0), at(2), dataclasses.replace(ON, tracking=False), COCO_17)
    later = channel.track(people(400), at(3), ON, COCO_17).ids
    assert first.tolist() == [0] and later.tolist() == [1]


def test_a_camera_without_stamps_is_tracked_and_smoothed_by_arrival_time() -> None:
    channel = CameraChannel("front")
    smooth = dataclasses.replace(ON, smoothing=True, track_publish_untracked=False)
    xs = []
    for index in range(8):  # a person walking 10 px per frame, every header stamp 0
        out = channel.track(people(10.0 * index), at(0.0, received=100 + index / 10), smooth,
                            COCO_17)
        xs.append(float(out.keypoints[0, 0, 0]))
    assert np.all(np.diff(xs) > 2.0)  # the smoothed keypoints follow the walk
    assert channel.tracker_resets == 0


def test_a_non_finite_joint_neither_resets_the_tracker_nor_changes_ids() -> None:
    channel = CameraChannel("front")
    before = channel.track(people(0, 300), at(1), ON, COCO_17).ids.tolist()
    broken = people(2, 302)
    broken.keypoints[0, 5, :2] = np.nan
    after = channel.track(broken, at(1.1), ON, COCO_17).ids.tolist()
    assert before == after == [0, 1] and channel.tracker_resets == 0
    # a stamp back in time (a replayed bag) does reset it, counted
    channel.track(people(0, 300), at(0.5), ON, COCO_17)
    assert channel.tracker_resets == 1
