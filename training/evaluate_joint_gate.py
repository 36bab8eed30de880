"""The tracker's joint gate (`TrackerConfig.joint_gate_speed`) on walking clips: what it removes.

For each clip (`pose-synth --video`'s world: 640 x 480, `--people` walkers, a seed and a frame
rate), the node's estimator (shipped model, node defaults) runs once; the node's tracker
(`tracker_config` of the node parameters, `track_publish_untracked` as the node) then runs
with each gate speed of `--speeds` (0 = off) and its output is scored like the demo
(`FrameScorer`, the node's `keypoint_min_score`): people recall / precision, wrong-person
edges, and the drawn joints split into right-person joints (on the ground-truth person that
owns most of the skeleton's joints) and other-person joints; and the tracker's median time per
frame.

    ./env.sh python training/evaluate_joint_gate.py --clips 500:10 501:10 502:10 500:5 500:20 \\
        --speeds 0 2 3 4 --json docs/tracking_runs/joint_gate.json --plot docs/joint_gate.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import pickle
import platform
import statistics
import time

import matplotlib
import numpy as np
from tqdm import tqdm

from pose_core.data.synthetic import SyntheticVideo
from pose_core.evaluation import FrameScorer
from pose_core.tracking import PoseTracker
from pose_ros.camera_channel import tracker_config
from pose_ros.estimator_factory import network_precision
from pose_ros.params import NodeParams
from pose_ros.pose_node import build_estimator

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def joint_owners(scorer: FrameScorer, found: np.ndarray, scene) -> tuple[int, int]:
    """(right-person, other-person) drawn joints (score above the scorer's
    `keypoint_min_score`): each joint's owner as `FrameScorer.joint_owners` gives it, a
    skeleton's person the owner of most of its joints."""
    owner = scorer.joint_owners(found, scene.keypoints, scene.areas)
    owner = np.where(np.asarray(found)[..., 2] > scorer.keypoint_min_score, owner, -1)
    right = other = 0
    for row in owner:
        owned = row[row >= 0]
        if not len(owned):
            continue
        main = np.bincount(owned).argmax()
        right += int((owned == main).sum())
        other += int((owned != main).sum())
    return right, other


def detections(seed: int, fps: float, args: argparse.Namespace, estimator, params) -> list:
    """(scene, people the node publishes) per frame; the people are cached (`--cache`), the
    scenes rendered again (the same seed gives the same frames). The cache name holds the
    estimator settings, so changed node defaults never reuse another setting's people."""
    settings = (f"flip{params.flip_scale:g}" if params.flip_test else "noflip") + \
        f"_{network_precision(params, 'cpu')}"
    path = args.cache / f"gate_seed{seed}_fps{fps:g}_frames{args.frames}_{settings}.pkl"
    video = SyntheticVideo(640, 480, args.people, fps=fps, seed=seed)
    scenes = [video.frame(index) for index in tqdm(range(args.frames), desc=f"render {seed}")]
    if path.exists():
        return list(zip(scenes, pickle.loads(path.read_bytes())))
    found = [estimator(scene.image_bgr).with_min_score(params.person_min_score)
             for scene in tqdm(scenes, desc=f"detect seed {seed} at {fps:g} fps")]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(found))
    return list(zip(scenes, found))


def score(found: list, fps: float, speed: float, spec, params: NodeParams) -> dict:
    tracker = PoseTracker(tracker_config(
        dataclasses.replace(params, track_joint_gate_speed=speed), spec))
    scorer = FrameScorer(spec, keypoint_min_score=params.keypoint_min_score)
    right = other = 0
    seconds = []
    for index, (scene, poses) in enumerate(found):
        started = time.perf_counter()
        out = tracker.update(poses, index / fps, keep_untracked=params.track_publish_untracked,
                             image=scene.image_bgr)
        seconds.append(time.perf_counter() - started)
        scorer.score(out.keypoints, scene.keypoints, scene.areas)
        r, o = joint_owners(scorer, out.keypoints, scene)
        right, other = right + r, other + o
    summary = scorer.summary()
    return {"recall": summary["recall"], "precision": summary["precision"],
            "wrong_edge_fraction": summary["wrong_edge_fraction"],
            "edges_drawn": summary["edges_drawn"], "right_person_joints": right,
            "other_person_joints": other,
            "tracker_ms_median": 1e3 * statistics.median(seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=["500:10"], help="SEED:FPS entries")
    parser.add_argument("--speeds", type=float, nargs="+", default=[0.0, 2.0, 3.0, 4.0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--cache", type=pathlib.Path, default=pathlib.Path("outputs/joint_gate"))
    parser.add_argument("--json", type=pathlib.Path, required=True)
    parser.add_argument("--plot", type=pathlib.Path)
    args = parser.parse_args(argv)

    params = NodeParams()
    estimator = build_estimator(params)
    spec = estimator.keypoint_spec
    rows = []
    for clip in args.clips:
        seed, fps = int(clip.split(":")[0]), float(clip.split(":")[1])
        found = detections(seed, fps, args, estimator, params)
        for speed in args.speeds:
            row = {"seed": seed, "fps": fps, "gate_speed": speed,
                   **score(found, fps, speed, spec, params)}
            rows.append(row)
            print(f"seed {seed} {fps:g} fps gate {speed:g}: recall {row['recall']:.3f} "
                  f"precision {row['precision']:.3f} wrong edges "
                  f"{100 * row['wrong_edge_fraction']:.2f} % of {row['edges_drawn']}, joints "
                  f"right {row['right_person_joints']} other {row['other_person_joints']}, "
                  f"tracker {row['tracker_ms_median']:.2f} ms / frame")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "command": "python training/evaluate_joint_gate.py " + " ".join(argv or []),
        "machine": platform.processor() or platform.machine(), "frames": args.frames,
        "people": args.people, "node_defaults": {"gate_speed": params.track_joint_gate_speed},
        "rows": rows}, indent=1))
    if args.plot:
        plot(rows, args.plot)
    return 0


def plot(rows: list[dict], path: pathlib.Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for clip in sorted({(r["seed"], r["fps"]) for r in rows}):
        mine = [r for r in rows if (r["seed"], r["fps"]) == clip]
        speeds = [r["gate_speed"] for r in mine]
        base = mine[0]["right_person_joints"]
        left.plot(speeds, [100 * r["wrong_edge_fraction"] for r in mine], "o-",
                  label=f"seed {clip[0]}, {clip[1]:g} fps")
        right.plot(speeds, [100 * r["right_person_joints"] / base for r in mine], "o-")
    left.set(xlabel="joint gate speed (person sizes / s; 0 = off)",
             ylabel="wrong-person edges (% of drawn)", title="wrong-person edges")
    right.set(xlabel="joint gate speed (person sizes / s; 0 = off)",
              ylabel="right-person joints drawn (% of gate off)", title="joints kept")
    left.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
