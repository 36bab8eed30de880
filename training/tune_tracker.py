"""Choose the tracker's defaults on a tuning video: a grid over `TrackerConfig`, scored by IDF1.

The shipped model runs once over a synthetic walking video (640 x 480, the node's defaults, as
`training/evaluate_tracking.py` runs it) whose seed is not the evaluation's (that one uses seed
0); every tracker configuration of the grid then tracks the same detections and is scored with
motmetrics (IDF1, MOTA, id switches). Ground-truth detections are tracked too, so that a choice
which helps the model's people but hurts clean input shows.

    ./env.sh python training/tune_tracker.py --seed 1 --walkers 4 --frames 300 \\
        --json docs/tracking_runs/tracker_tuning.json
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import pathlib
import sys

from evaluate_tracking import FPS, detect, mot_summary, oks_distance, present  # training/

import motmetrics as mm
from tqdm import tqdm

from pose_core.data.synthetic import SyntheticVideo
from pose_core.tracking import PoseTracker, TrackerConfig
from pose_ros.estimator_factory import build_estimator
from pose_ros.params import NodeParams

GRID = {
    "high_score": (0.3, 0.4, 0.5),
    "min_similarity": (0.1, 0.2, 0.3),
    "min_hits": (1, 2, 3),
    "max_misses": (15, 30, 60),
}


def track(detections: list, config: TrackerConfig, frames: int) -> dict[str, float]:
    tracker = PoseTracker(config)
    accumulator = mm.MOTAccumulator(auto_id=True)
    for index, (scene, found) in enumerate(detections):
        published = tracker.update(found, index / FPS, image=scene.image_bgr)
        accumulator.update([int(i) for i in scene.ids[present(scene)]],
                           [int(i) for i in published.ids], oks_distance(scene, published))
    return mot_summary(accumulator, frames)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="tuning video (evaluation: 0)")
    parser.add_argument("--walkers", type=int, default=4)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    video = SyntheticVideo(640, 480, num_people=args.walkers, fps=FPS, seed=args.seed)
    # the node's estimator with its default parameters (as evaluate_tracking.py runs it)
    sources = {"shipped model": detect(video, args.frames, build_estimator(NodeParams())),
               "ground truth": detect(video, args.frames, None)}
    default = TrackerConfig()
    rows = []
    for values in tqdm(list(itertools.product(*GRID.values())), desc="configurations"):
        options = dict(zip(GRID, values))
        config = dataclasses.replace(default, **options)
        for source, detections in sources.items():
            rows.append({**options, "detections": source,
                         **track(detections, config, args.frames)})
    model_rows = sorted((r for r in rows if r["detections"] == "shipped model"),
                        key=lambda r: -r["idf1"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "command": "python training/tune_tracker.py " + " ".join(argv or sys.argv[1:]),
        "video": {"seed": args.seed, "walkers": args.walkers, "frames": args.frames},
        "defaults": {k: getattr(default, k) for k in GRID}, "rows": rows}, indent=1))
    print("best on the model's people (IDF1, MOTA, switches / 100 frames; ground truth IDF1):")
    for row in model_rows[:10]:
        clean = next(r for r in rows if r["detections"] == "ground truth"
                     and all(r[k] == row[k] for k in GRID))
        print({k: row[k] for k in GRID}, f"{row['idf1']:.3f} {row['mota']:.3f} "
              f"{row['switches_per_100_frames']:.2f}; gt {clean['idf1']:.3f}")
    now = next(r for r in rows if r["detections"] == "shipped model"
               and all(r[k] == getattr(default, k) for k in GRID))
    print("current defaults:", f"{now['idf1']:.3f} {now['mota']:.3f} "
          f"{now['switches_per_100_frames']:.2f}")


if __name__ == "__main__":
    main()
