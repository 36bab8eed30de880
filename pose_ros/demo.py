"""The main job: a synthetic camera and the pose node together, live, with saved results.

    ./env.sh python -m pose_ros.demo --duration 30 --out outputs/demo

Runs the synthetic-world camera, the pose node (shipped model by default) and a small monitor
node in one process on a MultiThreadedExecutor (or, with `--two-processes`, the camera in a
child process so images really cross DDS between processes). Every second it prints a summary
line (camera and people rates, stamp -> people latency, people found, dropped / rejected frames);
annotated frames are saved to `--out` (`frame_<index>.jpg`, one every `--save-period` seconds)
with `contact_sheet.jpg` (the saved frames side by side) and `summary.json`.

Evaluation: with the camera in this process (the default), every PersonArray is scored against
the exact ground truth of the frame it answers (`pose_ros.demo_evaluation`, on
`pose_core.evaluation.FrameScorer`: people recall and precision at OKS >= 0.5, keypoint error,
wrong-person edges among the drawn ones); the totals are printed at the end and written to
`summary.json` under "evaluation". `--min-recall`, `--min-precision` and `--max-wrong-edges`
turn them into an exit status (3 when one is missed).

It stops after `--duration` seconds (default 30) or on Ctrl-C and exits 0 (2 when the model
cannot be loaded). `--eval-frames N` instead stops as soon as N PersonArrays are scored (exactly
N enter the totals); `--duration` is then only a time limit (default 600 s; whichever comes
first), and reaching it with fewer than N frames scored is a missed goal (exit 3):

    ./env.sh python -m pose_ros.demo --eval-frames 200 --out outputs/demo_eval200 \
        --min-recall 0.95 --min-precision 0.90 --max-wrong-edges 0.01

Throughput (measured on the 2-core CPU, docs/ros.md): rendering a 640x480 frame of the synthetic
video takes ~3-7 ms, so the in-process camera keeps its `--rate` and the node processes frames as
fast as its own network and grouping allow (10 frames/s at the default rate 10, ~17 at rate 30).
`--loop-frames N` replays the first N frames from memory (the camera's `loop_frames`), which
makes a camera tick cost <1 ms; without it every frame is new, as an evaluation wants.

Depth: `--depth` makes the camera also publish its aligned depth and depth CameraInfo
(`publish_depth`) and runs the node with `depth: true`; the demo counts the `people_3d`
messages and keypoint positions and, with the evaluation, prints the median 3D keypoint error
against the camera's exact 3D truth:

    ./env.sh python -m pose_ros.demo --depth --eval-frames 50 --out outputs/demo_depth

DDS: the recommended profile (`config/fastdds_shm.xml`) is used when found (an explicit
`--dds-profile`, the FASTDDS_DEFAULT_PROFILES_FILE variable, or the installed package's share
directory); the demo works without it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections import deque
from pathlib import Path

import cv2
import numpy as np
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image

from pose_core.default_model import SyntheticModelWarning
from pose_core.evaluation.frame_scoring import FrameScorer
from pose_core.visualization import contact_sheet
from pose_ros.demo_evaluation import (
    DemoEvaluation,
    evaluation_3d_line,
    evaluation_line,
    missed_goals,
)
from pose_ros.diagnostics import status_values
from pose_ros.image_conversion import ImageRejected, image_to_bgr
from pose_ros.msg import PersonArray
from pose_ros.params import NodeParams
from pose_ros.pose_node import PoseNode
from pose_ros.synthetic_camera import MAX_CACHED_FRAMES, SyntheticCameraNode

__all__ = ["DemoMonitor", "find_dds_profile", "main"]

PROFILE_VARIABLE = "FASTDDS_DEFAULT_PROFILES_FILE"
PROFILE_NAME = "fastdds_shm.xml"
DEFAULT_DURATION_S = 30.0
EVAL_TIME_LIMIT_S = 600.0  # --eval-frames without --duration: a limit, not the stop rule


def find_dds_profile(explicit: str | None) -> Path | None:
    """The DDS profile to use: `explicit`, else the environment's, else the installed one."""
    if explicit:
        return Path(explicit)
    if os.environ.get(PROFILE_VARIABLE):
        return Path(os.environ[PROFILE_VARIABLE])
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        candidate = Path(prefix) / "share" / "pose_ros" / "config" / PROFILE_NAME
        if prefix and candidate.is_file():
            return candidate
    return None


class DemoMonitor(Node):
    """Subscribes people, annotated images and diagnostics; keeps the numbers of the summary.

    Args:
        out_dir: where annotated frames are saved.
        save_period: seconds between saved frames.
        evaluation: scores each PersonArray against the in-process camera's ground truth
            (None: no scoring, e.g. the camera runs in another process).
        depth: also subscribe `people_3d` and count its messages and keypoint positions.
        **kwargs: passed to `rclpy.node.Node`.
    """

    def __init__(self, out_dir: Path, save_period: float,
                 evaluation: DemoEvaluation | None = None, depth: bool = False,
                 **kwargs: object) -> None:
        super().__init__("pose_demo_monitor", **kwargs)
        self.out_dir = out_dir
        self.save_period = save_period
        self.evaluation = evaluation
        self._lock = threading.Lock()
        self.latencies: deque[float] = deque(maxlen=300)
        self.all_latencies: list[float] = []
        self.people_times: deque[float] = deque(maxlen=300)
        self.people_count = 0
        self.people_messages = 0
        self.saved: list[str] = []
        self._last_save = -1e9
        self.diagnostics: dict[str, str] = {}
        self.depth = depth
        self.people_3d_messages = 0
        self.positions_3d = 0  # keypoints with a 3D position, all people_3d messages
        reliable = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        self.create_subscription(PersonArray, "people", self._on_people, reliable)
        if depth:
            self.create_subscription(PersonArray, "people_3d", self._on_people_3d, reliable)
        self.create_subscription(Image, "annotated_image", self._on_annotated, reliable)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, reliable)

    def _on_people(self, msg: PersonArray) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        with self._lock:
            self.latencies.append(now - stamp)
            self.all_latencies.append(now - stamp)
            self.people_times.append(time.monotonic())
            self.people_count = len(msg.people)
            self.people_messages += 1
        if self.evaluation is not None:
            self.evaluation.score(msg)

    def _on_people_3d(self, msg: PersonArray) -> None:
        positions = sum(k.has_position for person in msg.people for k in person.keypoints)
        with self._lock:
            self.people_3d_messages += 1
            self.positions_3d += positions
        if self.evaluation is not None:
            self.evaluation.score_3d(msg)

    def _on_annotated(self, msg: Image) -> None:
        now = time.monotonic()
        if now - self._last_save < self.save_period:
            return
        try:
            image = image_to_bgr(msg)
        except ImageRejected:
            return
        self._last_save = now
        path = self.out_dir / f"frame_{len(self.saved):05d}.jpg"
        cv2.imwrite(str(path), image)
        with self._lock:
            self.saved.append(path.name)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = status_values(msg, "pose estimation")
        if values:
            with self._lock:
                self.diagnostics = values

    def summary(self) -> dict[str, float | int | str]:
        """Numbers for the live line: people rate, latency percentiles, counts."""
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self.people_times if now - t <= 2.0]
            latencies = np.asarray(self.latencies, np.float64) * 1e3
            diagnostics = dict(self.diagnostics)
            people = self.people_count
            messages = self.people_messages
            depth = ({"people_3d_messages": self.people_3d_messages,
                      "positions_3d": self.positions_3d} if self.depth else {})
        rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 2 else 0.0
        return {
            "people_rate_hz": rate,
            "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies.size else 0.0,
            "latency_p90_ms": float(np.percentile(latencies, 90)) if latencies.size else 0.0,
            "people_last": people,
            "people_messages": messages,
            "input_rate_hz": float(diagnostics.get("input_rate_hz", 0.0)),
            "frames_dropped": int(diagnostics.get("frames_dropped", 0)),
            "frames_rejected": int(diagnostics.get("frames_rejected", 0)),
            "device": diagnostics.get("device", "?"),
            **depth,
        }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pose_ros.demo",
        description="Synthetic camera + pose node, live summary, annotated frames saved.",
    )
    parser.add_argument(
        "--duration", type=float, default=None,
        help=f"seconds (0 = until Ctrl-C); default {DEFAULT_DURATION_S:.0f}, or with "
             f"--eval-frames a time limit of {EVAL_TIME_LIMIT_S:.0f}")
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"), help="output folder")
    parser.add_argument("--rate", type=float, default=10.0, help="camera frames per second")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--people", type=int, default=4, help="people in the synthetic scene")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="", help="model name ('' = the shipped default)")
    parser.add_argument("--checkpoint", default="", help="checkpoint ('' = shipped weights)")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda")
    parser.add_argument("--max-input-size", type=int, default=0, help="0 = model's own size")
    parser.add_argument("--save-period", type=float, default=1.0, help="seconds between saves")
    parser.add_argument("--loop-frames", type=int, default=0,
                        help=f"camera loops over its first N frames, replayed from memory when "
                             f"N <= {MAX_CACHED_FRAMES} (0 = every frame new)")
    parser.add_argument("--eval-frames", type=int, default=0,
                        help="stop once N PersonArrays are scored (0 = run for --duration)")
    parser.add_argument("--two-processes", action="store_true",
                        help="run the camera in a child process (images cross DDS)")
    parser.add_argument("--dds-profile", default=None, help="Fast DDS XML profile")
    parser.add_argument("--depth", action="store_true",
                        help="the camera also publishes aligned depth, the node people_3d; "
                             "counted, and scored against the exact 3D truth")
    parser.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                        type=_node_parameter,
                        help="any other pose node parameter (docs/ros.md), as ros2 run's "
                             "-p name:=value (YAML values: 0.5, true, [1.0, 1.5]); repeatable")
    parser.add_argument("--min-recall", type=float, default=0.0,
                        help="exit 3 when people recall (OKS >= 0.5) ends below this")
    parser.add_argument("--min-precision", type=float, default=0.0,
                        help="exit 3 when people precision ends below this")
    parser.add_argument("--max-wrong-edges", type=float, default=1.0,
                        help="exit 3 when the wrong-person share of drawn edges ends above this")
    args = parser.parse_args(argv)
    if args.eval_frames < 0 or args.loop_frames < 0:
        parser.error("--eval-frames and --loop-frames must be >= 0")
    if args.eval_frames and args.two_processes:
        parser.error("--eval-frames needs the camera's ground truth: not with --two-processes")
    if args.duration is None:
        args.duration = EVAL_TIME_LIMIT_S if args.eval_frames else DEFAULT_DURATION_S
    return args


def _pose_overrides(args: argparse.Namespace) -> list[Parameter]:
    overrides = [
        Parameter("device", value=args.device),
        Parameter("checkpoint", value=args.checkpoint),
        Parameter("max_input_size", value=args.max_input_size),
        Parameter("publish_annotated_image", value=True),
    ]
    if args.model:
        overrides.append(Parameter("model", value=args.model))
    if args.depth:
        overrides.append(Parameter("depth", value=True))
    return overrides + list(args.param)


def _node_parameter(text: str) -> Parameter:
    """'name:=value' (value read as YAML, as `ros2 run ... -p` reads it) -> a Parameter."""
    name, separator, value = text.partition(":=")
    if not separator or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME:=VALUE, got {text!r}")
    name, value = name.strip(), yaml.safe_load(value)
    default = getattr(NodeParams(), name, None)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)  # 0 for a float parameter, as a user would write it
    return Parameter(name, value=value)


def _camera_overrides(args: argparse.Namespace) -> list[Parameter]:
    depth = [Parameter("publish_depth", value=True)] if args.depth else []
    return depth + [
        Parameter("width", value=args.width),
        Parameter("height", value=args.height),
        Parameter("rate", value=float(args.rate)),
        Parameter("num_people", value=args.people),
        Parameter("seed", value=args.seed),
        Parameter("loop_frames", value=args.loop_frames),
    ]


def _camera_process(args: argparse.Namespace) -> subprocess.Popen[bytes]:
    ros_args = []
    for parameter in _camera_overrides(args):
        ros_args += ["-p", f"{parameter.name}:={parameter.value}"]
    return subprocess.Popen(
        [sys.executable, "-m", "pose_ros.synthetic_camera", "--ros-args", *ros_args],
        env=dict(os.environ),
    )


def _wait_for_camera(
    executor: MultiThreadedExecutor, monitor: DemoMonitor, camera: subprocess.Popen[bytes],
    timeout: float = 120.0,
) -> bool:
    """Spin until the first people message of the child camera's frames (it is fully up then).

    Stopping a child that is still importing would print a KeyboardInterrupt traceback, and the
    duration should count frames, not start-up.
    """
    print("waiting for the camera process's first frame", flush=True)
    deadline = time.monotonic() + timeout
    while monitor.people_messages == 0:
        if camera.poll() is not None:
            print(f"the camera process exited with status {camera.returncode}", file=sys.stderr)
            return False
        if time.monotonic() > deadline:
            print(f"no frame from the camera process within {timeout:.0f} s", file=sys.stderr)
            return False
        executor.spin_once(timeout_sec=0.05)
    return True


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns the exit status."""
    profile = find_dds_profile(args.dds_profile)
    if profile is not None:
        os.environ[PROFILE_VARIABLE] = str(profile)  # read when the first participant starts
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"DDS profile: {profile or 'Fast DDS defaults (no profile found)'}", flush=True)
    camera_process = _camera_process(args) if args.two_processes else None
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = MultiThreadedExecutor(num_threads=3, context=context)
    nodes: list[Node] = []
    started = time.monotonic()
    status = 0
    try:
        if camera_process is None:
            camera = SyntheticCameraNode(
                context=context, parameter_overrides=_camera_overrides(args)
            )
            nodes.append(camera)
        try:
            with warnings.catch_warnings():
                # the demo's camera is the synthetic world the shipped model was trained on:
                # its real-photograph warning does not apply here
                warnings.simplefilter("ignore", SyntheticModelWarning)
                pose = PoseNode(context=context, parameter_overrides=_pose_overrides(args))
        except ValueError as error:
            print(f"invalid parameters: {error}", file=sys.stderr)
            return 2
        nodes.append(pose)
        if not pose.active:
            print("the pose node could not be configured (see the log above)", file=sys.stderr)
            return 2
        evaluation = None
        if camera_process is None:
            scorer = FrameScorer(pose.keypoint_spec,
                                 keypoint_min_score=float(pose.params.keypoint_min_score))
            evaluation = DemoEvaluation(nodes[0], scorer, max_frames=args.eval_frames)
        monitor = DemoMonitor(args.out, args.save_period, evaluation=evaluation,
                              depth=args.depth, context=context)
        nodes.append(monitor)
        for node in nodes:
            executor.add_node(node)
        if camera_process is not None and not _wait_for_camera(executor, monitor, camera_process):
            return 2
        limit = f"{args.duration:.0f} s" if args.duration > 0 else "no time limit"
        goal = (f"until {args.eval_frames} frames are scored ({limit})" if args.eval_frames
                else f"for {limit}")
        print(f"running {goal}, saving to {args.out}/ (Ctrl-C stops)", flush=True)
        if evaluation is not None and 0 < args.loop_frames < args.eval_frames:
            print(f"note: the camera loops over {args.loop_frames} frames, so the evaluation "
                  f"scores some frames more than once", flush=True)
        started = time.monotonic()  # the clock starts once the model is loaded
        next_print = started + 1.0
        while args.duration <= 0 or time.monotonic() - started < args.duration:
            if evaluation is not None and evaluation.complete:
                break
            executor.spin_once(timeout_sec=0.05)
            if time.monotonic() >= next_print:
                next_print = max(next_print + 1.0, time.monotonic())
                s = monitor.summary()
                print(
                    f"t={time.monotonic() - started:5.1f}s  camera {s['input_rate_hz']:5.1f} fps"
                    f"  people {s['people_rate_hz']:5.1f} fps  latency p50 "
                    f"{s['latency_p50_ms']:6.1f} ms p90 {s['latency_p90_ms']:6.1f} ms"
                    f"  people {s['people_last']:2d}  dropped {s['frames_dropped']}"
                    f"  rejected {s['frames_rejected']}  saved {len(monitor.saved)}"
                    + (f"  scored {evaluation.frames_scored}/{args.eval_frames}"
                       if evaluation is not None and args.eval_frames else "")
                    + (f"  people_3d {s['people_3d_messages']} ({s['positions_3d']} positions)"
                       if args.depth else ""),
                    flush=True,
                )
    except (KeyboardInterrupt, ExternalShutdownException):
        print("stopped", flush=True)
    finally:
        if nodes and isinstance(nodes[-1], DemoMonitor):
            status = _write_summary(args, nodes[-1], time.monotonic() - started, profile)
        for node in reversed(nodes):  # the pose node's worker stops before the executor
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown(timeout_sec=2.0)
        if context.ok():
            rclpy.shutdown(context=context)
        if camera_process is not None:
            camera_process.send_signal(signal.SIGINT)  # its main() exits cleanly on Ctrl-C
            try:
                camera_process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                camera_process.kill()
                camera_process.wait()
    return status


def _write_summary(
    args: argparse.Namespace, monitor: DemoMonitor, seconds: float, profile: Path | None
) -> int:
    """Write summary.json and the contact sheet, print the totals; the exit status (0, or 3
    when an evaluation goal of the arguments is missed)."""
    latencies = np.asarray(monitor.all_latencies, np.float64) * 1e3
    evaluation = monitor.evaluation.summary() if monitor.evaluation is not None else None
    processed_rate = monitor.people_messages / max(seconds, 1e-6)
    summary = {
        **monitor.summary(),
        "seconds": round(seconds, 2),
        "people_messages": monitor.people_messages,
        "mean_people_rate_hz": processed_rate,
        "latency_ms_p50_all": float(np.percentile(latencies, 50)) if latencies.size else None,
        "latency_ms_p90_all": float(np.percentile(latencies, 90)) if latencies.size else None,
        "saved_frames": monitor.saved,
        "dds_profile": str(profile) if profile else None,
        "evaluation": evaluation,
        "arguments": {k: str(v) for k, v in vars(args).items()},
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    if monitor.saved:
        images = [cv2.imread(str(args.out / name)) for name in monitor.saved[:16]]
        cv2.imwrite(str(args.out / "contact_sheet.jpg"),
                    contact_sheet([i for i in images if i is not None]))
    print(
        f"done: {monitor.people_messages} PersonArray in {seconds:.1f} s "
        f"({processed_rate:.1f} processed frames/s), {len(monitor.saved)} frames saved to "
        f"{args.out}/"
    )
    if args.depth:
        print(f"people_3d: {summary['people_3d_messages']} messages, "
              f"{summary['positions_3d']} keypoint positions")
        if evaluation is not None and evaluation.get("frames_3d"):
            print(evaluation_3d_line(evaluation))
    if evaluation is None:
        print("evaluation: not scored (the camera runs in another process)")
        return 0
    if args.eval_frames:
        print(f"frames scored: {evaluation['frames']} of {args.eval_frames} asked")
    if not evaluation["frames"]:
        print("evaluation: no frame scored")
        return 3 if args.min_recall > 0 or args.eval_frames else 0
    print(evaluation_line(evaluation))
    missed = missed_goals(evaluation, args.min_recall, args.min_precision,
                          args.max_wrong_edges, args.eval_frames)
    if missed:
        print(f"evaluation goals missed: {', '.join(missed)}")
        return 3
    return 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m pose_ros.demo`."""
    sys.exit(run(_parse(argv)))


if __name__ == "__main__":
    main()
