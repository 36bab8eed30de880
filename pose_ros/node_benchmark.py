"""`pose-bench` node mode: the synthetic camera in its own process, the pose node (backend by
name) in this one, as on a robot; image stamp -> `PersonArray` received latency per backend.

    ./env.sh python -m pose_ros.node_benchmark --backends torch onnxruntime --seconds 30 \
        --rate 5 --width 640 --height 480 --out-dir runs/bench_node

The camera (`python -m pose_ros.synthetic_camera`) publishes on a private DDS domain with the
shared-memory Fast DDS profile; each backend gets a fresh pose node, `--warmup` seconds, then
`--seconds` of measurement. Reports: `<stem>.json` and `<stem>.md` (median / p90 / p99 of the
latency, processed frame rate, frames dropped, the node's stage medians).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "measure_backend"]

REPO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "fastdds_shm.xml"


def measure_backend(context: Any, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """One pose node with `backend` against the running camera process."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy

    from pose_core.bench.stats import latency_stats
    from pose_ros.msg import PersonArray
    from pose_ros.pose_node import PoseNode

    overrides = [Parameter("device", value=args.device), Parameter("backend", value=backend),
                 Parameter("flip_test", value=args.flip_test)]
    if args.model:
        overrides += [Parameter("model", value=args.model),
                      Parameter("checkpoint", value=args.checkpoint)]
    pose = PoseNode(f"pose_node_{backend}", context=context, parameter_overrides=overrides)
    if not pose.active:
        pose.destroy_node()
        return {"backend": backend, "error": "the pose node could not be configured"}
    listener = rclpy.create_node(f"latency_listener_{backend}", context=context)
    latencies: list[float] = []

    def on_people(msg: PersonArray) -> None:
        now = listener.get_clock().now().nanoseconds * 1e-9
        latencies.append(now - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    listener.create_subscription(PersonArray, "people", on_people,
                                 QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE))
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    for node in (pose, listener):
        executor.add_node(node)
    deadline = time.monotonic() + args.warmup
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    latencies.clear()
    processed = pose.stats.processed
    started = time.monotonic()
    while time.monotonic() - started < args.seconds:
        executor.spin_once(timeout_sec=0.05)
    elapsed = time.monotonic() - started
    result: dict[str, Any] = {
        "backend": backend,
        "processed_fps": (pose.stats.processed - processed) / elapsed,
        "frames_dropped": pose.buffer.counts().dropped,
        "stages_ms": {stage: pose.stats.latency_ms(stage)
                      for stage in ("preprocess", "network", "grouping", "total")},
    }
    if latencies:
        result["stamp_to_people"] = latency_stats(latencies).as_dict()
    executor.shutdown()
    pose.destroy_node()
    listener.destroy_node()
    return result


def _markdown(results: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    lines = [f"Node mode (camera in its own process): {settings}", "",
             "| backend | stamp->people median ms | p90 ms | p99 ms | processed fps | dropped |",
             "|---|---|---|---|---|---|"]
    for r in results:
        s = r.get("stamp_to_people")
        if s is None:
            lines.append(f"| {r['backend']} | {r.get('error', 'no people received')} | | | | |")
            continue
        lines.append(f"| {r['backend']} | {s['median_ms']:.0f} | {s['p90_ms']:.0f} | "
                     f"{s['p99_ms']:.0f} | {r['processed_fps']:.2f} | {r['frames_dropped']} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--model", default="")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--flip-test", action="store_true")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--domain", type=int, default=214)
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench_node"))
    parser.add_argument("--stem", default="node")
    args = parser.parse_args(argv)
    import rclpy

    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO_CONFIG)
    camera = subprocess.Popen(
        [sys.executable, "-m", "pose_ros.synthetic_camera", "--ros-args",
         "-p", f"width:={args.width}", "-p", f"height:={args.height}",
         "-p", f"rate:={float(args.rate)}", "-p", f"num_people:={args.people}"],
        env={**os.environ, "ROS_DOMAIN_ID": str(args.domain)},
    )
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain)
    try:
        results = [measure_backend(context, backend, args) for backend in args.backends]
    finally:
        rclpy.shutdown(context=context)
        camera.terminate()
        camera.wait(timeout=10)
    settings = {k: str(v) for k, v in vars(args).items()}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.stem}.json").write_text(
        json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    markdown = _markdown(results, settings)
    (args.out_dir / f"{args.stem}.md").write_text(markdown)
    print(markdown)
    return 0 if all("stamp_to_people" in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
