"""`pose-bench` node mode: the synthetic camera in its own process, the pose node (backend by
name) in this one, as on a robot; image stamp -> `PersonArray` received latency per backend.

    ./env.sh python -m pose_ros.node_benchmark --backends torch onnxruntime --seconds 30 \
        --rate 5 --width 640 --height 480 --out-dir runs/bench_node

The camera (`python -m pose_ros.synthetic_camera`) publishes on a private DDS domain with the
shared-memory Fast DDS profile; each backend gets a fresh pose node, `--warmup` seconds, then
`--seconds` of measurement. Reports: `<stem>.json` and `<stem>.md` (median / p90 / p99 of the
latency, processed frame rate, frames dropped, the node's stage medians).

`--checkpoints A B ...` measures the same model with several weight files side by side (each
backend x checkpoint gets its own node, interleaved over `--rounds`): e.g. a new shipped model
against the previous one. An entry may carry node parameters after `@`, comma-separated
(`new.pt@refine=false,person_min_score=0.3`; values read as YAML scalars), so that the same run
compares, e.g., the previous weights at their defaults with new weights at new defaults.
`GroupingParams` fields the node has no parameter for are passed to its estimator as grouping
overrides (`old.pt@refine_min_score=0`: refine every person, as the node did before it
skipped the people it drops).
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


def checkpoint_entry(entry: str) -> tuple[str, dict[str, Any]]:
    """`PATH[@name=value,...]` -> (path, overrides: node parameters and grouping fields)."""
    import yaml

    path, _, rest = entry.partition("@")
    params: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{entry!r}: parameters after '@' must be name=value")
        params[name.strip()] = yaml.safe_load(value)
    return path, params


def split_entry_values(
    values: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An entry's values -> (node parameters, grouping overrides): the `GroupingParams` fields
    that are not node parameters go to the estimator; anything else is a node parameter (an
    unknown name is refused by the node)."""
    from pose_core.grouping import GroupingParams
    from pose_ros.params import NodeParams

    grouping = {name: value for name, value in values.items()
                if name not in NodeParams.__dataclass_fields__
                and name in GroupingParams.__dataclass_fields__}
    return {k: v for k, v in values.items() if k not in grouping}, grouping


def measure_backend(context: Any, backend: str, args: argparse.Namespace,
                    checkpoint: str | None = None) -> dict[str, Any]:
    """One pose node with `backend` (and `checkpoint`, else `args.checkpoint`; an entry may
    carry node parameters, see `checkpoint_entry`) against the running camera process."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy

    from pose_core.bench.stats import latency_stats
    from pose_ros.msg import PersonArray
    from pose_ros.pose_node import PoseNode, build_estimator

    overrides = [Parameter("device", value=args.device), Parameter("backend", value=backend)]
    if args.flip_test is not None:
        overrides.append(Parameter("flip_test", value=args.flip_test))
    label = args.checkpoint if checkpoint is None else checkpoint
    checkpoint, entry_values = checkpoint_entry(label)
    node_params, grouping = split_entry_values(entry_values)
    overrides += [Parameter(name, value=value) for name, value in node_params.items()]
    if args.model:
        overrides.append(Parameter("model", value=args.model))
    if args.model or checkpoint:
        overrides.append(Parameter("checkpoint", value=checkpoint))
    pose = PoseNode(f"pose_node_{backend}", context=context, parameter_overrides=overrides,
                    estimator_factory=lambda params: build_estimator(params, grouping))
    if not pose.active:
        pose.destroy_node()
        return {"backend": backend, "checkpoint": label or "shipped",
                "error": "the pose node could not be configured"}
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
        "checkpoint": label or "shipped",
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
             "| backend | checkpoint | round | stamp->people median ms | p90 ms | p99 ms | "
             "processed fps | dropped |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r.get("stamp_to_people")
        head = f"| {r['backend']} | {r.get('checkpoint', '')} | {r.get('round', 0)} |"
        if s is None:
            lines.append(f"{head} {r.get('error', 'no people received')} | | | | |")
            continue
        lines.append(f"{head} {s['median_ms']:.0f} | {s['p90_ms']:.0f} | "
                     f"{s['p99_ms']:.0f} | {r['processed_fps']:.2f} | {r['frames_dropped']} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--model", default="")
    parser.add_argument("--checkpoint", default="")
    parser.add_argument("--checkpoints", nargs="+", default=None,
                        help="weight files measured side by side ('' = the shipped weights), "
                             "each optionally PATH@name=value,... with node parameters")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every backend x checkpoint, interleaved")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=None,
                        help="set the node's flip_test (default: the node's own default)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--rate", type=float, default=5.0)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--loop-frames", type=int, default=0,
                        help="camera replays a clip of this many frames from memory after its "
                             "first pass (0 = renders every frame, which costs a core)")
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
         "-p", f"rate:={float(args.rate)}", "-p", f"num_people:={args.people}",
         "-p", f"loop_frames:={args.loop_frames}"],
        env={**os.environ, "ROS_DOMAIN_ID": str(args.domain)},
    )
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=args.domain)
    try:
        checkpoints = args.checkpoints if args.checkpoints is not None else [args.checkpoint]
        results = []
        for round_index in range(args.rounds):
            for backend in args.backends:
                for checkpoint in checkpoints:
                    result = measure_backend(context, backend, args, checkpoint)
                    result["round"] = round_index
                    results.append(result)
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
