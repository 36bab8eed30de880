"""The interface package: colcon builds it, and PersonArray crosses real DDS field for field."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.ros


@pytest.mark.slow
def test_colcon_builds_the_messages_from_scratch(tmp_path: Path) -> None:
    """A clean colcon build into a temporary space generates importable Python messages."""
    venv = Path(sys.prefix)
    colcon = shutil.which("colcon") or str(venv / "bin" / "colcon")
    env = dict(os.environ, CMAKE_PREFIX_PATH=str(venv), AMENT_PREFIX_PATH=str(venv))
    build = subprocess.run(
        [colcon, "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(REPO_ROOT),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install"),
         "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF",
         "-DPython3_NumPy_INCLUDE_DIR="
         "/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    site = tmp_path / "install" / "pose_ros" / "lib" / "python3.11" / "site-packages"
    assert (site / "pose_ros" / "msg" / "_person_array.py").is_file()
    # Import the freshly generated module (not the checkout's install/) in a clean interpreter.
    lib = tmp_path / "install" / "pose_ros" / "lib"
    check_env = dict(os.environ, PYTHONPATH=str(site),
                     LD_LIBRARY_PATH=f"{lib}:{os.environ.get('LD_LIBRARY_PATH', '')}")
    script = (
        "import pose_ros.msg as m, sys\n"
        f"assert m.__file__.startswith({str(site)!r}), m.__file__\n"
        "p = m.PersonArray(); print(sorted(p.get_fields_and_field_types().items()))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=check_env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "('people', 'sequence<pose_ros/Person>')" in result.stdout
    assert "('header', 'std_msgs/Header')" in result.stdout


def _two_people_message():
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import Point
    from std_msgs.msg import Header

    from pose_ros.msg import Keypoint, Person, PersonArray, SkeletonEdge

    # float32 fields hold values float32 represents exactly, so equality is exact.
    msg = PersonArray()
    msg.header = Header(stamp=Time(sec=1_700_000_123, nanosec=456_789), frame_id="camera_optical")
    msg.image_width, msg.image_height = 640, 480
    msg.keypoint_names = ["nose", "left_eye", "right_eye"]
    msg.skeleton = [SkeletonEdge(start=0, end=1), SkeletonEdge(start=0, end=2)]
    for pid in range(2):
        person = Person(id=pid if pid else -1, score=0.5 + 0.25 * pid)
        person.keypoints = [
            Keypoint(x=10.5 * (j + 1) + pid, y=20.25 * (j + 1), score=0.25 * (j + 1),
                     position=Point(x=0.1 * j, y=0.2, z=1.5 + pid), has_position=bool(j % 2))
            for j in range(3)
        ]
        person.bbox_x, person.bbox_y = 10.0 + pid, 20.0
        person.bbox_width, person.bbox_height = 30.5, 60.75
        msg.people.append(person)
    return msg


def test_person_array_round_trip_between_two_nodes_over_dds() -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

    from pose_ros.msg import PersonArray

    # Two contexts = two DDS participants: the message really goes through Fast DDS.
    pub_context, sub_context = rclpy.Context(), rclpy.Context()
    domain = 77
    rclpy.init(context=pub_context, domain_id=domain)
    rclpy.init(context=sub_context, domain_id=domain)
    try:
        qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE,
                         durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        publisher_node = rclpy.create_node("people_publisher", context=pub_context)
        subscriber_node = rclpy.create_node("people_subscriber", context=sub_context)
        received: list[PersonArray] = []
        subscriber_node.create_subscription(PersonArray, "people", received.append, qos)
        publisher = publisher_node.create_publisher(PersonArray, "people", qos)
        sent = _two_people_message()
        executor = SingleThreadedExecutor(context=sub_context)
        executor.add_node(subscriber_node)
        deadline = time.monotonic() + 20.0
        while not received and time.monotonic() < deadline:
            if publisher.get_subscription_count() > 0:
                publisher.publish(sent)
            executor.spin_once(timeout_sec=0.2)
        assert received, "no PersonArray arrived within 20 s"
        got = received[0]
        assert got == sent  # generated messages compare every field recursively
        assert got.header.stamp.sec == 1_700_000_123 and got.header.stamp.nanosec == 456_789
        assert got.header.frame_id == "camera_optical"
        assert [k.x for k in got.people[1].keypoints] == pytest.approx([11.5, 22.0, 32.5])
        assert got.people[0].id == -1 and got.people[1].id == 1
        assert got.people[1].keypoints[1].has_position
        assert got.people[1].keypoints[1].position.z == pytest.approx(2.5)
        assert [(e.start, e.end) for e in got.skeleton] == [(0, 1), (0, 2)]
        executor.shutdown()
        publisher_node.destroy_node()
        subscriber_node.destroy_node()
    finally:
        rclpy.shutdown(context=pub_context)
        rclpy.shutdown(context=sub_context)
