"""The stale-frame limit: frames older than `max_frame_age` when the worker takes them are
dropped unprocessed and counted in diagnostics; fresh frames are processed."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from pose_ros.camera_channel import Frame, frame_age
from pose_ros.diagnostics import status_values
from pose_ros.image_conversion import bgr_to_image
from pose_ros.msg import PersonArray
from pose_ros.pose_node import PoseNode

pytestmark = pytest.mark.ros
RELIABLE = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)


def test_frame_age_uses_the_stamp_when_it_is_on_the_node_clock() -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    frame = Frame(Header(stamp=Time(sec=100, nanosec=500_000_000)), image, 0.0, received=50.0)
    assert frame_age(frame, now_seconds=101.0, now_monotonic=60.0) == pytest.approx(0.5)
    # a stamp from another clock (in the future, or far in the past): time since it arrived
    assert frame_age(frame, now_seconds=99.0, now_monotonic=60.0) == pytest.approx(10.0)
    assert frame_age(frame, now_seconds=1e9, now_monotonic=51.0) == pytest.approx(1.0)


def test_old_frames_are_dropped_and_counted(ros_context: rclpy.Context, random_checkpoint) -> None:
    pose = PoseNode(context=ros_context, parameter_overrides=[
        Parameter("checkpoint", value=str(random_checkpoint)), Parameter("device", value="cpu"),
        Parameter("max_frame_age", value=0.5), Parameter("diagnostics_period", value=0.3),
        Parameter("backend", value="torch"),
        Parameter("qos_overrides./image.subscription.reliability", value="reliable"),
        Parameter("qos_overrides./image.subscription.depth", value=50),
    ])
    node = Node("stale_client", context=ros_context)
    people: list[PersonArray] = []
    diagnostics: list[DiagnosticArray] = []
    node.create_subscription(PersonArray, "people", people.append, RELIABLE)
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, RELIABLE)
    publisher = node.create_publisher(Image, "image", RELIABLE)
    executor = MultiThreadedExecutor(num_threads=3, context=ros_context)
    executor.add_node(pose)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()

    def wait_for(condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not condition():
            time.sleep(0.02)
        return condition()

    try:
        assert wait_for(lambda: publisher.get_subscription_count() > 0, 30.0)
        image = np.zeros((96, 128, 3), np.uint8)
        now = pose.get_clock().now().nanoseconds * 1e-9
        old = Header(stamp=Time(sec=int(now - 3.0)), frame_id="cam")  # 3 s old: stale
        for _ in range(3):
            publisher.publish(bgr_to_image(image, old))
            assert wait_for(lambda: pose.buffer.counts().taken >= 1 and not pose.buffer.pending,
                            30.0)
            time.sleep(0.1)
        fresh_stamp = pose.get_clock().now().to_msg()
        publisher.publish(bgr_to_image(image, Header(stamp=fresh_stamp, frame_id="cam")))
        assert wait_for(lambda: any(m.header.stamp == fresh_stamp for m in people), 60.0)
        assert not [m for m in people if m.header.stamp == old.stamp]  # never processed
        assert pose.channels[0].stale_dropped >= 1
        stale = str(pose.channels[0].stale_dropped)

        def counted() -> bool:
            return bool(diagnostics) and status_values(
                diagnostics[-1], pose.diagnostics_status_name()).get("frames_stale") == stale

        assert wait_for(counted, 10.0)
    finally:
        executor.shutdown()
        pose.destroy_node()
        node.destroy_node()
        thread.join(10.0)
