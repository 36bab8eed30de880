"""Several cameras: one pose node serving N cameras (batched) against N separate pose nodes.

Both settings see the same input: one process publishes N camera streams (`c0/image`, ...,
640 x 480 synthetic walkers, each at `--rate` Hz) and counts the `cN/people` messages that come
back. The pose nodes run in their own processes with the package defaults (shipped model):
  - batched: one `pose_node` with `cameras:=[c0, c1, ...]` (frames ready together share one
    network call);
  - separate: N `pose_node` processes, each in namespace `/cI` (topics `image` -> `people`).
Reported per setting: processed frames/s summed over the cameras and per camera, after a
warm-up; the settings run one after the other in the same script (same machine, same load).

Usage:
    ./env.sh python training/benchmark_cameras.py --cameras 3 --seconds 20 --rate 30 \
        --json docs/benchmark_cameras.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from pose_core.data.synthetic import SyntheticVideo
from pose_ros.image_conversion import bgr_to_image
from pose_ros.msg import PersonArray

REPO = Path(__file__).resolve().parents[1]
RELIABLE = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)


class CameraRig(Node):
    """Publishes N camera streams and counts the people messages of each."""

    def __init__(self, cameras: int, rate: float, frames: int = 60) -> None:
        super().__init__("camera_rig")
        self.names = [f"c{i}" for i in range(cameras)]
        self.images = {
            name: [SyntheticVideo(640, 480, num_people=4, seed=i).frame(k).image_bgr
                   for k in range(frames)]
            for i, name in enumerate(self.names)
        }
        self.publishers_ = {n: self.create_publisher(Image, f"{n}/image", qos_profile_sensor_data)
                            for n in self.names}
        self.counts = dict.fromkeys(self.names, 0)
        self.lock = threading.Lock()
        for name in self.names:
            self.create_subscription(PersonArray, f"{name}/people",
                                     lambda msg, n=name: self._count(n), RELIABLE)
        self.index = 0
        self.create_timer(1.0 / rate, self._publish)

    def _count(self, name: str) -> None:
        with self.lock:
            self.counts[name] += 1

    def _publish(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for name in self.names:
            frames = self.images[name]
            header = Header(stamp=stamp, frame_id=f"{name}_optical")
            self.publishers_[name].publish(bgr_to_image(frames[self.index % len(frames)], header))
        self.index += 1

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


def start_nodes(setting: str, cameras: int, env: dict[str, str]) -> list[subprocess.Popen]:
    base = [sys.executable, "-m", "pose_ros.pose_node", "--ros-args",
            "--params-file", str(REPO / "config" / "pose_node.yaml")]
    if setting == "batched":
        names = ", ".join(f"c{i}" for i in range(cameras))
        commands = [base + ["-p", f"cameras:=[{names}]"]]
    else:
        commands = [base + ["-r", f"__ns:=/c{i}"] for i in range(cameras)]
    return [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for c in commands]


def measure(rig: CameraRig, setting: str, cameras: int, seconds: float, warmup: float,
            env: dict[str, str]) -> dict:
    processes = start_nodes(setting, cameras, env)
    try:
        deadline = time.monotonic() + 120.0
        while time.monotonic() < deadline and min(rig.snapshot().values()) == 0:
            time.sleep(0.2)
        time.sleep(warmup)
        before, started = rig.snapshot(), time.monotonic()
        time.sleep(seconds)
        after, elapsed = rig.snapshot(), time.monotonic() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    per_camera = {n: (after[n] - before[n]) / elapsed for n in rig.names}
    return {"setting": setting, "processes": len(processes),
            "total_fps": sum(per_camera.values()), "per_camera_fps": per_camera}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    env = dict(os.environ)
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_shm.xml"))
    os.environ.update(env)
    rclpy.init()
    rig = CameraRig(args.cameras, args.rate)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(rig)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    rows = []
    try:
        for round_index in range(args.rounds):
            for setting in ("batched", "separate"):
                row = measure(rig, setting, args.cameras, args.seconds, args.warmup, env)
                row["round"] = round_index
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        executor.shutdown()
        rig.destroy_node()
        rclpy.try_shutdown()
    report = {"machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "cameras": args.cameras, "rate_hz": args.rate,
              "seconds": args.seconds, "rows": rows}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
