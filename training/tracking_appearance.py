"""Is the tracker or the detector the limit? Appearance cue and an id oracle on the same people.

For each synthetic walking video (640 x 480, 30 fps, `--walkers` people; tuning seeds and
evaluation seeds kept apart), the shipped model runs once with the node's settings
(`evaluate_tracking.detect`), and the same people are then given ids by:

- `PoseTracker` with `appearance_weight` 0 (the default: keypoints and boxes) and the weights
  of `--weights` (limb colours, `pose_core.tracking.appearance`);
- an oracle: every person takes the id of the ground-truth person it matches (optimal OKS
  assignment, OKS >= 0.5; unmatched people get fresh ids). Its IDF1 is what perfect
  association would reach on these detections, i.e. what misses and false people cost.

All scored with motmetrics as `evaluate_tracking.py` scores them (IDF1, MOTA, id switches).
`--cache DIR` keeps each video's detections (pickles of `evaluate_tracking.detect`'s output,
`model_seed<S>_walkers<W>_frames<F>_<flip setting>_<precision>.pkl`) so that a rerun tracks the same people again without
running the network.

    ./env.sh python training/tracking_appearance.py --tuning-seeds 1 4 5 \\
        --evaluation-seeds 0 2 3 --json docs/tracking_runs/appearance.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import pickle
import statistics

import motmetrics as mm
import numpy as np
from scipy.optimize import linear_sum_assignment

from evaluate_tracking import FPS, detect, mot_summary, oks_distance, present  # training/
from pose_core.data.synthetic import SyntheticVideo
from pose_ros.estimator_factory import build_estimator, network_precision
from pose_ros.params import NodeParams
from pose_core.tracking import TrackerConfig
from tune_tracker import track  # training/


def oracle(detections: list) -> dict[str, float]:
    """Every person gets the id of the ground-truth person it matches (OKS >= 0.5)."""
    accumulator = mm.MOTAccumulator(auto_id=True)
    fresh = 1 << 40
    for scene, found in detections:
        distance = oks_distance(scene, found)
        truth = scene.ids[present(scene)]
        ids = []
        cost = np.where(np.isnan(distance), 9.0, distance)
        rows, cols = linear_sum_assignment(cost) if cost.size else ((), ())
        owner = {c: int(truth[r]) for r, c in zip(rows, cols) if cost[r, c] <= 0.5}
        for person in range(len(found)):
            if person not in owner:
                fresh += 1
            ids.append(owner.get(person, fresh))
        accumulator.update([int(i) for i in truth], ids, distance)
    return mot_summary(accumulator, len(detections))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuning-seeds", type=int, nargs="+", default=[1, 4, 5])
    parser.add_argument("--evaluation-seeds", type=int, nargs="+", default=[0, 2, 3])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.2, 0.3, 0.4])
    parser.add_argument("--walkers", type=int, default=4)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json", type=pathlib.Path, required=True)
    parser.add_argument("--cache", type=pathlib.Path, default=None,
                        help="folder for the model's detections per video (read if present)")
    args = parser.parse_args(argv)
    params = NodeParams()
    estimator = build_estimator(params)  # the node's, with its default parameters
    # the cache names hold the estimator settings: other node defaults never reuse them
    settings = (f"flip{params.flip_scale:g}" if params.flip_test else "noflip") + \
        f"_{network_precision(params, 'cpu')}"
    rows = []
    for role, seeds in (("tuning", args.tuning_seeds), ("evaluation", args.evaluation_seeds)):
        for seed in seeds:
            video = SyntheticVideo(640, 480, num_people=args.walkers, fps=FPS, seed=seed)
            name = f"model_seed{seed}_walkers{args.walkers}_frames{args.frames}_{settings}.pkl"
            cached = args.cache / name if args.cache else None
            if cached is not None and cached.exists():
                detections = pickle.loads(cached.read_bytes())
            else:
                detections = detect(video, args.frames, estimator)
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    cached.write_bytes(pickle.dumps(detections))
            truth = detect(video, args.frames, None)
            row = {"role": role, "seed": seed, "oracle": oracle(detections)}
            for weight in (0.0, *args.weights):
                config = TrackerConfig(appearance_weight=weight)
                row[f"appearance {weight}"] = track(detections, config, args.frames)
                row[f"appearance {weight}, ground truth"] = track(truth, config, args.frames)
            rows.append(row)
            print(json.dumps({"seed": seed, **{k: round(v["idf1"], 3) for k, v in row.items()
                                               if isinstance(v, dict)}}), flush=True)
    means = {}
    for role in ("tuning", "evaluation"):
        chosen = [r for r in rows if r["role"] == role]
        means[role] = {name: {metric: statistics.mean(r[name][metric] for r in chosen)
                              for metric in ("idf1", "mota", "switches_per_100_frames")}
                       for name in chosen[0] if isinstance(chosen[0][name], dict)}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"walkers": args.walkers, "frames": args.frames,
                                     "rows": rows, "means": means}, indent=1))
    for role, table in means.items():
        print(role)
        for name, values in table.items():
            print(f"  {name:34s} IDF1 {values['idf1']:.3f} MOTA {values['mota']:.3f} "
                  f"switches/100 {values['switches_per_100_frames']:.1f}")


if __name__ == "__main__":
    main()
