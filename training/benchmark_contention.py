"""Contention benchmark: the main job, the post-processing and `PoseEstimator()` with the CPU
idle and beside busy processes, for candidate thread policies. Writes JSON, a markdown table and
a plot (docs/benchmark_node.md).

    ./env.sh python training/benchmark_contention.py --runs 3 \
        --out docs/benchmark_node_runs/contention.json --plot docs/benchmark_node_contention.png

Scenarios: `idle`, `busy1` (one CPU-hog process: a Python busy loop, so at most one core) and
`busy2` (two of them). For each scenario and run (the order of the policies is rotated from run
to run), every part is measured:

- node: the synthetic camera in its own process (640x480 at `--rate` Hz, 4 walkers, a looping
  clip replayed from memory after its first pass, as a camera driver would), the pose node
  (shipped model, node defaults but for the policy's thread parameters) in this process with a
  listener; processed frames/s, stamp -> people p50/p90/p99, the frame's age when the worker
  took it (p50 / max), frames dropped / stale, the stage shares;
- postprocess: `training/benchmark_postprocess.py --people 10 --skip-reference` in a child
  process at the policy's grouping threads (batched path median / p90);
- estimator: `PoseEstimator()` (the shipped model, package defaults but for the policy) on
  640x480 synthetic frames in a child process (median / p90 per frame).

Policies (`--policies`): `default` is the package's own thread policy; `libraries` leaves
torch and onnxruntime their defaults (all cores, OpenMP default wait policy); the others vary
one thing. The policy with the best busy1 p99 among those meeting the idle goals is reported as
the choice; the package defaults (pose_core.inference.thread_policy.DEFAULT_THREAD_POLICY,
the node's parameters) must equal it (test/ros/test_thread_policy.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from pose_core.bench.report import machine_description

REPO = Path(__file__).resolve().parents[1]
SHM_PROFILE = REPO / "config" / "fastdds_shm.xml"
SCENARIOS = {"idle": 0, "busy1": 1, "busy2": 2}

# name -> (node parameters, environment of the child processes / this one)
POLICIES: dict[str, dict[str, Any]] = {
    "default": {"network_threads": 1, "network_inter_op_threads": 1, "grouping_threads": 1,
                "omp_wait_policy": "passive"},
    "net2": {"network_threads": 2, "network_inter_op_threads": 1, "grouping_threads": 1,
             "omp_wait_policy": "passive"},
    "group2": {"network_threads": 1, "network_inter_op_threads": 1, "grouping_threads": 2,
               "omp_wait_policy": "passive"},
    "libraries": {"network_threads": 0, "network_inter_op_threads": 0, "grouping_threads": 0,
                  "omp_wait_policy": "active"},
}


def start_hogs(count: int) -> list[subprocess.Popen[bytes]]:
    """`count` single-threaded busy loops (each one core at most)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def child_env(policy: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy["omp_wait_policy"]:
        env["OMP_WAIT_POLICY"] = policy["omp_wait_policy"].upper()
    return env


# ----------------------------------------------------------------------------- node
NODE_CHILD = r"""
import json, sys, time
args = json.loads(sys.argv[1])
import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from pose_ros.msg import PersonArray
from pose_ros.pose_node import PoseNode

context = rclpy.Context()
rclpy.init(context=context, domain_id=args["domain"])
overrides = [Parameter(k, value=v) for k, v in args["params"].items()]
pose = PoseNode("pose_node", context=context, parameter_overrides=overrides)
listener = rclpy.create_node("latency_listener", context=context)
latencies = []
def on_people(msg):
    now = listener.get_clock().now().nanoseconds * 1e-9
    latencies.append(now - (msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))
listener.create_subscription(PersonArray, "people", on_people,
                             QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE))
executor = SingleThreadedExecutor(context=context)
executor.add_node(pose); executor.add_node(listener)
end = time.monotonic() + args["warmup"]
while time.monotonic() < end:
    executor.spin_once(timeout_sec=0.05)
stats = pose.stats
stats.clear_latency()
latencies.clear()
counts0 = pose.buffer.counts().dropped
processed0, stale0, received0 = stats.processed, pose.channels[0].stale_dropped, stats.received
t0 = time.monotonic()
while time.monotonic() - t0 < args["seconds"]:
    executor.spin_once(timeout_sec=0.05)
elapsed = time.monotonic() - t0
from pose_ros.diagnostics import LATENCY_STAGES
samples = {k: stats.samples_ms(k) for k in LATENCY_STAGES}
result = {
    "processed_fps": (stats.processed - processed0) / elapsed,
    "received_fps": (stats.received - received0) / elapsed,
    "dropped": pose.buffer.counts().dropped - counts0,
    "stale": pose.channels[0].stale_dropped - stale0,
    "latency_ms": [1e3 * v for v in latencies],
    "stage_ms": samples,
}
print("RESULT " + json.dumps(result), flush=True)
executor.remove_node(pose); executor.remove_node(listener)
pose.destroy_node(); listener.destroy_node()
rclpy.shutdown(context=context)
"""


def run_node(policy: dict[str, Any], args: argparse.Namespace, domain: int) -> dict[str, Any]:
    env = {**child_env(policy), "ROS_DOMAIN_ID": str(domain),
           "FASTDDS_DEFAULT_PROFILES_FILE": str(SHM_PROFILE)}
    camera = subprocess.Popen(
        [sys.executable, "-m", "pose_ros.synthetic_camera", "--ros-args",
         "-p", "width:=640", "-p", "height:=480", "-p", f"rate:={float(args.rate)}",
         "-p", "num_people:=4", "-p", f"loop_frames:={args.loop_frames}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    params = {k: v for k, v in policy.items()}
    params.update({"device": "cpu", "publish_annotated_image": False,
                   "publish_markers": False, "max_frame_age": args.max_frame_age})
    try:
        out = subprocess.run(
            [sys.executable, "-c", NODE_CHILD, json.dumps(
                {"domain": domain, "params": params, "warmup": args.warmup,
                 "seconds": args.seconds})],
            env=env, capture_output=True, text=True, timeout=args.warmup + args.seconds + 120,
        )
    finally:
        stop([camera])
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"error": (out.stdout + out.stderr)[-2000:]}
    raw = json.loads(line[len("RESULT "):])
    lat = np.asarray(raw["latency_ms"])
    stages = {k: float(np.median(v)) for k, v in raw["stage_ms"].items()
              if v and k not in ("total", "age_at_start")}
    total = sum(stages.values()) or 1.0
    age = np.asarray(raw["stage_ms"].get("age_at_start") or [np.nan])
    return {
        "processed_fps": raw["processed_fps"],
        "received_fps": raw["received_fps"],
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
        "p90_ms": float(np.percentile(lat, 90)) if lat.size else None,
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
        "age_at_start_p50_ms": float(np.nanmedian(age)),
        "age_at_start_max_ms": float(np.nanmax(age)),
        "dropped": raw["dropped"],
        "stale": raw["stale"],
        "stage_median_ms": stages,
        "stage_share": {k: v / total for k, v in stages.items()},
    }


# ----------------------------------------------------------------------------- postprocess
def run_postprocess(policy: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        out = subprocess.run(
            [sys.executable, str(REPO / "training" / "benchmark_postprocess.py"),
             "--people", "10", "--skip-reference", "--repeats", str(args.postprocess_repeats),
             "--threads", str(policy["grouping_threads"]), "--json", handle.name],
            env=child_env(policy), capture_output=True, text=True, timeout=600,
        )
        if out.returncode:
            return {"error": out.stderr[-2000:]}
        row = json.loads(Path(handle.name).read_text())["rows"][0]
    times = row["times_ms"]["batched"]
    return {"median_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90))}


# ----------------------------------------------------------------------------- estimator
ESTIMATOR_CHILD = r"""
import json, sys, time, warnings
args = json.loads(sys.argv[1])
warnings.simplefilter("ignore")
import numpy as np
from pose_core import PoseEstimator
from pose_core.data.synthetic import SyntheticVideo
from pose_core.inference.thread_policy import ThreadPolicy
threads = None if args["package_default"] else ThreadPolicy(
    args["network_threads"], args["network_inter_op_threads"], args["grouping_threads"])
estimator = PoseEstimator(backend="auto", flip_test=False, scales=(1.0,), threads=threads)
video = SyntheticVideo(640, 480, 4, 30.0, seed=5)
frames = [video.frame(i * 3).image_bgr for i in range(20)]
for f in frames[:3]:
    estimator(f)
times = []
for r in range(args["frames"]):
    t = time.perf_counter(); estimator(frames[r % len(frames)]); times.append(time.perf_counter() - t)
print("RESULT " + json.dumps([1e3 * t for t in times]), flush=True)
"""


def run_estimator(policy_name: str, policy: dict[str, Any],
                  args: argparse.Namespace) -> dict[str, Any]:
    spec = {**policy, "frames": args.estimator_frames, "package_default": policy_name == "default"}
    out = subprocess.run([sys.executable, "-c", ESTIMATOR_CHILD, json.dumps(spec)],
                         env=child_env(policy), capture_output=True, text=True, timeout=600)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"error": (out.stdout + out.stderr)[-2000:]}
    times = json.loads(line[len("RESULT "):])
    return {"median_ms": statistics.median(times), "p90_ms": float(np.percentile(times, 90))}


# ----------------------------------------------------------------------------- summary
def medians(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return float(statistics.median(values)) if values else None


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Median over runs of each number, per part / policy / scenario."""
    summary: dict[str, Any] = {}
    for part, by_policy in results.items():
        for policy, by_scenario in by_policy.items():
            for scenario, runs in by_scenario.items():
                keys = sorted({k for r in runs for k, v in r.items()
                               if isinstance(v, (int, float))})
                summary.setdefault(part, {}).setdefault(policy, {})[scenario] = {
                    k: medians(runs, k) for k in keys}
    return summary


def goals(summary: dict[str, Any], policy: str) -> dict[str, bool | None]:
    node = summary.get("node", {}).get(policy, {})
    idle, busy = node.get("idle", {}), node.get("busy1", {})
    post = summary.get("postprocess", {}).get(policy, {})
    est = summary.get("estimator", {}).get(policy, {})

    def ok(value: Any) -> bool | None:
        return None if value is None else bool(value)

    def get(d: dict, k: str) -> float | None:
        return d.get(k) if d else None

    checks: dict[str, bool | None] = {}
    if idle:
        checks["idle fps >= 12"] = ok(idle["processed_fps"] >= 12)
        checks["idle p50 <= 80 ms"] = ok(get(idle, "p50_ms") is not None and idle["p50_ms"] <= 80)
        checks["idle p99 <= 300 ms"] = ok(get(idle, "p99_ms") is not None
                                          and idle["p99_ms"] <= 300)
    if idle and busy:
        checks["busy1 p50 <= 2x idle"] = ok(busy["p50_ms"] <= 2 * idle["p50_ms"])
        checks["busy1 p99 <= 600 ms"] = ok(busy["p99_ms"] <= 600)
        checks["busy1 no frame older than 0.5 s"] = ok(busy["age_at_start_max_ms"] <= 500)
    if post.get("idle") and post.get("busy1"):
        checks["postprocess busy1 median <= 2x idle"] = ok(
            post["busy1"]["median_ms"] <= 2 * post["idle"]["median_ms"])
    if est.get("idle") and est.get("busy1"):
        checks["estimator busy1 median <= 2x idle"] = ok(
            est["busy1"]["median_ms"] <= 2 * est["idle"]["median_ms"])
        checks["estimator busy1 p90 <= 3x idle median"] = ok(
            est["busy1"]["p90_ms"] <= 3 * est["idle"]["median_ms"])
    return checks


def choose(summary: dict[str, Any], policies: list[str]) -> str | None:
    """The policy with the lowest busy1 node p99 among those meeting the idle node goals."""
    node = summary.get("node", {})
    eligible = [p for p in policies
                if node.get(p, {}).get("idle", {}).get("processed_fps", 0) >= 12
                and (node[p]["idle"].get("p50_ms") or 1e9) <= 80]
    eligible = eligible or [p for p in policies if node.get(p, {}).get("busy1")]
    if not eligible:
        return None
    return min(eligible, key=lambda p: node[p].get("busy1", {}).get("p99_ms") or 1e9)


def markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [f"Machine: {report['machine']}; {report['settings']}", ""]
    lines += ["Node (camera in its own process, 640x480 at "
              f"{report['settings']['rate']} Hz; medians over {report['settings']['runs']} runs)",
              "", "| policy | scenario | processed fps | p50 ms | p90 ms | p99 ms | age at start "
              "p50 / max ms | dropped | stale | stage shares (convert / pre / net / group / "
              "publish) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for policy, by in s.get("node", {}).items():
        for scenario, r in by.items():
            shares = report["stage_shares"].get(policy, {}).get(scenario, {})
            share_text = " / ".join(f"{100 * shares.get(k, 0):.0f}%" for k in
                                    ("convert", "preprocess", "network", "grouping", "publish"))
            lines.append(
                f"| {policy} | {scenario} | {r.get('processed_fps', 0):.1f} | "
                f"{r.get('p50_ms') or 0:.0f} | {r.get('p90_ms') or 0:.0f} | "
                f"{r.get('p99_ms') or 0:.0f} | {r.get('age_at_start_p50_ms') or 0:.0f} / "
                f"{r.get('age_at_start_max_ms') or 0:.0f} | {r.get('dropped', 0):.0f} | "
                f"{r.get('stale', 0):.0f} | {share_text} |")
    for part, title in (("postprocess", "Post-processing, 10 people, 512x768 (batched path)"),
                        ("estimator", "PoseEstimator(), 640x480 synthetic frames")):
        lines += ["", title, "", "| policy | scenario | median ms | p90 ms | median / idle |",
                  "|---|---|---|---|---|"]
        for policy, by in s.get(part, {}).items():
            idle = by.get("idle", {}).get("median_ms")
            for scenario, r in by.items():
                ratio = r["median_ms"] / idle if idle else float("nan")
                lines.append(f"| {policy} | {scenario} | {r['median_ms']:.1f} | "
                             f"{r['p90_ms']:.1f} | {ratio:.2f} |")
    lines += ["", f"Chosen policy: **{report['chosen']}** "
              f"({POLICIES.get(report['chosen'] or '', {})})", ""]
    for policy, checks in report["goals"].items():
        lines.append(f"- {policy}: " + ", ".join(
            f"{name} {'yes' if good else ('no' if good is False else '?')}"
            for name, good in checks.items()))
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["summary"]
    policies = list(s.get("node", {}))
    scenarios = list(SCENARIOS)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    width = 0.8 / max(len(policies), 1)
    for i, policy in enumerate(policies):
        xs = np.arange(len(scenarios)) + i * width
        by = s["node"][policy]
        axes[0].bar(xs, [by.get(sc, {}).get("p99_ms") or 0 for sc in scenarios], width,
                    label=policy)
        axes[0].scatter(xs, [by.get(sc, {}).get("p50_ms") or 0 for sc in scenarios],
                        color="k", s=12, zorder=3)
        axes[1].bar(xs, [by.get(sc, {}).get("processed_fps") or 0 for sc in scenarios], width)
        post = s.get("postprocess", {}).get(policy, {})
        axes[2].bar(xs, [post.get(sc, {}).get("median_ms") or 0 for sc in scenarios], width)
    for ax, title in zip(axes, ("node stamp->people p99 (bars), p50 (dots), ms",
                                "node processed frames/s", "post-processing median ms")):
        ax.set_xticks(np.arange(len(scenarios)) + 0.4 - width / 2, scenarios)
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS),
                        choices=list(SCENARIOS))
    parser.add_argument("--parts", nargs="+", default=["node", "postprocess", "estimator"],
                        choices=["node", "postprocess", "estimator"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--loop-frames", type=int, default=120)
    parser.add_argument("--max-frame-age", type=float, default=None,
                        help="node max_frame_age (default: the node's default)")
    parser.add_argument("--postprocess-repeats", type=int, default=15)
    parser.add_argument("--estimator-frames", type=int, default=30)
    parser.add_argument("--domain", type=int, default=173)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmark_node_runs/contention.json"))
    parser.add_argument("--plot", type=Path, default=Path("docs/benchmark_node_contention.png"))
    args = parser.parse_args(argv)
    if args.max_frame_age is None:
        from pose_ros.params import NodeParams

        args.max_frame_age = NodeParams().max_frame_age
    results: dict[str, Any] = {}
    shares: dict[str, Any] = {}
    from tqdm import tqdm

    total = args.runs * len(args.scenarios) * len(args.policies) * len(args.parts)
    progress = tqdm(total=total, desc="contention")
    for run in range(args.runs):
        for scenario in args.scenarios:
            hogs = start_hogs(SCENARIOS[scenario])
            time.sleep(1.0)
            try:
                order = args.policies[run % len(args.policies):] + \
                    args.policies[:run % len(args.policies)]
                for policy in order:
                    spec = POLICIES[policy]
                    for part in args.parts:
                        if part == "node":
                            r = run_node(spec, args, args.domain + run)
                        elif part == "postprocess":
                            r = run_postprocess(spec, args)
                        else:
                            r = run_estimator(policy, spec, args)
                        r["run"], r["load1"] = run, os.getloadavg()[0]
                        results.setdefault(part, {}).setdefault(policy, {}).setdefault(
                            scenario, []).append(r)
                        if "error" in r:
                            print(f"{part} {policy} {scenario}: {r['error']}", file=sys.stderr)
                        progress.update(1)
            finally:
                stop(hogs)
    progress.close()
    summary = summarise(results)
    for policy, by in results.get("node", {}).items():
        for scenario, runs in by.items():
            keys = {k for r in runs for k in r.get("stage_share", {})}
            shares.setdefault(policy, {})[scenario] = {
                k: statistics.median(r["stage_share"].get(k, 0) for r in runs
                                     if "stage_share" in r) for k in keys}
    report = {
        "machine": machine_description(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "policies": {p: POLICIES[p] for p in args.policies},
        "results": results,
        "summary": summary,
        "stage_shares": shares,
        "chosen": choose(summary, args.policies),
        "goals": {p: goals(summary, p) for p in args.policies},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    args.out.with_suffix(".md").write_text(text)
    if args.plot:
        plot(report, args.plot)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
