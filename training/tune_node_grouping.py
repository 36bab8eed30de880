"""The node's grouping options on a tuning clip: refine, adjust, NMS kernel, detection threshold.

`training/tune_node_thresholds.py` tunes what the node publishes and draws; this script tunes how
the estimator groups joints into people, the other lever on the demo's misses and wrong-person
edges (issue 18). Each variant changes one `GroupingParams` field of the node's defaults
(`NodeParams()`, shipped model, one scale, no flip) and runs the node's estimator
(`pose_ros.pose_node.build_estimator`) over a synthetic walking clip like the demo camera's but
with another seed; people >= the node's `person_min_score` and joints >= its
`keypoint_min_score` are scored with `pose_core.evaluation.FrameScorer` (people recall and
precision at OKS >= 0.5, wrong-person edges), and the grouping time per frame is measured.

    ./env.sh python training/tune_node_grouping.py --frames 200 --seed 500 \\
        --json docs/shipped_model_runs/node_grouping.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import statistics
import sys
import time

from tqdm import tqdm

from pose_core.evaluation.frame_scoring import FrameScorer
from pose_ros.params import NodeParams
from pose_ros.pose_node import build_estimator
from tune_node_thresholds import add_clip_arguments, clip_record, render_clip  # training/

VARIANTS: dict[str, dict] = {
    "node defaults": {},
    "refine off": {"refine": False},
    "adjust off": {"adjust": False},
    "nms_kernel 3": {"nms_kernel": 3},
    "nms_kernel 7": {"nms_kernel": 7},
    "detection_threshold 0.05": {"detection_threshold": 0.05},
    "detection_threshold 0.2": {"detection_threshold": 0.2},
    "tag_threshold 0.5": {"tag_threshold": 0.5},
    "ignore_too_much": {"ignore_too_much": True},
}


def main(argv: list[str] | None = None) -> int:
    parser = add_clip_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--json", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)

    params = dataclasses.replace(NodeParams(), checkpoint=args.checkpoint)
    scenes = render_clip(args)
    rows = []
    for name in args.variants:
        estimator = build_estimator(params, VARIANTS[name])
        scorer = FrameScorer(estimator.keypoint_spec, keypoint_min_score=params.keypoint_min_score)
        seconds = []
        for scene in tqdm(scenes, desc=name):
            started = time.perf_counter()
            poses = estimator(scene.image_bgr)
            seconds.append(time.perf_counter() - started)
            scorer.score(poses.with_min_score(params.person_min_score).keypoints,
                         scene.keypoints, scene.areas)
        row = {"variant": name, **VARIANTS[name], **scorer.summary(),
               "frame_ms_median": 1000 * statistics.median(seconds)}
        rows.append(row)
        print(f"{name:28s} recall {row['recall']:.3f} precision {row['precision']:.3f} "
              f"wrong edges {100 * row['wrong_edge_fraction']:.2f} % of {row['edges_drawn']} "
              f"frame {row['frame_ms_median']:.0f} ms", flush=True)
    report = {"command": "python training/tune_node_grouping.py " + " ".join(argv or sys.argv[1:]),
              "clip": clip_record(args),
              "checkpoint": args.checkpoint or "shipped", "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
