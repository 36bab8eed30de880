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
from pose_core.data.synthetic.depth import render_depth
from pose_ros.depth_input import depth_image_to_array
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


def test_an_unknown_depth_encoding_is_refused_at_start_up(ros_context: rclpy.Context) -> None:
    with pytest.raises(ValueError, match="depth_encoding must be one of 16UC1, 32FC1, got '16U"):
        SyntheticCameraNode(context=ros_context, parameter_overrides=[
            Parameter("publish_depth", value=True), Parameter("depth_encoding", value="16UC3")])


@pytest.mark.parametrize(("encoding", "noise_m", "holes"),
                         [("16UC1", 0.0, 0.0), ("32FC1", 0.0, 0.0), ("32FC1", 0.01, 0.2)])
def test_camera_publishes_aligned_depth_in_both_encodings(
    ros_context: rclpy.Context, encoding: str, noise_m: float, holes: float
) -> None:
    """depth/image (16UC1 millimetres or 32FC1 metres) and depth/camera_info with each colour
    frame's header: the colour camera's size and K, the exact rendered depth of that frame, and
    noise and holes only when asked for."""
    camera = SyntheticCameraNode(
        context=ros_context,
        parameter_overrides=[
            Parameter("width", value=160), Parameter("height", value=120),
            Parameter("rate", value=20.0), Parameter("num_people", value=3),
            Parameter("seed", value=6), Parameter("frame_id", value="test_optical"),
            Parameter("publish_depth", value=True), Parameter("depth_encoding", value=encoding),
            Parameter("depth_noise_m", value=noise_m),
            Parameter("depth_hole_fraction", value=holes),
        ],
    )
    listener = Node("depth_listener", context=ros_context)
    received: dict[str, list] = {"image": [], "camera_info": [], "depth/image": [],
                                 "depth/camera_info": []}
    for topic, kind in (("image", Image), ("camera_info", CameraInfo), ("depth/image", Image),
                        ("depth/camera_info", CameraInfo)):
        listener.create_subscription(kind, topic, received[topic].append,
                                     qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(camera)
    executor.add_node(listener)
    deadline = time.monotonic() + 20.0
    while (min(len(v) for v in received.values()) < 3) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    executor.shutdown()
    assert min(len(v) for v in received.values()) >= 3, {k: len(v) for k, v in received.items()}
    colour_info = received["camera_info"][0]
    for info in received["depth/camera_info"]:
        assert (info.width, info.height) == (160, 120)
        assert info.header.frame_id == "test_optical"
        assert list(info.k) == list(colour_info.k) and info.k[0] == 160.0  # aligned: one K
    colour_by_stamp = {_stamp(m): m for m in received["image"]}
    video = SyntheticVideo(160, 120, 3, fps=20.0, seed=6)
    renders = [video.frame(i) for i in range(camera.frames_published)]
    checked = 0
    for message in received["depth/image"]:
        colour = colour_by_stamp.get(_stamp(message))
        if colour is None:  # its colour frame was not received (best effort)
            continue
        assert message.header.frame_id == "test_optical" and message.encoding == encoding
        assert (message.width, message.height) == (160, 120)
        pixels, unit = depth_image_to_array(message)
        image = image_to_bgr(colour)
        index = next(i for i, r in enumerate(renders) if np.array_equal(image, r.image_bgr))
        clean = render_depth(video.layout(index), renders[index], 160.0)
        noisy = render_depth(video.layout(index), renders[index], 160.0, noise_m=noise_m,
                             hole_fraction=holes, seed=index)
        if encoding == "16UC1":  # millimetres, 0 = no reading
            assert unit == "mm" and pixels.dtype == np.uint16
            np.testing.assert_array_equal(pixels, noisy.millimetres())
            metres = np.where(pixels > 0, pixels / 1000.0, np.nan)
        else:
            assert unit == "m" and pixels.dtype == np.float32
            np.testing.assert_array_equal(pixels, noisy.depth)
            metres = pixels.astype(np.float64)
        hole_share = float(np.isnan(metres).mean())
        difference = np.abs(metres - clean.depth)[~np.isnan(metres)]
        if noise_m == 0 and holes == 0:
            assert hole_share == 0.0
            assert difference.max() <= (5e-4 if encoding == "16UC1" else 0.0)  # no noise
        else:
            assert abs(hole_share - holes) < 0.04, hole_share
            assert np.median(difference) > 0.01  # sigma 0.01 x z^2 at 2-12 m
        checked += 1
    assert checked >= 2
    camera.destroy_node()
    listener.destroy_node()


def _stamp(message) -> int:
    return message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
