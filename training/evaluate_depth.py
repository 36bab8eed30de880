"""3D keypoints from the synthetic depth camera against exact ground truth.

Frames of a `SyntheticVideo` (640 x 480, 4 walkers) with their aligned depth
(`render_depth`: people at the distance their size gives, floor, wall), in two conditions:
  - clean: noise-free depth;
  - noisy: Gaussian noise sigma = `--noise` x z^2 metres and `--holes` of the pixels without
    a reading (a structured-light / stereo camera);
and two sources of 2D keypoints:
  - ground truth (the visible joints): the depth stage alone;
  - the shipped model with the node's estimator (`build_estimator`: the node's default flip
    test, scale and int8 graph unless overridden; people >= 0.25 as the node publishes them; `--checkpoint` for other weights), each person paired with a
    ground-truth person by an optimal OKS assignment, pairs with OKS >= 0.5 kept (correct
    detections, as COCO counts them): the whole path, 2D errors included.
`pose_core.keypoints_from_depth` gives the positions; errors are Euclidean distances to the
ground-truth 3D keypoints of visible joints that got a position. Reported: median, p90, max,
the count above 0.5 m and the share of visible joints with a position.

Usage:
    nice -n 10 ./env.sh python training/evaluate_depth.py --frames 40 \
        --json docs/depth_runs/depth.json --plot docs/depth_errors.png
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform

import numpy as np
from tqdm import tqdm

from pose_core.data.synthetic import SyntheticVideo
from pose_core.data.synthetic.depth import render_depth
from pose_core.depth import keypoints_from_depth
from pose_core.keypoint_specs import COCO_17
from pose_core.tracking import PoseTracker
from pose_ros.camera_channel import tracker_config
from pose_ros.estimator_factory import build_estimator
from pose_ros.params import NodeParams


def match_to_truth(found: np.ndarray, truth: np.ndarray, visible: np.ndarray,
                   areas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(found index, ground-truth index) pairs: an optimal assignment on OKS (COCO sigmas,
    silhouette areas), pairs with OKS >= 0.5 kept (a correct detection, as COCO counts it)."""
    from scipy.optimize import linear_sum_assignment

    if not len(found) or not len(truth):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    variances = (2 * np.asarray(COCO_17.sigmas)) ** 2
    d2 = ((found[:, None, :, :2] - truth[None, :, :, :2]) ** 2).sum(-1)
    e = np.exp(-d2 / variances / (areas[None, :, None] + np.spacing(1)) / 2)
    oks = (e * visible[None]).sum(-1) / np.maximum(visible.sum(-1), 1)[None]
    rows, cols = linear_sum_assignment(-oks)
    keep = oks[rows, cols] >= 0.5
    return rows[keep], cols[keep]


def errors_of(keypoints, pairs, depth, visible) -> tuple[list[float], int, int]:
    """Errors of the paired people's visible joints that got a position, how many got one,
    and how many visible joints the paired people have."""
    positions, valid = keypoints_from_depth(keypoints, depth.depth, depth.camera_matrix)
    errors, with_position, seen = [], 0, 0
    for p, g in zip(*pairs):
        use = valid[p] & visible[g]
        errors.extend(np.linalg.norm(positions[p, use] - depth.positions[g, use], axis=1))
        with_position += int(use.sum())
        seen += int(visible[g].sum())
    return errors, with_position, seen


def summary(errors: list[float], with_position: int, visible: int) -> dict[str, float]:
    values = np.asarray(errors)
    return {"median_m": float(np.median(values)), "p90_m": float(np.percentile(values, 90)),
            "max_m": float(values.max()), "above_0.5m": int((values > 0.5).sum()),
            "joints": int(values.size), "share_with_position": with_position / max(visible, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--step", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.002)
    parser.add_argument("--holes", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None,
                        help="other weights for the shipped network (default: the shipped file)")
    parser.add_argument("--flip-test", action=argparse.BooleanOptionalAction,
                        default=NodeParams().flip_test,
                        help="the node's flip_test (default: the node's default)")
    parser.add_argument("--flip-scale", type=float, default=NodeParams().flip_scale,
                        help="the node's flip_scale (default: the node's default)")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0],
                        help="the node's scales (default: the node's default, one scale)")
    parser.add_argument("--node-tracker", action="store_true",
                        help="pass the model's people through the node's tracker (its joint "
                        "gate gives joints that leapt score 0, so no position), frame by frame")
    parser.add_argument("--json", type=pathlib.Path, default=None)
    parser.add_argument("--plot", type=pathlib.Path, default=None)
    args = parser.parse_args()
    video = SyntheticVideo(640, 480, num_people=4, fps=30.0, seed=args.seed)
    estimator = build_estimator(NodeParams(
        checkpoint=args.checkpoint or "", flip_test=args.flip_test, flip_scale=args.flip_scale,
        scales=tuple(args.scales)))
    tracker = (PoseTracker(tracker_config(NodeParams(), COCO_17)) if args.node_tracker
               else None)
    errors: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    detections = [0, 0]  # people detected (OKS >= 0.5), people in the frames
    for index in tqdm(range(0, args.frames * args.step, args.step), desc="frames"):
        layout, scene = video.layout(index), video.frame(index)
        visible = scene.keypoints[:, :, 2] == 2
        people = estimator(scene.image_bgr).with_min_score(0.25)
        if tracker is not None:
            people = tracker.update(people, index / video.fps, keep_untracked=True,
                                    image=scene.image_bgr)
        found = people.keypoints
        gt_2d = scene.keypoints.copy()
        gt_2d[:, :, 2] = visible
        detected = match_to_truth(found, scene.keypoints, scene.keypoints[:, :, 2] > 0,
                                  scene.areas.astype(np.float64))
        detections[0] += len(detected[0])
        detections[1] += len(scene.keypoints)
        for condition, noise, holes in (("clean", 0.0, 0.0), ("noisy", args.noise, args.holes)):
            depth = render_depth(layout, scene, noise_m=noise, hole_fraction=holes, seed=index)
            everyone = (np.arange(len(gt_2d)), np.arange(len(gt_2d)))
            for source, keypoints, pairs in (
                ("ground-truth 2D", gt_2d, everyone),
                ("shipped model", found, detected),
            ):
                key = f"{condition}, {source}"
                got, with_position, seen = errors_of(keypoints, pairs, depth, visible)
                errors.setdefault(key, []).extend(got)
                counts.setdefault(key, [0, 0])
                counts[key][0] += with_position
                counts[key][1] += seen
    report = {"machine": platform.processor() or platform.machine(), "frames": args.frames,
              "step": args.step, "node_tracker": args.node_tracker,
              "noise_m_at_1m": args.noise, "holes": args.holes,
              "people_detected": detections[0], "people": detections[1],
              "results": {k: summary(v, *counts[k]) for k, v in errors.items()}}
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.6))
        for key, values in errors.items():
            values = np.sort(np.asarray(values)) * 100
            ax.plot(values, np.linspace(0, 1, len(values)), label=key)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("3D keypoint error (cm)")
        ax.set_ylabel("share of keypoints")
        ax.axvline(2, color="grey", linestyle=":")
        ax.axvline(5, color="grey", linestyle="--")
        ax.legend(fontsize=7)
        ax.set_title("keypoints_from_depth on the synthetic depth camera")
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)


if __name__ == "__main__":
    main()
