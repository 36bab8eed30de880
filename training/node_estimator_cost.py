"""The node's per-frame estimator cost for several weights / settings, interleaved in one process.

`pose_ros.node_benchmark` measures what a robot sees (processed frames/s with the camera in its
own process), but on this shared 2-core machine its rounds are often disturbed. This script
times what decides that rate, the node's estimator (`build_estimator`, the node's defaults plus
each entry's settings) on the same frames, one call per entry in turn on every frame, so all
entries see the same load; it reports the median milliseconds per frame and per stage, and the
people published (score >= the entry's `person_min_score`). The first (warm-up) pass also scores
each entry's people against the clip's ground truth as the demo does (`FrameScorer`: recall and
precision at OKS >= 0.5, wrong-person edges; no tracker), so cost and accuracy come from one run.

Entries are `PATH[@name=value,...]` as in `node_benchmark --checkpoints` (node parameters and
`GroupingParams` fields, e.g. `old.pt@refine_min_score=0`).

    ./env.sh python training/node_estimator_cost.py --frames 120 --repeats 2 \\
        --checkpoints "/tmp/stage1.pt@refine_min_score=0" /tmp/stage1.pt /tmp/v4.pt \\
        --json docs/shipped_model_runs/node_estimator_cost.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import platform
import statistics
import time

import numpy as np
from tqdm import tqdm

from pose_core.evaluation import FrameScorer
from pose_ros.node_benchmark import checkpoint_entry, split_entry_values
from pose_ros.params import NodeParams
from pose_ros.pose_node import build_estimator
from tune_node_thresholds import add_clip_arguments, render_clip  # training/


def main(argv: list[str] | None = None) -> int:
    # the tuning clip of tune_node_thresholds.py; the weights are the entries
    parser = add_clip_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                                weights=False)
    parser.set_defaults(frames=120)
    parser.add_argument("--checkpoints", nargs="+", required=True,
                        help="entries PATH[@name=value,...] ('' = the shipped weights)")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--repeats", type=int, default=2,
                        help="passes over the clip; the first is a warm-up, not counted")
    parser.add_argument("--json", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)

    scenes = render_clip(args)
    entries = {}
    for entry in args.checkpoints:
        path, values = checkpoint_entry(entry)
        node_values, grouping = split_entry_values(values)
        params = dataclasses.replace(NodeParams(), backend=args.backend, checkpoint=path,
                                     **node_values)
        entries[entry] = (params, build_estimator(params, grouping))
    total = {name: [] for name in entries}
    stages: dict[str, dict[str, list[float]]] = {name: {} for name in entries}
    people = {name: [] for name in entries}
    scorers = {name: FrameScorer(estimator.keypoint_spec,
                                 keypoint_min_score=params.keypoint_min_score)
               for name, (params, estimator) in entries.items()}
    for repeat in range(args.repeats):
        for scene in tqdm(scenes, desc=f"pass {repeat + 1}/{args.repeats}"):
            for name, (params, estimator) in entries.items():
                started = time.perf_counter()
                found = estimator(scene.image_bgr).with_min_score(params.person_min_score)
                seconds = time.perf_counter() - started
                if repeat == 0:
                    scorers[name].score(found.keypoints, scene.keypoints, scene.areas)
                    continue
                total[name].append(1e3 * seconds)
                people[name].append(len(found.scores))
                for stage, value in estimator.last_timings.items():
                    stages[name].setdefault(stage, []).append(1e3 * value)
    rows = [{
        "entry": name,
        "median_ms": statistics.median(total[name]),
        "stage_median_ms": {s: statistics.median(v) for s, v in stages[name].items()},
        "people_per_frame": float(np.mean(people[name])),
        **{key: scorers[name].summary()[key]
           for key in ("recall", "precision", "wrong_edge_fraction")},
    } for name in entries]
    report = {"machine": platform.processor() or platform.machine(),
              "frames_timed": len(scenes) * (args.repeats - 1), "backend": args.backend,
              "clip": {"frames": args.frames, "seed": args.seed}, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    for row in rows:
        stage_text = ", ".join(f"{s} {v:.1f}" for s, v in row["stage_median_ms"].items())
        print(f"{row['entry']}: {row['median_ms']:.1f} ms ({stage_text}), "
              f"{row['people_per_frame']:.2f} people; recall {row['recall']:.3f}, precision "
              f"{row['precision']:.3f}, wrong edges {100 * row['wrong_edge_fraction']:.2f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
