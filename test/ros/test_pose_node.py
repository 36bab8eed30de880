"""The pose node end to end, with real rclpy publishers and subscribers over DDS.

Each test runs the node and a test node on an isolated Context, spun by a MultiThreadedExecutor
in a background thread; the test thread publishes and waits. Tests of structure, counting and
robustness run the tiny model with fixed random weights (`random_checkpoint`, the `harness`
fixture), which finds nobody; tests about the people themselves (their pixel frame, the same
people from another encoding, accuracy) run the shipped model (`shipped_harness`) on synthetic
frames where it finds people, and assert that it did before comparing anything.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rclpy
import torch
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    QoSHistoryPolicy,
    QoSProfile,
    QoSReliabilityPolicy,
    qos_profile_sensor_data,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from pose_core.data.synthetic import SyntheticVideo
from pose_core.evaluation.frame_scoring import FrameScorer
from pose_core.inference import InferenceBackend
from pose_core.keypoint_specs import COCO_17
from pose_core.tracking.similarity import box_iou_matrix
from pose_core.structures import Poses
from pose_ros.diagnostics import status_values
from pose_ros.image_conversion import (
    ImageRejected,
    array_to_image,
    bgr_to_compressed,
    bgr_to_image,
    compressed_to_bgr,
    image_to_bgr,
)
from pose_ros.msg import PersonArray
from pose_ros.params import NodeParams
from pose_ros.pose_conversion import person_array_to_poses, poses_to_person_array
from pose_ros.pose_node import Estimator, PoseNode, build_estimator
from pose_ros.synthetic_camera import SyntheticCameraNode

pytestmark = pytest.mark.ros

REPO_ROOT = Path(__file__).resolve().parents[2]
RELIABLE = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
# Deep reliable input for tests that must see every message (fuzzing): set through the standard
# QoS override parameters of the node's image subscription.
DEEP_RELIABLE = QoSProfile(
    depth=200, reliability=QoSReliabilityPolicy.RELIABLE, history=QoSHistoryPolicy.KEEP_LAST
)

# The demo's goals for the shipped model (issue 18): on 640x480 frames of four walkers that
# overlap, people recall >= 0.95 and precision >= 0.90 at OKS >= 0.5, wrong-person edges <= 1 %
# of the drawn ones (a strict xfail until a model reaches them). On these hardest frames the
# shipped model (version 4) measured, with the frames stamped at their video time: 27 people to
# find, 26 published, 17 found (recall 0.630, precision 0.654), 91 of 513 drawn edges wrong
# (17.7 %); the same with the joint gate off (the frames are 0.4 s or more apart). Version 3:
# 0.56, 0.63, 18.5 %; version 2: 0.48, 0.50, 17 % (docs/training_synthetic.md). The floors sit
# about two people below: 15 of 27 found is recall 0.556, 15 of 26 precision 0.577 (14 fails
# both); 0.22 allows 22 more wrong edges, about one more person's skeleton (19 edges) mixed.
ACCURACY_PEOPLE = 4
ACCURACY_FRAMES = 8
ACCURACY_FPS = 10.0
ACCURACY_GOAL_RECALL = 0.95
ACCURACY_GOAL_PRECISION = 0.90
ACCURACY_GOAL_WRONG_EDGES = 0.01
ACCURACY_MIN_RECALL = 0.55
ACCURACY_MIN_PRECISION = 0.55
ACCURACY_MAX_WRONG_EDGES = 0.22
# assert_people_match (round trip): matched people's median joint error, 320x240 frames
ACCURACY_MAX_MEDIAN_ERROR_PX = 8.0
# The round-trip frames (seed 3, three walkers, frames 0-15) include crowded ones where the model
# finds two of the three: at least half the people must lie where they were drawn.
ROUND_TRIP_MIN_RECALL = 0.5


def _qos_overrides(topic: str, profile: QoSProfile) -> list[Parameter]:
    prefix = f"qos_overrides.{topic}.subscription."
    return [
        Parameter(prefix + "reliability", value="reliable"),
        Parameter(prefix + "depth", value=profile.depth),
    ]


@dataclass
class Harness:
    """A running pose node, a test node and the messages it collected."""

    context: rclpy.Context
    pose: PoseNode
    test_node: Node
    executor: MultiThreadedExecutor
    people: list[PersonArray] = field(default_factory=list)
    diagnostics: list[DiagnosticArray] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return condition()

    def people_with_stamp(self, stamp: Time) -> list[PersonArray]:
        with self.lock:
            return [m for m in self.people if m.header.stamp == stamp]


@contextmanager
def _start_harness(
    context: rclpy.Context,
    overrides: list[Parameter],
    namespace: str = "",
    estimator_factory: Callable[[NodeParams], Estimator] = build_estimator,
) -> Iterator[Harness]:
    pose = PoseNode(
        context=context, parameter_overrides=overrides, namespace=namespace,
        estimator_factory=estimator_factory,
    )
    assert pose.active, "the pose node did not configure/activate"
    test_node = Node("pose_test_client", context=context, namespace=namespace)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    harness = Harness(context, pose, test_node, executor)

    def on_people(msg: PersonArray) -> None:
        with harness.lock:
            harness.people.append(msg)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        with harness.lock:
            harness.diagnostics.append(msg)

    test_node.create_subscription(PersonArray, "people", on_people, RELIABLE)
    test_node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, RELIABLE)
    executor.add_node(pose)
    executor.add_node(test_node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        yield harness
    finally:
        executor.remove_node(pose)
        executor.remove_node(test_node)
        executor.shutdown(timeout_sec=5.0)
        spinner.join(5.0)
        pose.destroy_node()
        test_node.destroy_node()


def _base_overrides(checkpoint: Path | str, **extra: object) -> list[Parameter]:
    """CPU, fast diagnostics; `checkpoint=""` runs the shipped model."""
    values: dict[str, object] = {
        "checkpoint": str(checkpoint),
        "device": "cpu",
        "diagnostics_period": 0.5,
        **extra,
    }
    return [Parameter(name, value=value) for name, value in values.items()]


@pytest.fixture
def harness(ros_context: rclpy.Context, random_checkpoint: Path) -> Iterator[Harness]:
    """The node with random weights: it finds nobody (structure and counting only)."""
    with _start_harness(ros_context, _base_overrides(random_checkpoint)) as running:
        yield running


@pytest.fixture
def shipped_harness(ros_context: rclpy.Context) -> Iterator[Harness]:
    """The node with the shipped model (`checkpoint: ''`): it finds the synthetic people."""
    with _start_harness(ros_context, _base_overrides("")) as running:
        yield running


def _stamp(index: int) -> Time:
    """Distinct, recent-looking stamps (nanoseconds that no clock rounding would produce)."""
    now = time.time()
    return Time(sec=int(now), nanosec=(index * 7919 + 123_457) % 1_000_000_000)


def _video_stamp(start_ns: int, index: int, fps: float) -> Time:
    """The stamp of frame `index` of a camera at `fps` whose frame 0 was stamped `start_ns`."""
    total = start_ns + index * round(1e9 / fps)
    return Time(sec=total // 1_000_000_000, nanosec=total % 1_000_000_000)


def _send_and_wait(harness: Harness, publisher, msg, timeout: float = 30.0) -> PersonArray:
    """Publish until the answer with this stamp arrives (best-effort input may lose one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        publisher.publish(msg)
        if harness.wait_for(lambda: bool(harness.people_with_stamp(msg.header.stamp)), 3.0):
            return harness.people_with_stamp(msg.header.stamp)[0]
    raise AssertionError(f"no PersonArray for stamp {msg.header.stamp} within {timeout} s")


def assert_people_match(
    msg: PersonArray,
    ground_truth: np.ndarray,
    max_median_error_px: float = ACCURACY_MAX_MEDIAN_ERROR_PX,
    min_recall: float = 0.8,
) -> None:
    """Accuracy of one PersonArray against synthetic ground truth (P, J, 3: x, y, visibility).

    Each ground-truth person with >= 8 visible joints is matched to the detected person with the
    smallest median distance over its visible joints; the check needs `min_recall` of them
    matched within `max_median_error_px`. Ground truth and message both put integer coordinates
    at pixel centres.
    """
    detected = person_array_to_poses(msg).keypoints
    people = [gt for gt in ground_truth if (gt[:, 2] == 2).sum() >= 8]
    assert people, "the test frame must show people"
    matched = 0
    for gt in people:
        visible = gt[:, 2] == 2
        if len(detected) == 0:
            continue
        distances = np.linalg.norm(
            detected[:, visible, :2] - gt[None, visible, :2], axis=2
        )
        if float(np.median(distances, axis=1).min()) <= max_median_error_px:
            matched += 1
    assert matched / len(people) >= min_recall, f"matched {matched} of {len(people)} people"


def test_round_trip_keeps_headers_and_image_pixel_frame(shipped_harness: Harness) -> None:
    harness = shipped_harness
    publisher = harness.test_node.create_publisher(Image, "image", RELIABLE)
    video = SyntheticVideo(320, 240, num_people=3, fps=10.0, seed=3)
    # stamped at their video time: the tracker's joint gate sees the 0.5 s between the frames
    start_ns = time.time_ns() // 1_000_000_000 * 1_000_000_000 + 123_457
    for index in range(4):
        scene = video.frame(index * 5)
        header = Header(stamp=_video_stamp(start_ns, index * 5, 10.0),
                        frame_id=f"camera_{index}_optical")
        answer = _send_and_wait(harness, publisher, bgr_to_image(scene.image_bgr, header))
        assert len(answer.people) >= 1, f"the shipped model found nobody in frame {index * 5}"
        assert answer.header.stamp == header.stamp  # sec and nanosec unchanged
        assert answer.header.frame_id == header.frame_id
        assert (answer.image_width, answer.image_height) == (320, 240)
        assert list(answer.keypoint_names) == list(COCO_17.names)
        assert [(e.start, e.end) for e in answer.skeleton] == list(COCO_17.skeleton)
        scores = [p.score for p in answer.people]
        assert scores == sorted(scores, reverse=True)
        poses = person_array_to_poses(answer)
        found = poses.keypoints[poses.keypoints[..., 2] > 0]
        assert len(found) >= 8
        # image pixels of the 320x240 input, not network-input or heatmap pixels: inside the
        # image and on the people drawn there (341x256 network-input or 171x128 heatmap pixels
        # would put most joints 10-150 px away from them)
        assert np.all((found[:, 0] >= -1) & (found[:, 0] <= 321))
        assert np.all((found[:, 1] >= -1) & (found[:, 1] <= 241))
        assert_people_match(answer, scene.keypoints, min_recall=ROUND_TRIP_MIN_RECALL)


def test_rgb_and_padded_input_give_the_same_people_as_bgr(shipped_harness: Harness) -> None:
    harness = shipped_harness
    publisher = harness.test_node.create_publisher(Image, "image", RELIABLE)
    scene = SyntheticVideo(320, 240, num_people=3, fps=10.0, seed=5).frame(0)
    bgr = bgr_to_image(scene.image_bgr, Header(stamp=_stamp(1), frame_id="cam"))
    rgb = array_to_image(
        np.ascontiguousarray(scene.image_bgr[:, :, ::-1]),
        "rgb8",
        Header(stamp=_stamp(2), frame_id="cam"),
        step=320 * 3 + 17,
    )
    first = person_array_to_poses(_send_and_wait(harness, publisher, bgr))
    second = person_array_to_poses(_send_and_wait(harness, publisher, rgb))
    assert len(first) >= 2, "the shipped model must find people in this frame"
    assert second.keypoints.shape == first.keypoints.shape
    np.testing.assert_allclose(first.keypoints, second.keypoints, atol=1e-3)
    np.testing.assert_allclose(first.scores, second.scores, atol=1e-5)


def test_markers_and_annotated_image_only_when_subscribed(harness: Harness) -> None:
    publisher = harness.test_node.create_publisher(Image, "image", RELIABLE)
    scene = SyntheticVideo(320, 240, num_people=2, fps=10.0, seed=1).frame(0)
    # nobody listens: nothing is drawn (the node checks the subscription counts)
    _send_and_wait(harness, publisher, bgr_to_image(scene.image_bgr, Header(stamp=_stamp(1))))
    markers: list[MarkerArray] = []
    annotated: list[Image] = []
    harness.test_node.create_subscription(MarkerArray, "markers", markers.append, RELIABLE)
    harness.test_node.create_subscription(Image, "annotated_image", annotated.append, RELIABLE)
    assert harness.wait_for(
        lambda: harness.pose.count_subscribers("markers") > 0
        and harness.pose.count_subscribers("annotated_image") > 0,
        10.0,
    )
    header = Header(stamp=_stamp(2), frame_id="cam")
    _send_and_wait(harness, publisher, bgr_to_image(scene.image_bgr, header))
    assert harness.wait_for(lambda: bool(markers) and bool(annotated), 10.0)
    assert annotated[-1].header == header and markers[-1].markers[0].header == header
    assert (annotated[-1].width, annotated[-1].height, annotated[-1].encoding) == (
        320, 240, "bgr8")
    assert image_to_bgr(annotated[-1]).shape == (240, 320, 3)


def test_compressed_input(ros_context: rclpy.Context, random_checkpoint: Path) -> None:
    overrides = _base_overrides(random_checkpoint, compressed=True)
    with _start_harness(ros_context, overrides, namespace="cam") as harness:
        assert harness.pose.count_publishers("/cam/image/compressed") == 0
        publisher = harness.test_node.create_publisher(
            CompressedImage, "image/compressed", RELIABLE
        )
        scene = SyntheticVideo(320, 240, num_people=2, fps=10.0, seed=2).frame(0)
        header = Header(stamp=_stamp(9), frame_id="compressed_cam")
        answer = _send_and_wait(harness, publisher, bgr_to_compressed(scene.image_bgr, header))
        assert answer.header == header and answer.image_width == 320


def test_lifecycle_without_auto_activation(
    ros_context: rclpy.Context, random_checkpoint: Path
) -> None:
    node = PoseNode(
        context=ros_context,
        parameter_overrides=_base_overrides(random_checkpoint, auto_activate=False),
    )
    try:
        assert not node.active and node.count_publishers("people") == 0
        node.trigger_configure()
        assert node.count_publishers("people") == 1 and not node.active
        assert node.count_subscribers("image") == 0
        node.trigger_activate()
        assert node.active and node.count_subscribers("image") == 1
        node.trigger_deactivate()
        assert not node.active and node.count_subscribers("image") == 0
        node.trigger_activate()  # activate again after deactivate (QoS parameters re-used)
        assert node.active
        node.trigger_deactivate()
        node.trigger_cleanup()
        assert node.count_publishers("people") == 0
    finally:
        node.destroy_node()


def test_bad_checkpoint_fails_configure_cleanly(
    ros_context: rclpy.Context, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    node = PoseNode(context=ros_context, parameter_overrides=_base_overrides(broken))
    try:
        assert not node.active and node.count_subscribers("image") == 0
    finally:
        node.destroy_node()


def test_runtime_parameter_changes_on_the_real_node(harness: Harness) -> None:
    node = harness.pose
    ok = node.set_parameters([Parameter("detection_threshold", value=0.5),
                              Parameter("refine", value=False)])
    assert all(result.successful for result in ok)
    assert node.params.detection_threshold == 0.5 and node.params.refine is False
    bad = node.set_parameters([Parameter("scales", value=[9.0])])
    assert not bad[0].successful and "scales must lie" in bad[0].reason
    ro = node.set_parameters([Parameter("model", value="higherhrnet_w32_512_coco")])
    assert not ro[0].successful
    assert node.params.scales == (1.0,) and node.params.model == "higherhrnet_lite_w16_256_coco"
    # the new grouping options are applied to the next frame (a new estimator is built)
    publisher = harness.test_node.create_publisher(Image, "image", RELIABLE)
    scene = SyntheticVideo(320, 240, num_people=2, fps=10.0, seed=1).frame(0)
    _send_and_wait(harness, publisher, bgr_to_image(scene.image_bgr, Header(stamp=_stamp(4))))
    assert harness.pose.stats.errors == 0
    grouping = node._estimator.grouping
    assert grouping.detection_threshold == 0.5 and grouping.refine is False


def _malformed_raw(rng: random.Random, valid: np.ndarray) -> Image:
    """One malformed sensor_msgs/Image (many kinds)."""
    height, width = valid.shape[:2]
    kind = rng.randrange(10)
    msg = Image(header=Header(frame_id="fuzz"), height=height, width=width, encoding="bgr8")
    msg.step = width * 3
    data = valid.tobytes()
    if kind == 0:  # truncated data
        msg.data = data[: rng.randrange(0, len(data) - 1)]
    elif kind == 1:  # wrong declared size
        msg.width, msg.height = width + rng.randrange(1, 50), height + rng.randrange(0, 50)
        msg.step = msg.width * 3
        msg.data = data
    elif kind == 2:  # unknown encoding
        msg.encoding = rng.choice(["bayer_rggb8", "nv12", "jpeg", "", "BGR8", "x" * 300])
        msg.data = data
    elif kind == 3:  # zero size
        msg.width, msg.height, msg.step = rng.choice([(0, 0, 0), (0, 5, 0), (5, 0, 15)])
        msg.data = b""
    elif kind == 4:  # 8K frame announced (data not even sent: rejected before allocation)
        msg.width, msg.height, msg.step = 7680, 4320, 7680 * 3
        msg.data = data[:1000]
    elif kind == 5:  # step too small
        msg.step = width * 3 - rng.randrange(1, 10)
        msg.data = data
    elif kind == 6:  # depth image
        msg.encoding, msg.step = "16UC1", width * 2
        msg.data = data[: width * height * 2]
    elif kind == 7:  # too much data
        msg.data = data + bytes(rng.randrange(1, 100))
    elif kind == 8:  # mono16 with an odd step
        msg.encoding, msg.step = "mono16", width * 2 + 1
        msg.data = bytes(msg.step * height)
    else:  # odd width YUV
        msg.encoding, msg.width, msg.step = "yuv422", 3, 6
        msg.height = 2
        msg.data = bytes(12)
    return msg


def _malformed_compressed(rng: random.Random, jpeg: bytes, png: bytes) -> CompressedImage:
    kind = rng.randrange(6)
    msg = CompressedImage(header=Header(frame_id="fuzz"), format="jpeg")
    if kind == 0:  # truncated JPEG
        msg.data = jpeg[: rng.randrange(10, len(jpeg) // 2)]
    elif kind == 1:  # corrupt bytes in the middle of the JPEG
        corrupt = bytearray(jpeg)
        start = rng.randrange(2, 200)
        corrupt[start : start + 50] = bytes(rng.randrange(256) for _ in range(50))
        msg.data = bytes(corrupt)
    elif kind == 2:  # random bytes
        msg.data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    elif kind == 3:  # empty
        msg.data = b""
    elif kind == 4:  # 8K PNG header (a decompression bomb would follow)
        bomb = bytearray(png)
        bomb[16:24] = (7680).to_bytes(4, "big") + (4320).to_bytes(4, "big")
        msg.format, msg.data = "png", bytes(bomb)
    else:  # truncated PNG
        msg.format, msg.data = "png", png[: rng.randrange(30, len(png) // 2)]
    return msg


def _expected_reason(msg: Image | CompressedImage) -> str:
    try:
        if isinstance(msg, CompressedImage):
            compressed_to_bgr(msg)
        else:
            image_to_bgr(msg)
    except ImageRejected as rejection:
        return rejection.reason
    return ""


def _fuzz(harness: Harness, message_type: type, topic: str, messages: list, valid_every: int,
          make_valid: Callable[[Header], object]) -> dict[str, object]:
    """Publish malformed messages with a valid one every `valid_every`, in small bursts."""
    publisher = harness.test_node.create_publisher(message_type, topic, DEEP_RELIABLE)
    assert harness.wait_for(lambda: publisher.get_subscription_count() > 0, 10.0)
    expected = Counter(_expected_reason(m) for m in messages)
    assert "" not in expected, "a fuzz message converted fine"
    valid_stamps = []
    sent = 0
    start_received = harness.pose.stats.received
    for index, msg in enumerate(messages):
        publisher.publish(msg)
        sent += 1
        if index % valid_every == 0:
            header = Header(stamp=_stamp(10_000 + index), frame_id="fuzz_valid")
            publisher.publish(make_valid(header))
            valid_stamps.append(header.stamp)
            sent += 1
        if sent % 40 < 2:  # let the node keep up: nothing may be lost before the callback
            # generous: on a starved CI machine the callbacks fall behind, but must catch up
            assert harness.wait_for(
                lambda: harness.pose.stats.received - start_received >= sent, 60.0
            ), f"node received {harness.pose.stats.received - start_received} of {sent}"
    assert harness.wait_for(lambda: harness.pose.stats.received - start_received == sent, 60.0)
    return {"expected": expected, "valid_stamps": valid_stamps}


def test_fuzz_2000_malformed_messages_interleaved_with_valid_ones(
    ros_context: rclpy.Context, random_checkpoint: Path
) -> None:
    rng = random.Random(7)
    scene = SyntheticVideo(160, 120, num_people=2, fps=10.0, seed=4).frame(0)
    jpeg = bytes(bgr_to_compressed(scene.image_bgr).data)
    png = bytes(bgr_to_compressed(scene.image_bgr, fmt="png").data)
    raw_messages = [_malformed_raw(rng, scene.image_bgr) for _ in range(1500)]
    # and real 8K frames, data included (33 MB each): rejected from the header, never converted
    for position in (10, 700, 1400):
        raw_messages.insert(position, array_to_image(np.zeros((4320, 7680), np.uint8), "mono8"))
    # libjpeg repairs some corrupt streams (a garbled but valid image): only rejected ones count
    compressed_messages = []
    while len(compressed_messages) < 600:
        candidate = _malformed_compressed(rng, jpeg, png)
        if _expected_reason(candidate):
            compressed_messages.append(candidate)

    cases = [
        ("", False, Image, "image", raw_messages,
         lambda h: bgr_to_image(scene.image_bgr, h)),
        ("compressed", True, CompressedImage, "image/compressed", compressed_messages,
         lambda h: bgr_to_compressed(scene.image_bgr, h)),
    ]
    total_malformed = 0
    for namespace, compressed, message_type, topic, messages, make_valid in cases:
        full_topic = f"/{namespace}/{topic}" if namespace else f"/{topic}"
        overrides = _base_overrides(random_checkpoint, compressed=compressed)
        overrides += _qos_overrides(full_topic, DEEP_RELIABLE)
        with _start_harness(ros_context, overrides, namespace=namespace) as harness:
            result = _fuzz(harness, message_type, topic, messages, 20, make_valid)
            node = harness.pose
            # the worker finishes the last frame, then every valid frame is answered or dropped
            assert harness.wait_for(lambda: not node.buffer.pending, 30.0)
            valid_stamps = result["valid_stamps"]
            assert harness.wait_for(
                lambda: len({(m.header.stamp.sec, m.header.stamp.nanosec)
                             for m in harness.people}) + node.buffer.counts().dropped
                >= len(valid_stamps),
                30.0,
            )
            answered = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in harness.people}
            sent_valid = {(s.sec, s.nanosec) for s in valid_stamps}
            assert answered <= sent_valid
            counts = node.buffer.counts()
            assert len(answered) + counts.dropped == len(sent_valid)
            assert len(answered) >= 5, "the node stopped answering during the fuzzing"
            assert node.stats.errors == 0
            assert node.stats.rejected == len(messages)
            assert node.stats.reject_counts() == dict(result["expected"])
            # the same numbers reach /diagnostics
            harness.diagnostics.clear()
            assert harness.wait_for(lambda: bool(harness.diagnostics), 5.0)
            values = status_values(harness.diagnostics[-1], node.diagnostics_status_name())
            assert int(values["frames_rejected"]) == len(messages)
            assert int(values["frames_dropped"]) == counts.dropped
            assert values["last_reject_reason"] == _expected_reason(messages[-1])
            top_reason, top_count = result["expected"].most_common(1)[0]
            assert values[f"rejected[{top_reason}]"] == str(top_count)
            # still up: a fresh valid frame is answered
            header = Header(stamp=_stamp(99), frame_id="after_fuzz")
            publisher = harness.test_node.create_publisher(message_type, topic, RELIABLE)
            answer = _send_and_wait(harness, publisher, make_valid(header))
            assert answer.header == header and node.active
            total_malformed += len(messages)
    assert total_malformed >= 2000


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


class DelayedBackend:
    """The real backend behind a fixed wait per forward: a slow accelerator.

    The wait sleeps (the GIL is released), so the camera, the executor and the test keep their
    CPU: the node is slow by construction on a fast machine, and only slower on a loaded one.
    The estimator times it as `network`, so the latency bound below includes it.
    """

    def __init__(self, inner: InferenceBackend, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.device = inner.device

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        time.sleep(self.delay_s)
        return self.inner(batch)


def _delayed_estimator_factory(delay_s: float) -> Callable[[NodeParams], Estimator]:
    """The node's own estimator (`build_estimator`), its backend behind `DelayedBackend`."""

    def factory(params: NodeParams) -> Estimator:
        estimator = build_estimator(params)
        estimator.backend = DelayedBackend(estimator.backend, delay_s)
        return estimator

    return factory


# The overload is made, not hoped for: a fixed network delay caps the node at 1 / 0.3 s (about
# 3 Hz) however fast the machine (a 2-core EPYC kept up with 395 of 518 frames at 20 Hz without
# it), and the camera publishes at OVERLOAD_FACTOR x the node's rate measured before it starts,
# so a loaded machine (slower node, sagging camera) still sees the camera far ahead.
OVERLOAD_NETWORK_DELAY_S = 0.3
OVERLOAD_FACTOR = 8.0
OVERLOAD_CAMERA_RATE_HZ = (20.0, 40.0)  # clamp of the camera rate


@pytest.mark.slow
def test_overload_latency_bounded_memory_flat_drops_counted(
    ros_context: rclpy.Context, random_checkpoint: Path
) -> None:
    """The camera publishes several times faster than the node processes, for 30 s."""
    # every frame is processed however long it waited: this test is about the newest-frame
    # buffer, not the stale-frame limit (test_stale_frames.py)
    # max_people 5: random weights find people everywhere, and grouping 30 of them on one
    # thread (the default grouping_threads) would make the node's own time, not the fixed
    # delay, set its rate
    overrides = [*_base_overrides(random_checkpoint, max_people=5),
                 Parameter("max_frame_age", value=0.0)]
    factory = _delayed_estimator_factory(OVERLOAD_NETWORK_DELAY_S)
    with _start_harness(ros_context, overrides, estimator_factory=factory) as harness:
        # the node's per-frame time, measured on the camera's frames before the camera starts
        publisher = harness.test_node.create_publisher(Image, "image", RELIABLE)
        video = SyntheticVideo(320, 240, num_people=3, fps=10.0, seed=0)
        for index in range(5):
            header = Header(stamp=_stamp(900 + index), frame_id="warm_up")
            _send_and_wait(harness, publisher, bgr_to_image(video.frame(index).image_bgr, header))
        stats = harness.pose.stats
        frame_seconds = sum(
            stats.latency_ms(stage)["p50"]
            for stage in ("convert", "preprocess", "network", "grouping", "publish")
        ) / 1e3
        assert frame_seconds >= OVERLOAD_NETWORK_DELAY_S, frame_seconds
        low, high = OVERLOAD_CAMERA_RATE_HZ
        camera_rate = min(high, max(low, OVERLOAD_FACTOR / frame_seconds))
        processed_before, counts_before = stats.processed, harness.pose.buffer.counts()
        camera = SyntheticCameraNode(
            context=ros_context,
            parameter_overrides=[
                Parameter("width", value=320), Parameter("height", value=240),
                Parameter("rate", value=camera_rate), Parameter("num_people", value=3),
                Parameter("loop_frames", value=60), Parameter("frame_id", value="overload"),
            ],
        )
        infos: list[CameraInfo] = []
        harness.test_node.create_subscription(
            CameraInfo, "camera_info", infos.append, qos_profile_sensor_data
        )
        harness.executor.add_node(camera)
        latencies: list[tuple[float, float]] = []  # (time since start, stamp -> receive)
        rss: list[tuple[float, float]] = []
        started = time.monotonic()
        with harness.lock:
            seen = len(harness.people)
        try:
            while time.monotonic() - started < 32.0:
                time.sleep(0.5)
                now_ros = harness.pose.get_clock().now().nanoseconds * 1e-9
                with harness.lock:
                    new = harness.people[seen:]
                    seen = len(harness.people)
                elapsed = time.monotonic() - started
                for msg in new:
                    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                    latencies.append((elapsed, now_ros - stamp))
                rss.append((elapsed, _rss_mb()))
        finally:
            harness.executor.remove_node(camera)
            camera.destroy_node()
        counts = harness.pose.buffer.counts()
        processed = stats.processed - processed_before
        dropped = counts.dropped - counts_before.dropped
        # the camera's own rate sags on a loaded machine (357 of 640 frames were seen under a
        # concurrent training run); what matters is that it outpaced the node for the 30 s
        assert camera.frames_published >= 3 * processed, (
            camera.frames_published, processed, camera_rate, frame_seconds)
        assert processed > 20 and dropped > processed, (processed, counts)
        assert counts.received == stats.received - stats.rejected
        assert counts.taken + counts.dropped + int(harness.pose.buffer.pending) == counts.received
        assert infos and infos[-1].header.frame_id == "overload"
        early = [lat for t, lat in latencies if 5.0 <= t < 15.0]
        late = [lat for t, lat in latencies if t >= 22.0]
        assert early and late
        # Newest frame only: a frame waits at most for the frame in progress, then its own
        # processing, so latency stays within about two processing times and does not grow. A
        # FIFO backlog would instead climb towards ~25 s by the end (camera >= 8x the node's rate).
        # The bound is relative: on this 2-core machine single frames stall up to 3 s at times
        # (an in-process camera, executor and test compete with the model), which is no backlog.
        slowest = sum(
            stats.latency_ms(stage)["max"]
            for stage in ("convert", "preprocess", "network", "grouping", "publish")
        ) / 1e3
        assert max(late) <= 2.0 * slowest + 0.5, (max(late), slowest)
        assert max(late) < 10.0, max(late)
        assert np.median(late) < 2.0 * np.median(early) + 0.2, (np.median(early), np.median(late))
        early_rss = np.median([m for t, m in rss if 5.0 <= t < 12.0])
        late_rss = np.median([m for t, m in rss if t >= 25.0])
        assert late_rss - early_rss < 40.0, (early_rss, late_rss)
        print(
            f"overload: node {frame_seconds * 1e3:.0f} ms/frame before, camera {camera_rate:.1f} "
            f"Hz: {camera.frames_published} frames, processed {processed}, "
            f"dropped {dropped}, latency median early {np.median(early):.3f} s late "
            f"{np.median(late):.3f} s max {max(late):.3f} s, RSS {early_rss:.0f} -> "
            f"{late_rss:.0f} MB; RSS samples {[round(m) for _, m in rss]}"
        )


def test_python_m_pose_node_runs_as_a_separate_process(
    ros_context: rclpy.Context, random_checkpoint: Path
) -> None:
    """`python -m pose_ros.pose_node` in its own process: images cross DDS, Ctrl-C exits 0."""
    domain = ros_context.get_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    process = subprocess.Popen(
        [sys.executable, "-m", "pose_ros.pose_node", "--ros-args",
         "--params-file", str(REPO_ROOT / "config" / "pose_node.yaml"),
         "-p", f"checkpoint:={random_checkpoint}", "-p", "device:=cpu"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    node = Node("external_client", context=ros_context)
    executor = MultiThreadedExecutor(num_threads=2, context=ros_context)
    executor.add_node(node)
    received: list[PersonArray] = []
    header = Header(stamp=_stamp(5), frame_id="external")

    def on_people(msg: PersonArray) -> None:
        if msg.header == header:
            received.append(msg)

    node.create_subscription(PersonArray, "people", on_people, RELIABLE)
    publisher = node.create_publisher(Image, "image", RELIABLE)
    scene = SyntheticVideo(640, 480, num_people=2, fps=10.0, seed=8).frame(0)
    try:
        deadline = time.monotonic() + 90.0
        while not received and time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[0][-3000:]
            if publisher.get_subscription_count() > 0:
                publisher.publish(bgr_to_image(scene.image_bgr, header))
            executor.spin_once(timeout_sec=0.5)
        assert received, "no PersonArray from the external node"
        assert received[0].header == header and received[0].image_width == 640
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        executor.shutdown()
        node.destroy_node()
    assert process.returncode == 0, output[-3000:]


def _overlapping_frames(video: SyntheticVideo, count: int, stride: int = 4) -> list[int]:
    """The first `count` frames (every `stride`-th) that show >= 3 people with >= 5 visible
    joints, two of whom overlap (boxes with IoU >= 0.1)."""
    chosen = []
    for index in range(0, 2000, stride):
        scene = video.frame(index)
        shown = (scene.keypoints[..., 2] == 2).sum(axis=1) >= 5
        boxes = scene.boxes[shown]
        if len(boxes) < 3:
            continue
        iou = box_iou_matrix(boxes, boxes)
        np.fill_diagonal(iou, 0.0)
        if iou.max() >= 0.1:
            chosen.append(index)
            if len(chosen) == count:
                return chosen
    raise AssertionError("the test video has too few overlapping frames")


def _score_overlapping_walkers(harness: Harness) -> dict:
    """FrameScorer totals of the shipped model on ACCURACY_FRAMES overlapping-walker frames."""
    publisher = harness.test_node.create_publisher(Image, "image", RELIABLE)
    video = SyntheticVideo(640, 480, num_people=ACCURACY_PEOPLE, fps=ACCURACY_FPS, seed=11)
    scorer = FrameScorer(COCO_17, keypoint_min_score=NodeParams().keypoint_min_score)
    # the frames are not consecutive: each is stamped at its time in the video, so the node's
    # tracker (and its joint gate, which bounds how far a joint may move per second) sees the
    # true gaps between them, not microseconds
    start_ns = time.time_ns() // 1_000_000_000 * 1_000_000_000 + 123_457
    for index in _overlapping_frames(video, ACCURACY_FRAMES):
        scene = video.frame(index)
        header = Header(stamp=_video_stamp(start_ns, index, ACCURACY_FPS), frame_id="cam")
        answer = _send_and_wait(harness, publisher, bgr_to_image(scene.image_bgr, header))
        assert answer.header == header
        scorer.score(person_array_to_poses(answer).keypoints, scene.keypoints, scene.areas)
    summary = scorer.summary()
    assert summary["people_true"] >= 3 * ACCURACY_FRAMES
    return summary


@pytest.mark.xfail(strict=True, reason="issue 18: the shipped model does not reach the demo's "
                   "goals yet (docs/training_synthetic.md); XPASS means it does: make this the "
                   "regression test")
def test_shipped_model_reaches_the_demo_goals_on_overlapping_walkers(
    ros_context: rclpy.Context,
) -> None:
    overrides = [Parameter("device", value="cpu"), Parameter("checkpoint", value="")]
    with _start_harness(ros_context, overrides) as harness:
        summary = _score_overlapping_walkers(harness)
    assert summary["recall"] >= ACCURACY_GOAL_RECALL, summary
    assert summary["precision"] >= ACCURACY_GOAL_PRECISION, summary
    assert summary["wrong_edge_fraction"] <= ACCURACY_GOAL_WRONG_EDGES, summary


def test_shipped_model_finds_and_separates_overlapping_walkers(
    ros_context: rclpy.Context,
) -> None:
    """The demo's scene (640x480, four walkers) on frames where people overlap, scored as the
    demo scores itself (FrameScorer): the regression floor of the current shipped model."""
    overrides = [Parameter("device", value="cpu"), Parameter("checkpoint", value="")]
    with _start_harness(ros_context, overrides) as harness:
        summary = _score_overlapping_walkers(harness)
        video = SyntheticVideo(640, 480, num_people=ACCURACY_PEOPLE, fps=ACCURACY_FPS, seed=11)
        publisher = harness.test_node.create_publisher(Image, "image", RELIABLE)
        assert summary["recall"] >= ACCURACY_MIN_RECALL, summary
        assert summary["precision"] >= ACCURACY_MIN_PRECISION, summary
        assert summary["wrong_edge_fraction"] <= ACCURACY_MAX_WRONG_EDGES, summary
        # a frame with nobody in it gives an empty array (the parser's low-score fragments there
        # are below person_min_score)
        blank = np.full((240, 320, 3), 127, np.uint8)
        header = Header(stamp=_stamp(50), frame_id="cam")
        answer = _send_and_wait(harness, publisher, bgr_to_image(blank, header))
        assert len(answer.people) == 0
        # person_min_score applies at once: nobody scores 1.0
        result = harness.pose.set_parameters([Parameter("person_min_score", value=1.0)])
        assert result[0].successful
        scene = video.frame(0)
        header = Header(stamp=_stamp(51), frame_id="cam")
        answer = _send_and_wait(harness, publisher, bgr_to_image(scene.image_bgr, header))
        assert len(answer.people) == 0


def test_accuracy_check_itself_accepts_ground_truth_and_refuses_shifted_people() -> None:
    """`assert_people_match` (used once the shipped model exists) is checked on ground truth."""
    scene = SyntheticVideo(320, 240, num_people=3, fps=10.0, seed=11).frame(0)
    truth = scene.keypoints.copy()
    as_detected = truth.copy()
    as_detected[..., 2] = (truth[..., 2] > 0).astype(np.float32)
    msg = poses_to_person_array(
        Poses(as_detected, np.ones(len(truth))), Header(), (320, 240), COCO_17
    )
    assert_people_match(msg, truth)
    shifted = as_detected.copy()
    shifted[..., 0] += 3 * ACCURACY_MAX_MEDIAN_ERROR_PX
    msg = poses_to_person_array(Poses(shifted, np.ones(len(truth))), Header(), (320, 240), COCO_17)
    with pytest.raises(AssertionError, match="matched 0 of"):
        assert_people_match(msg, truth)
