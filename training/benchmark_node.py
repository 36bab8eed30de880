"""Benchmarks of the ROS side (not tests): node overhead, end-to-end latency, DDS transport.

    ./env.sh python training/benchmark_node.py overhead  [--people 20 --width 640 --height 480]
    ./env.sh python training/benchmark_node.py latency   [--seconds 20 --rate 10 --checkpoint P]
    ./env.sh python training/benchmark_node.py transport [--profile default|shm --frames 300]

- overhead: the node's own cost per frame, without the network: Image -> ndarray conversion,
  PersonArray building for N people and publishing it (and the optional markers), measured
  in-process with a real publisher and subscriber; the goal is <= 2 ms at 640x480, 20 people.
- latency: the synthetic camera and the pose node in one process (MultiThreadedExecutor);
  reports image stamp -> PersonArray received, with the model given (default: the shipped one).
- transport: one process publishes best-effort 640x480 bgr8 frames, a second one subscribes;
  reports how many arrive with Fast DDS defaults and with config/fastdds_shm.xml.
Results are printed as one JSON line per run (plus a readable summary).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHM_PROFILE = REPO_ROOT / "config" / "fastdds_shm.xml"
_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def _percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples, dtype=np.float64) * 1e3
    if values.size == 0:
        return {}
    return {
        "mean_ms": float(values.mean()),
        "p50_ms": float(np.percentile(values, 50)),
        "p90_ms": float(np.percentile(values, 90)),
        "p99_ms": float(np.percentile(values, 99)),
        "max_ms": float(values.max()),
    }


# ---------------------------------------------------------------------------------- transport
def _transport_subscriber(args: argparse.Namespace) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain)
    node = rclpy.create_node("transport_subscriber", context=context)
    received: list[int] = []
    node.create_subscription(
        Image, "bench_image", lambda msg: received.append(msg.header.stamp.nanosec),
        qos_profile_sensor_data,
    )
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    print(json.dumps({"received": len(set(received))}), flush=True)
    node.destroy_node()
    rclpy.shutdown(context=context)


def _transport(args: argparse.Namespace) -> dict[str, object]:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from pose_ros.image_conversion import bgr_to_image

    env = dict(os.environ)
    for variable in _PROFILE_VARIABLES:
        env.pop(variable, None)
    if args.profile == "shm":
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(SHM_PROFILE)
    if args.profile != os.environ.get("_POSE_BENCH_PROFILE"):
        # the publisher must use the same profile: re-run this command with the environment set
        env["_POSE_BENCH_PROFILE"] = args.profile
        done = subprocess.run([sys.executable, *sys.argv], env=env, check=False)
        raise SystemExit(done.returncode)
    domain = args.domain
    seconds = args.frames / args.rate + 8.0
    child = subprocess.Popen(
        [sys.executable, __file__, "transport-subscriber", "--domain", str(domain),
         "--seconds", str(seconds)],
        env=env, stdout=subprocess.PIPE, text=True,
    )
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("transport_publisher", context=context)
    publisher = node.create_publisher(Image, "bench_image", qos_profile_sensor_data)
    image = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), np.uint8)
    messages = []
    for i in range(args.frames):
        messages.append(bgr_to_image(image, Header(frame_id="bench")))
        messages[-1].header.stamp.nanosec = i
    started = time.monotonic()
    while publisher.get_subscription_count() == 0 and time.monotonic() - started < 5.0:
        time.sleep(0.05)
    time.sleep(1.0)
    period = 1.0 / args.rate
    next_time = time.monotonic()
    for message in messages:
        publisher.publish(message)
        next_time += period
        time.sleep(max(0.0, next_time - time.monotonic()))
    output, _ = child.communicate(timeout=seconds + 30)
    received = json.loads(output.strip().splitlines()[-1])["received"]
    node.destroy_node()
    rclpy.shutdown(context=context)
    result = {
        "benchmark": "transport",
        "profile": args.profile,
        "frames_sent": args.frames,
        "frames_received": received,
        "delivered_fraction": round(received / args.frames, 3),
        "size": f"{args.width}x{args.height} bgr8",
        "rate_hz": args.rate,
        "machine": _machine(),
    }
    print(
        f"transport ({args.profile}): {received}/{args.frames} best-effort "
        f"{args.width}x{args.height} frames delivered between two processes"
    )
    return result


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run one benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    transport = sub.add_parser("transport", help="best-effort image delivery between processes")
    transport.add_argument("--profile", choices=("default", "shm"), default="default")
    transport.add_argument("--frames", type=int, default=300)
    transport.add_argument("--rate", type=float, default=30.0)
    transport.add_argument("--width", type=int, default=640)
    transport.add_argument("--height", type=int, default=480)
    transport.add_argument("--domain", type=int, default=211)
    subscriber = sub.add_parser("transport-subscriber", help=argparse.SUPPRESS)
    subscriber.add_argument("--domain", type=int, required=True)
    subscriber.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    if args.command == "transport-subscriber":
        _transport_subscriber(args)
        return
    result = _transport(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
