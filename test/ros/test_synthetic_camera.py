"""The synthetic camera node: images of the synthetic video with camera_info, real pub/sub."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from pose_core.data.synthetic import SyntheticVideo
from pose_ros.image_conversion import compressed_to_bgr, image_to_bgr
from pose_ros.synthetic_camera import SyntheticCameraNode

pytestmark = pytest.mark.ros


def test_camera_publishes_video_frames_with_camera_info(ros_context: rclpy.Context) -> None:
    camera = SyntheticCameraNode(
        context=ros_context,
        parameter_overrides=[
            Parameter("width", value=160), Parameter("height", value=120),
            Parameter("rate", value=20.0), Parameter("num_people", value=2),
            Parameter("seed", value=4), Parameter("frame_id", value="test_optical"),
            Parameter("publish_compressed", value=True),
        ],
    )
    listener = Node("camera_listener", context=ros_context)
    images: list[Image] = []
    infos: list[CameraInfo] = []
    compressed: list[CompressedImage] = []
    listener.create_subscription(Image, "image", images.append, qos_profile_sensor_data)
    listener.create_subscription(CameraInfo, "camera_info", infos.append, qos_profile_sensor_data)
    listener.create_subscription(
        CompressedImage, "image/compressed", compressed.append, qos_profile_sensor_data
    )
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(camera)
    executor.add_node(listener)
    deadline = time.monotonic() + 20.0
    while (len(images) < 5 or not infos or not compressed) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    executor.shutdown()
    assert len(images) >= 5 and infos and compressed
    video = SyntheticVideo(160, 120, 2, fps=20.0, seed=4)
    first = images[0]
    assert (first.width, first.height, first.encoding) == (160, 120, "bgr8")
    assert first.header.frame_id == "test_optical" == infos[0].header.frame_id
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in images]
    assert stamps == sorted(stamps) and abs(stamps[-1] - time.time()) < 10.0
    frames = [image_to_bgr(m) for m in images[:3]]
    expected = [video.frame(i).image_bgr for i in range(camera.frames_published)]
    assert all(any(np.array_equal(f, e) for e in expected) for f in frames)
    info = infos[0]
    assert (info.width, info.height) == (160, 120)
    assert info.k[0] == info.k[4] == 160.0 and info.k[2] == pytest.approx(79.5)
    assert compressed_to_bgr(compressed[0]).shape == (120, 160, 3)
    camera.destroy_node()
    listener.destroy_node()


def test_looping_camera_replays_cached_frames_with_their_exact_ground_truth(
    ros_context: rclpy.Context,
) -> None:
    """Frames replayed from the loop cache are the renders of their index, and the ground truth
    looked up by each published header is that index's (what the demo scores against)."""
    loop = 3
    camera = SyntheticCameraNode(
        context=ros_context,
        parameter_overrides=[
            Parameter("width", value=160), Parameter("height", value=120),
            Parameter("rate", value=30.0), Parameter("num_people", value=3),
            Parameter("seed", value=5), Parameter("loop_frames", value=loop),
        ],
    )
    listener = Node("camera_listener", context=ros_context)
    images: list[Image] = []
    listener.create_subscription(Image, "image", images.append, qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(camera)
    executor.add_node(listener)
    deadline = time.monotonic() + 20.0
    while len(images) < 3 * loop and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    executor.shutdown()
    assert len(images) >= 3 * loop
    # beyond the first loop every frame came from the cache (one render per index)
    assert camera.frames_published >= 3 * loop and len(camera._cache) == loop
    fresh = SyntheticVideo(160, 120, 3, fps=30.0, seed=5)
    renders = [fresh.frame(i) for i in range(loop)]
    assert not np.array_equal(renders[0].image_bgr, renders[1].image_bgr)
    replayed = 0
    for number, message in enumerate(images):
        image = image_to_bgr(message)
        indices = [i for i, r in enumerate(renders) if np.array_equal(image, r.image_bgr)]
        assert len(indices) == 1, f"image {number} is not exactly one frame of the loop"
        truth = camera.ground_truth(message.header)
        assert truth is not None
        np.testing.assert_array_equal(truth[0], renders[indices[0]].keypoints)
        np.testing.assert_array_equal(truth[1], renders[indices[0]].areas)
        replayed += number >= loop
    assert replayed >= loop
    camera.destroy_node()
    listener.destroy_node()
