"""One pose node serving several cameras, with real rclpy publishers and subscribers over DDS.

Three camera namespaces publish at once: every camera's people arrive on its own topic with its
own header, ids are per camera (each camera's tracker starts at 0), frames that are ready
together share one batched network call, and trouble on one camera (a malformed frame, a new
resolution, a camera that stops) is counted in that camera's diagnostics while the others go on.
The shipped model runs (it finds people on these frames, which the tests assert).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from pose_core.data.synthetic import SyntheticVideo
from pose_ros.diagnostics import status_values
from pose_ros.image_conversion import bgr_to_compressed, bgr_to_image
from pose_ros.msg import PersonArray
from pose_ros.params import NodeParams
from pose_ros.pose_node import PoseNode, build_estimator

pytestmark = pytest.mark.ros

CAMERAS = ("front", "left", "rear")
RELIABLE = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)


class CountingEstimator:
    """The shipped estimator, recording how many images each call carried."""

    def __init__(self, params: NodeParams) -> None:
        self.inner = build_estimator(params)
        self.keypoint_spec = self.inner.keypoint_spec
        self.batch_sizes: list[int] = []

    @property
    def last_timings(self) -> dict[str, float]:
        return self.inner.last_timings

    def __call__(self, image):
        self.batch_sizes.append(1)
        return self.inner(image)

    def predict_batch(self, images):
        self.batch_sizes.append(len(images))
        return self.inner.predict_batch(images)


class Cameras:
    """The pose node, one publisher and one `people` subscription per camera."""

    def __init__(self, context: rclpy.Context, pose: PoseNode, estimator: CountingEstimator,
                 compressed: tuple[str, ...] = ()):
        self.pose, self.estimator = pose, estimator
        self.node = Node("cameras", context=context)
        self.lock = threading.Lock()
        self.people: dict[str, list[PersonArray]] = {c: [] for c in CAMERAS}
        self.diagnostics: list[DiagnosticArray] = []
        self.compressed = compressed
        self.publishers = {
            c: (self.node.create_publisher(CompressedImage, f"{c}/image/compressed", RELIABLE)
                if c in compressed else self.node.create_publisher(Image, f"{c}/image", RELIABLE))
            for c in CAMERAS
        }
        for camera in CAMERAS:
            self.node.create_subscription(
                PersonArray, f"{camera}/people",
                lambda msg, c=camera: self._store(self.people[c], msg), RELIABLE,
            )
        self.node.create_subscription(
            DiagnosticArray, "/diagnostics", lambda msg: self._store(self.diagnostics, msg),
            RELIABLE,
        )

    def _store(self, where: list, msg) -> None:
        with self.lock:
            where.append(msg)

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.02)
        return condition()

    def connected(self) -> bool:
        return all(p.get_subscription_count() > 0 for p in self.publishers.values())

    def publish(self, camera: str, image_bgr, stamp_s: int) -> Header:
        header = Header(stamp=Time(sec=stamp_s), frame_id=f"{camera}_optical")
        convert = bgr_to_compressed if camera in self.compressed else bgr_to_image
        self.publishers[camera].publish(convert(image_bgr, header))
        return header

    def status(self, camera: str) -> tuple[int, dict[str, str]]:
        """Level and values of the newest diagnostics status of `camera`."""
        name = self.pose.diagnostics_status_name(camera)
        with self.lock:
            for array in reversed(self.diagnostics):
                for status in array.status:
                    if status.name == name:
                        return _level(status.level), status_values(array, name)
        return -1, {}


def _level(level: bytes | int) -> int:
    """DiagnosticStatus levels are `byte` fields (bytes of length 1 in Python)."""
    return level[0] if isinstance(level, bytes) else int(level)


@contextmanager
def running_node(context: rclpy.Context, **params) -> Iterator[Cameras]:
    holder: list[CountingEstimator] = []

    def factory(node_params: NodeParams) -> CountingEstimator:
        holder.append(CountingEstimator(node_params))
        return holder[-1]

    overrides = [Parameter("cameras", value=list(CAMERAS)), Parameter("device", value="cpu"),
                 Parameter("diagnostics_period", value=0.5)]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    pose = PoseNode(context=context, parameter_overrides=overrides, estimator_factory=factory)
    assert pose.active
    transports = params.get("camera_transports", ["raw"])
    compressed = tuple(c for i, c in enumerate(CAMERAS)
                       if (transports[0] if len(transports) == 1 else transports[i])
                       == "compressed")
    cameras = Cameras(context, pose, holder[-1], compressed)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    executor.add_node(pose)
    executor.add_node(cameras.node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        assert cameras.wait_for(cameras.connected, 30.0), "camera topics not connected"
        yield cameras
    finally:
        executor.shutdown()
        pose.destroy_node()
        cameras.node.destroy_node()
        thread.join(10.0)


def test_three_cameras_each_get_their_own_people_headers_and_ids(
    ros_context: rclpy.Context,
) -> None:
    videos = {c: SyntheticVideo(320, 240, num_people=3, fps=10.0, seed=3 + i)
              for i, c in enumerate(CAMERAS)}
    with running_node(ros_context) as cameras:
        sent: dict[str, list[Header]] = {c: [] for c in CAMERAS}
        for index in range(4):
            for camera in CAMERAS:  # all three at once
                frame = videos[camera].frame(index)
                sent[camera].append(cameras.publish(camera, frame.image_bgr, 100 + index))
            assert cameras.wait_for(
                lambda i=index: all(
                    any(m.header.stamp == sent[c][i].stamp for m in cameras.people[c])
                    for c in CAMERAS
                ), 120.0,
            ), f"round {index}: not every camera answered"
        assert max(cameras.estimator.batch_sizes) > 1, "camera frames never shared a call"
        for camera in CAMERAS:
            with cameras.lock:
                answers = list(cameras.people[camera])
            stamps = {(h.stamp.sec, h.frame_id) for h in sent[camera]}
            assert all((m.header.stamp.sec, m.header.frame_id) in stamps for m in answers)
            assert all(m.header.frame_id == f"{camera}_optical" for m in answers)
            ids = [p.id for m in answers for p in m.people if p.id >= 0]
            assert ids, f"{camera}: nobody tracked"
            assert min(ids) == 0, f"{camera}: ids are per camera, the first is 0"
        assert cameras.wait_for(lambda: cameras.status("rear")[0] >= 0, 10.0)


def test_trouble_on_one_camera_leaves_the_others_running(ros_context: rclpy.Context) -> None:
    video = SyntheticVideo(320, 240, num_people=2, fps=10.0, seed=5)
    small = SyntheticVideo(256, 192, num_people=2, fps=10.0, seed=5)
    with running_node(ros_context) as cameras:
        frame = video.frame(0).image_bgr
        for camera in CAMERAS:
            cameras.publish(camera, frame, 1)
        assert cameras.wait_for(lambda: all(cameras.people[c] for c in CAMERAS), 120.0)
        broken = bgr_to_image(frame, Header(stamp=Time(sec=2), frame_id="front_optical"))
        broken.step = 7  # malformed: fewer bytes per row than the width needs
        cameras.publishers["front"].publish(broken)
        # "rear" stops; "left" changes resolution; "front" goes on after its bad frame
        for index in range(1, 5):
            cameras.publish("front", video.frame(index).image_bgr, 10 + index)
            cameras.publish("left", small.frame(index).image_bgr, 10 + index)
            assert cameras.wait_for(
                lambda i=index: all(
                    any(m.header.stamp.sec == 10 + i for m in cameras.people[c])
                    for c in ("front", "left")
                ), 120.0,
            ), f"round {index}: front and left must keep going"
        time.sleep(1.2)  # two diagnostics periods without a rear frame

        def counted() -> bool:
            front, left, rear = (cameras.status(c) for c in CAMERAS)
            return (front[1].get("frames_rejected") == "1"
                    and left[1].get("image_size_changes") == "1"
                    and rear[0] == _level(DiagnosticStatus.WARN)
                    and rear[1].get("frames_processed") == "1")

        assert cameras.wait_for(counted, 10.0), [cameras.status(c) for c in CAMERAS]
        assert cameras.pose.channels[0].stats.errors == 0


def test_cameras_may_send_raw_and_compressed_images_to_one_node(
    ros_context: rclpy.Context,
) -> None:
    video = SyntheticVideo(320, 240, num_people=2, fps=10.0, seed=4)
    with running_node(ros_context, camera_transports=["raw", "compressed", "raw"]) as cameras:
        topics = {c: cameras.pose._channel[c].subscription.topic_name for c in CAMERAS}
        assert topics["left"].endswith("left/image/compressed")
        assert topics["front"].endswith("front/image")
        sent = {c: cameras.publish(c, video.frame(0).image_bgr, 200) for c in CAMERAS}
        assert cameras.wait_for(lambda: all(
            any(m.header.frame_id == sent[c].frame_id for m in cameras.people[c])
            for c in CAMERAS), 120.0), "not every camera answered"
        with cameras.lock:
            left = [m for m in cameras.people["left"] if m.header.stamp == sent["left"].stamp]
        assert left and len(left[0].people) >= 1, "the compressed camera's people"
