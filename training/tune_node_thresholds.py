"""Choose the node's drawing thresholds on a tuning clip: `person_min_score` and `keypoint_min_score`.

The demo's goals (issue 18) are judged on what the node publishes and draws. This script runs the
node's own estimator (`pose_ros.pose_node.build_estimator` with the node's default parameters,
`NodeParams()`) over a synthetic walking clip like the demo camera's but with another seed, and
scores every (tag_threshold, person_min_score, keypoint_min_score) of a grid with
`pose_core.evaluation.FrameScorer`: people recall and precision at OKS >= 0.5 and the share of
drawn skeleton edges that join two ground-truth people. The estimator runs once per frame and tag
threshold (the grouping's own option); the two drawing thresholds only filter its output.

    ./env.sh python training/tune_node_thresholds.py --frames 200 --seed 500 \\
        --json docs/shipped_model_runs/node_thresholds.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

from tqdm import tqdm

from pose_core.data.synthetic import SyntheticVideo
from pose_core.evaluation.frame_scoring import FrameScorer
from pose_ros.params import NodeParams
from pose_ros.pose_node import build_estimator

PERSON_MIN_SCORES = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4)
KEYPOINT_MIN_SCORES = (0.1, 0.2, 0.3, 0.4, 0.5)


def add_clip_arguments(
    parser: argparse.ArgumentParser, weights: bool = True
) -> argparse.ArgumentParser:
    """The tuning clip (`--frames --seed --people --size`) and, with `weights`, the weights
    (`--checkpoint`); shared with `tune_node_grouping.py` and `node_estimator_cost.py`."""
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--seed", type=int, default=500, help="clip seed (the demo uses 0)")
    parser.add_argument("--people", type=int, default=4)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    if weights:
        parser.add_argument("--checkpoint", default="", help="weights ('' = the shipped ones)")
    return parser


def render_clip(args: argparse.Namespace) -> list:
    """The scenes of the tuning clip (a walking video like the demo camera's, another seed)."""
    video = SyntheticVideo(args.size[0], args.size[1], args.people, fps=15.0, seed=args.seed)
    return [video.frame(index) for index in tqdm(range(args.frames), desc="render")]


def clip_record(args: argparse.Namespace) -> dict:
    """What the reports say about the clip."""
    return {"seed": args.seed, "frames": args.frames, "people": args.people,
            "size": list(args.size)}


def main(argv: list[str] | None = None) -> None:
    parser = add_clip_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    parser.add_argument("--tag-thresholds", type=float, nargs="+", default=[1.0],
                        help="grouping tag thresholds to try (the node's tag_threshold)")
    parser.add_argument("--json", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)

    scenes = render_clip(args)
    rows = []
    for tag_threshold in args.tag_thresholds:
        params = dataclasses.replace(NodeParams(), checkpoint=args.checkpoint,
                                     person_min_score=0.0, tag_threshold=tag_threshold)
        estimator = build_estimator(params)
        found = [estimator(scene.image_bgr)
                 for scene in tqdm(scenes, desc=f"tag threshold {tag_threshold}")]
        for person_min in PERSON_MIN_SCORES:
            for keypoint_min in KEYPOINT_MIN_SCORES:
                scorer = FrameScorer(estimator.keypoint_spec, keypoint_min_score=keypoint_min)
                for poses, scene in zip(found, scenes):
                    scorer.score(poses.with_min_score(person_min).keypoints, scene.keypoints,
                                 scene.areas)
                rows.append({"tag_threshold": tag_threshold, "person_min_score": person_min,
                             "keypoint_min_score": keypoint_min, **scorer.summary()})
    default = NodeParams()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "command": "python training/tune_node_thresholds.py " + " ".join(argv or sys.argv[1:]),
        "clip": clip_record(args),
        "checkpoint": args.checkpoint or "shipped",
        "node_defaults": {"tag_threshold": default.tag_threshold,
                          "person_min_score": default.person_min_score,
                          "keypoint_min_score": default.keypoint_min_score},
        "rows": rows}, indent=1))
    print("tag_thr person_min keypoint_min  recall precision wrong_edges drawn")
    for row in rows:
        print(f"{row['tag_threshold']:7.2f} {row['person_min_score']:10.2f} "
              f"{row['keypoint_min_score']:12.2f} "
              f"{row['recall']:7.3f} {row['precision']:9.3f} {row['wrong_edge_fraction']:11.4f} "
              f"{row['edges_drawn']:6d}")


if __name__ == "__main__":
    main()
