"""Where does the flip test's gain in the node come from: the averaged heatmaps or the second tag?

The node's estimator (shipped model, node defaults, people >= `person_min_score`) on the tuning
clip (640 x 480, 4 walkers, `--seed`, 10 frames/s), scored like the demo (`FrameScorer`), in four
variants of the merged maps of one scale (`merge_stage_outputs`):

- none: no flip (the node's default);
- both: the flip test (flip-averaged heatmaps, tags of both passes: two values per joint);
- heatmaps: flip-averaged heatmaps, the normal pass's tags only;
- tags: the normal pass's heatmaps, tags of both passes.

The variants swap the codec's `merge_stage_outputs` for one that recombines the official
function's results (a diagnostic, not a node option).

    ./env.sh python training/flip_ablation.py --json docs/shipped_model_runs/flip_ablation.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib

from tqdm import tqdm

import pose_core.codecs.associative_embedding as associative_embedding
from evaluate_joint_gate import joint_owners  # training/
from pose_core.data.synthetic import SyntheticVideo
from pose_core.evaluation import FrameScorer
from pose_core.inference.test_time_aug import ScaleMaps
from pose_ros.params import NodeParams
from pose_ros.pose_node import build_estimator

OFFICIAL_MERGE = associative_embedding.merge_stage_outputs
VARIANTS = ("none", "both", "heatmaps", "tags")


def merge_for(variant: str):
    """A `merge_stage_outputs` that keeps the flip's heatmaps and/or tags as `variant` says."""

    def merge(outputs, flip_outputs, head, flip_index, scale_factor=1.0, pool=None):
        flipped = OFFICIAL_MERGE(outputs, flip_outputs, head, flip_index, scale_factor, None)
        if flip_outputs is None or variant == "both":
            return flipped
        plain = OFFICIAL_MERGE(outputs, None, head, flip_index, scale_factor, None)
        if variant == "heatmaps":
            return ScaleMaps(scale_factor, flipped.heatmaps, plain.tags)
        return ScaleMaps(scale_factor, plain.heatmaps, flipped.tags)

    return merge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=500)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--json", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    video = SyntheticVideo(640, 480, 4, fps=10.0, seed=args.seed)
    scenes = [video.frame(i) for i in tqdm(range(args.frames), desc="render")]
    rows = []
    for variant in VARIANTS:
        associative_embedding.merge_stage_outputs = merge_for(variant)
        params = dataclasses.replace(NodeParams(), flip_test=variant != "none")
        estimator = build_estimator(params)
        scorer = FrameScorer(estimator.keypoint_spec, keypoint_min_score=params.keypoint_min_score)
        right = other = 0
        for scene in tqdm(scenes, desc=variant):
            found = estimator(scene.image_bgr).with_min_score(params.person_min_score)
            scorer.score(found.keypoints, scene.keypoints, scene.areas)
            r, o = joint_owners(scorer, found.keypoints, scene)
            right, other = right + r, other + o
        summary = scorer.summary()
        rows.append({"variant": variant, "recall": summary["recall"],
                     "precision": summary["precision"],
                     "wrong_edge_fraction": summary["wrong_edge_fraction"],
                     "edges_drawn": summary["edges_drawn"], "right_person_joints": right,
                     "other_person_joints": other})
        print(f"{variant}: recall {summary['recall']:.3f} precision {summary['precision']:.3f} "
              f"wrong edges {100 * summary['wrong_edge_fraction']:.2f} %")
    associative_embedding.merge_stage_outputs = OFFICIAL_MERGE
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"seed": args.seed, "frames": args.frames, "fps": 10.0,
                                     "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(__import__("sys").argv[1:]))
