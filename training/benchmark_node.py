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


# ----------------------------------------------------------------------------------- overhead
def _timed(function, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def _overhead(args: argparse.Namespace) -> dict[str, object]:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from std_msgs.msg import Header

    from pose_core.keypoint_specs import COCO_17
    from pose_core.structures import Poses
    from pose_ros.image_conversion import array_to_image, bgr_to_image, image_to_bgr
    from pose_ros.marker_conversion import poses_to_markers
    from pose_ros.msg import PersonArray
    from pose_ros.pose_conversion import PersonArrayBuilder, poses_to_person_array

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.height, args.width, 3), np.uint8)
    header = Header(frame_id="bench")
    bgr_msg = bgr_to_image(image, header)
    rgb_msg = array_to_image(np.ascontiguousarray(image[:, :, ::-1]), "rgb8", header)
    keypoints = np.zeros((args.people, 17, 3), np.float32)
    keypoints[..., 0] = rng.uniform(0, args.width, (args.people, 17))
    keypoints[..., 1] = rng.uniform(0, args.height, (args.people, 17))
    keypoints[..., 2] = rng.uniform(0.05, 1.0, (args.people, 17))
    poses = Poses(keypoints, rng.uniform(0, 1, args.people))
    size = (args.width, args.height)

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain)
    node = rclpy.create_node("overhead_publisher", context=context)
    listener = rclpy.create_node("overhead_subscriber", context=context)
    qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
    received: list[int] = []
    listener.create_subscription(PersonArray, "people", lambda m: received.append(1), qos)
    publisher = node.create_publisher(PersonArray, "people", qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(listener)
    deadline = time.monotonic() + 5.0
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    people_msg = poses_to_person_array(poses, header, size, COCO_17)
    builder = PersonArrayBuilder(COCO_17)

    def publish_and_drain() -> None:
        publisher.publish(people_msg)

    repeats = args.repeats
    for function in (lambda: image_to_bgr(bgr_msg), publish_and_drain):
        _timed(function, 10)  # warm-up
    stages = {
        "convert_bgr8": _timed(lambda: image_to_bgr(bgr_msg), repeats),
        "convert_rgb8": _timed(lambda: image_to_bgr(rgb_msg), repeats),
        "build_person_array": _timed(lambda: builder.build(poses, header, size), repeats),
        "build_person_array_fresh": _timed(
            lambda: poses_to_person_array(poses, header, size, COCO_17), repeats
        ),
    }
    publish_samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        publisher.publish(people_msg)
        publish_samples.append(time.perf_counter() - started)
        executor.spin_once(timeout_sec=0.0)
    stages["publish_person_array"] = publish_samples
    stages["build_markers_optional"] = _timed(
        lambda: poses_to_markers(poses, header, size, COCO_17), repeats
    )
    totals = [
        a + b + c
        for a, b, c in zip(
            stages["convert_bgr8"], stages["build_person_array"], stages["publish_person_array"]
        )
    ]
    deadline = time.monotonic() + 3.0
    while len(received) < repeats and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    node.destroy_node()
    listener.destroy_node()
    rclpy.shutdown(context=context)
    result = {
        "benchmark": "overhead",
        "image": f"{args.width}x{args.height}",
        "people": args.people,
        "repeats": repeats,
        "stages": {name: _percentiles(samples) for name, samples in stages.items()},
        "node_overhead_bgr8": _percentiles(totals),
        "person_array_bytes_approx": args.people * 17 * 37,
        "machine": _machine(),
    }
    print(f"node overhead at {args.width}x{args.height}, {args.people} people ({_machine()}):")
    for name, samples in stages.items():
        p = _percentiles(samples)
        print(f"  {name:24s} median {p['p50_ms']:.3f} ms  p90 {p['p90_ms']:.3f} ms")
    p = _percentiles(totals)
    print(f"  {'total (convert+build+publish)':24s} median {p['p50_ms']:.3f} ms  "
          f"p90 {p['p90_ms']:.3f} ms  (goal <= 2 ms)")
    return result


# ------------------------------------------------------------------------------------ latency
def _latency(args: argparse.Namespace) -> dict[str, object]:
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy

    from pose_ros.msg import PersonArray
    from pose_ros.pose_node import PoseNode
    from pose_ros.synthetic_camera import SyntheticCameraNode

    if args.profile == "shm":
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(SHM_PROFILE)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain)
    camera = SyntheticCameraNode(context=context, parameter_overrides=[
        Parameter("width", value=args.width), Parameter("height", value=args.height),
        Parameter("rate", value=float(args.rate)), Parameter("num_people", value=args.people),
    ])
    overrides = [
        Parameter("device", value=args.device), Parameter("checkpoint", value=args.checkpoint),
        Parameter("max_input_size", value=args.max_input_size),
        Parameter("flip_test", value=args.flip_test),
    ]
    if args.model:
        overrides.append(Parameter("model", value=args.model))
    pose = PoseNode(context=context, parameter_overrides=overrides)
    if not pose.active:
        raise SystemExit("the pose node could not be configured (see the log)")
    listener = rclpy.create_node("latency_listener", context=context)
    latencies: list[float] = []

    def on_people(msg: PersonArray) -> None:
        now = listener.get_clock().now().nanoseconds * 1e-9
        latencies.append(now - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    listener.create_subscription(
        PersonArray, "people", on_people,
        QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE),
    )
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    for node in (camera, pose, listener):
        executor.add_node(node)
    warmup_until = time.monotonic() + args.warmup
    while time.monotonic() < warmup_until:
        executor.spin_once(timeout_sec=0.05)
    latencies.clear()
    processed_before = pose.stats.processed
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        executor.spin_once(timeout_sec=0.05)
    seconds = time.monotonic() - started
    stage_stats = {stage: pose.stats.latency_ms(stage) for stage in
                   ("total", "convert", "preprocess", "network", "grouping", "publish")}
    result = {
        "benchmark": "latency",
        "model": pose.params.model,
        "checkpoint": pose.params.checkpoint or "(shipped)",
        "device": pose.device,
        "image": f"{args.width}x{args.height}",
        "camera_rate_hz": args.rate,
        "processed_rate_hz": (pose.stats.processed - processed_before) / seconds,
        "frames_dropped": pose.buffer.counts().dropped,
        "stamp_to_received": _percentiles(latencies),
        "node_stages_ms (last 300 frames)": stage_stats,
        "machine": _machine(),
    }
    executor.shutdown()
    for node in (camera, pose, listener):
        node.destroy_node()
    rclpy.shutdown(context=context)
    p = result["stamp_to_received"]
    print(f"end to end ({pose.params.model}, {result['device']}, {args.width}x{args.height} at "
          f"{args.rate} Hz): {result['processed_rate_hz']:.1f} fps, stamp->people median "
          f"{p.get('p50_ms', float('nan')):.1f} ms p90 {p.get('p90_ms', float('nan')):.1f} ms")
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
    overhead = sub.add_parser("overhead", help="conversion + message building + publishing")
    overhead.add_argument("--people", type=int, default=20)
    overhead.add_argument("--width", type=int, default=640)
    overhead.add_argument("--height", type=int, default=480)
    overhead.add_argument("--repeats", type=int, default=300)
    overhead.add_argument("--domain", type=int, default=212)
    latency = sub.add_parser("latency", help="synthetic camera -> pose node -> people")
    latency.add_argument("--seconds", type=float, default=20.0)
    latency.add_argument("--warmup", type=float, default=5.0)
    latency.add_argument("--rate", type=float, default=10.0)
    latency.add_argument("--width", type=int, default=640)
    latency.add_argument("--height", type=int, default=480)
    latency.add_argument("--people", type=int, default=4)
    latency.add_argument("--model", default="")
    latency.add_argument("--checkpoint", default="")
    latency.add_argument("--device", default="auto")
    latency.add_argument("--max-input-size", type=int, default=0)
    latency.add_argument("--flip-test", action="store_true")
    latency.add_argument("--profile", choices=("default", "shm"), default="shm")
    latency.add_argument("--domain", type=int, default=213)
    subscriber = sub.add_parser("transport-subscriber", help=argparse.SUPPRESS)
    subscriber.add_argument("--domain", type=int, required=True)
    subscriber.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    if args.command == "transport-subscriber":
        _transport_subscriber(args)
        return
    runners = {"transport": _transport, "overhead": _overhead, "latency": _latency}
    result = runners[args.command](args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
