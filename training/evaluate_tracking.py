"""Tracking and smoothing on synthetic video, scored with motmetrics (MOTA, IDF1, id switches).

For each number of walkers, a `SyntheticVideo` (640 x 480, 30 fps) is run through
  - detections: the shipped model with the node's estimator settings (`build_estimator` of the
    default `NodeParams`: its flip test, scale, int8 graph on the CPU; people scoring >= 0.25
    as the node's `person_min_score`) or the
    ground truth (every person with >= 4 joints in the frame, joint score 1 where the joint is
    in the frame), so the tracker's own share shows;
  - `pose_core.PoseTracker` (defaults);
and scored per frame: ground-truth people with >= 4 joints in the frame against the published
people, distance 1 - OKS (COCO sigmas, the person's silhouette area), matches up to distance
0.5 (OKS >= 0.5), accumulated by `motmetrics.MOTAccumulator`.

Smoothing (One-Euro, `PoseTracker(smoothing=True)`) is scored on two sequences of the shipped
model's people:
  - static: one rendered scene repeated with fresh sensor noise per frame (Gaussian, sigma 6
    grey levels): the frame-to-frame jitter of each tracked joint (mean |x_t - x_{t-1}|);
  - moving: the walking video: the error of joints that move more than 2 px a frame.

Usage:
    nice -n 10 ./env.sh python training/evaluate_tracking.py --frames 300 --walkers 2 4 8 \
        --json docs/tracking_runs/tracking.json --plot docs/tracking.png
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import motmetrics as mm
import numpy as np
from tqdm import tqdm

from pose_core.data.synthetic import SyntheticVideo, difficulty_config, render_scene
from pose_core.default_model import DEFAULT_MODEL
from pose_core.keypoint_specs import COCO_17
from pose_core.structures import Poses
from pose_core.tracking import PoseTracker, TrackerConfig
from pose_core.tracking.similarity import oks_matrix
from pose_ros.estimator_factory import build_estimator
from pose_ros.params import NodeParams

MIN_JOINTS = 4
MIN_SCORE = 0.1  # joints counted in matching and jitter
PERSON_MIN_SCORE = 0.25  # the node's person_min_score: what its tracker receives
FPS = 30.0


def present(scene) -> np.ndarray:
    """Ground-truth people with at least MIN_JOINTS joints in the frame."""
    return (scene.keypoints[:, :, 2] > 0).sum(axis=1) >= MIN_JOINTS


def gt_poses(scene) -> Poses:
    keep = present(scene)
    keypoints = scene.keypoints[keep].copy()
    keypoints[:, :, 2] = (keypoints[:, :, 2] > 0).astype(np.float32)
    return Poses(keypoints, np.ones(int(keep.sum()), np.float32))


def oks_distance(scene, hyp: Poses) -> np.ndarray:
    """(G, H) 1 - OKS with the COCO definition (area = the silhouette's), NaN above 0.5."""
    keep = present(scene)
    gt = scene.keypoints[keep].astype(np.float64)
    if not len(gt) or not len(hyp):
        return np.zeros((len(gt), len(hyp)))
    sigmas = np.asarray(COCO_17.sigmas)
    variances = (2 * sigmas) ** 2
    d2 = ((gt[:, None, :, :2] - hyp.keypoints[None, :, :, :2]) ** 2).sum(-1)
    area = scene.areas[keep].astype(np.float64)[:, None, None] + np.spacing(1)
    visible = gt[:, :, 2] > 0
    e = np.exp(-d2 / variances / area / 2)
    oks = (e * visible[:, None]).sum(-1) / np.maximum(visible.sum(-1), 1)[:, None]
    distance = 1.0 - oks
    distance[distance > 0.5] = np.nan
    return distance


def detect(video, frames: int, estimator, person_min_score: float = PERSON_MIN_SCORE) -> list:
    """(scene, detections) per frame: the shipped model's people scoring at least
    `person_min_score` (the node's filter before its tracker) or the ground truth."""
    out = []
    for index in tqdm(range(frames), desc="detect", leave=False):
        scene = video.frame(index)
        if estimator is None:
            out.append((scene, gt_poses(scene)))
        else:
            out.append((scene, estimator(scene.image_bgr).with_min_score(person_min_score)))
    return out


def run_tracking(detections: list, smoothing: bool = False):
    """(motmetrics accumulator, per-frame (scene, published poses))."""
    tracker = PoseTracker(TrackerConfig(smoothing=smoothing))
    accumulator = mm.MOTAccumulator(auto_id=True)
    history = []
    for index, (scene, found) in enumerate(detections):
        published = tracker.update(found, index / FPS, image=scene.image_bgr)
        accumulator.update(
            [int(i) for i in scene.ids[present(scene)]],
            [int(i) for i in published.ids],
            oks_distance(scene, published),
        )
        history.append((scene, published))
    return accumulator, history


def mot_summary(accumulator, frames: int) -> dict[str, float]:
    metrics = mm.metrics.create().compute(
        accumulator, metrics=["mota", "idf1", "num_switches", "num_false_positives",
                              "num_misses", "num_objects", "num_unique_objects"],
    )
    row = {k: float(v) for k, v in metrics.iloc[0].items()}
    row["switches_per_100_frames"] = 100.0 * row["num_switches"] / frames
    return row


def matched_joints(history) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(track id, (J, 2) published, (J, 2) ground truth) per frame, matched by OKS."""
    out = []
    for scene, published in history:
        keep = present(scene)
        if not len(published) or not keep.any():
            out.append([])
            continue
        gt = scene.keypoints[keep]
        similarity = oks_matrix(published.keypoints, gt, np.asarray(COCO_17.sigmas), MIN_SCORE)
        frame = []
        for p, track_id in enumerate(published.ids):
            g = int(np.argmax(similarity[p]))
            if similarity[p, g] > 0.5:
                frame.append((int(track_id), published.keypoints[p], gt[g]))
        out.append(frame)
    return out


def jitter_and_error(history, moving_px: float = 2.0) -> dict[str, float]:
    """Mean frame-to-frame jitter of tracked joints and mean error of moving joints (px)."""
    frames = matched_joints(history)
    jitter, moving_error = [], []
    for before, now in zip(frames[:-1], frames[1:]):
        previous = {track: (kp, gt) for track, kp, gt in before}
        for track, kp, gt in now:
            if track not in previous:
                continue
            kp0, gt0 = previous[track]
            both = (kp[:, 2] > MIN_SCORE) & (kp0[:, 2] > MIN_SCORE) & (gt[:, 2] > 0)
            step = np.linalg.norm(kp[:, :2] - kp0[:, :2], axis=1)
            gt_step = np.linalg.norm(gt[:, :2] - gt0[:, :2], axis=1)
            jitter.extend(step[both & (gt_step < 0.5)])
            moving = both & (gt_step > moving_px)
            moving_error.extend(np.linalg.norm(kp[:, :2] - gt[:, :2], axis=1)[moving])
    return {"jitter_px": float(np.mean(jitter)) if jitter else float("nan"),
            "moving_error_px": float(np.mean(moving_error)) if moving_error else float("nan"),
            "jitter_samples": len(jitter), "moving_samples": len(moving_error)}


class StaticNoisyVideo:
    """One scene, re-noised every frame (a still camera's sensor noise)."""

    def __init__(self, seed: int, noise: float = 6.0) -> None:
        config = difficulty_config("easy", 640, 480, "coco", max_people=4)
        self.scene = render_scene(config, seed)
        self.rng = np.random.default_rng(seed)
        self.noise = noise
        self.ids = np.arange(len(self.scene.ids))

    def frame(self, index: int):
        from dataclasses import replace

        noisy = self.scene.image_bgr + self.rng.normal(0, self.noise, self.scene.image_bgr.shape)
        return replace(self.scene, image_bgr=np.clip(noisy, 0, 255).astype(np.uint8),
                       ids=self.ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--walkers", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None,
                        help="other weights for the shipped network (default: the shipped file)")
    parser.add_argument("--json", type=pathlib.Path, default=None)
    parser.add_argument("--plot", type=pathlib.Path, default=None)
    args = parser.parse_args()
    # the node's estimator (its default parameters), with other weights when given
    estimator = build_estimator(NodeParams(checkpoint=args.checkpoint or ""))
    report: dict = {"machine": platform.processor() or platform.machine(), "frames": args.frames,
                    "model": DEFAULT_MODEL, "checkpoint": args.checkpoint or "shipped",
                    "tracking": [], "smoothing": {}}
    started = time.time()
    for walkers in args.walkers:
        video = SyntheticVideo(640, 480, num_people=walkers, fps=FPS, seed=args.seed)
        for source, detector in (("ground truth", None), ("shipped model", estimator)):
            detections = detect(video, args.frames, detector)
            accumulator, history = run_tracking(detections)
            row = {"walkers": walkers, "detections": source, **mot_summary(accumulator,
                                                                            args.frames)}
            if detector is not None:
                _, smoothed = run_tracking(detections, smoothing=True)
                row["raw"] = jitter_and_error(history)
                row["smoothed"] = jitter_and_error(smoothed)
            report["tracking"].append(row)
            print(json.dumps(row), flush=True)
    static = detect(StaticNoisyVideo(args.seed + 1), min(args.frames, 150), estimator)
    for smoothing in (False, True):
        _, history = run_tracking(static, smoothing)
        report["smoothing"]["static_smoothed" if smoothing else "static_raw"] = (
            jitter_and_error(history))
    print(json.dumps(report["smoothing"]), flush=True)
    report["seconds"] = time.time() - started
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    if args.plot:
        plot(report, args.plot)


def plot(report: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for source, marker in (("ground truth", "o"), ("shipped model", "s")):
        rows = [r for r in report["tracking"] if r["detections"] == source]
        walkers = [r["walkers"] for r in rows]
        axes[0].plot(walkers, [r["idf1"] for r in rows], marker=marker, label=f"IDF1, {source}")
        axes[0].plot(walkers, [r["mota"] for r in rows], marker=marker, linestyle="--",
                     label=f"MOTA, {source}")
        axes[1].plot(walkers, [r["switches_per_100_frames"] for r in rows], marker=marker,
                     label=source)
    axes[0].set_xlabel("walkers")
    axes[0].set_ylim(0, 1.02)
    axes[0].legend(fontsize=7)
    axes[0].set_title("identity F1 and MOTA")
    axes[1].set_xlabel("walkers")
    axes[1].set_ylabel("id switches / 100 frames")
    axes[1].legend(fontsize=7)
    axes[1].set_title("id switches")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
