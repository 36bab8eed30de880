"""Where a bottom-up model loses AP: tag separation, heatmap localisation, grouping.

    ./env.sh python training/diagnose_bottom_up.py --checkpoint runs/shipped_model/best.pt \
        --annotations data/synthetic_easy/val/annotations.json \
        --images data/synthetic_easy/val/images

For every held-out image (its size must be the network input size, as the synthetic sets are,
so that image pixels are input pixels) it takes what the grouping sees
(`PoseEstimator.bottom_up_maps`: aggregated heatmaps and tags, flip test as configured) and
measures, against the ground truth:

- tags: each person's mean tag at its labelled joints; the spread of a person's joint tags
  around that mean and the distance between the means of two people in the same image. The
  official grouping rounds tag distances (cost = round(d) * 100 - value), so people are told
  apart when their own joints sit within 0.5 of their mean and other people's means are >= 0.5
  away;
- heatmaps: for each visible joint the highest value of its map within 8 px; a miss when that
  is below the detection threshold 0.1, otherwise the pixel distance (no sub-pixel decoding);
- AP (pycocotools) of the model, and AP of its heatmaps read at the ground-truth people: each
  labelled person becomes one prediction whose joint j is the map-j peak within 8 px of the
  labelled joint (official adjust: +0.5 and the quarter offset; value = the peak; absent
  joints have value 0, score = mean value as the parser's). That is perfect grouping with no
  false or missed people, an upper bound for the grouping: the gap to the model's AP is what
  grouping, false people and refine cost, the gap to 1 is the heatmaps' localisation.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from pose_core.evaluation.coco_evaluator import KeypointEvaluator
from pose_core.geometry import back_project_centre_aligned, multi_scale_size
from pose_core.grouping.adjust import adjust_positions
from pose_core.grouping.parser import parse_bottom_up
from pose_core.inference import PoseEstimator
from pose_core.structures import Poses

WINDOW = 8


def diagnose(
    estimator: PoseEstimator, annotations: pathlib.Path, images: pathlib.Path, max_images: int
) -> dict[str, Any]:
    content = json.loads(annotations.read_text())
    by_image: dict[int, list[np.ndarray]] = {}
    for ann in content["annotations"]:
        keypoints = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
        by_image.setdefault(ann["image_id"], []).append(keypoints)
    model_eval = KeypointEvaluator(annotations)
    bound_eval = KeypointEvaluator(annotations)
    spread, separation, errors = [], [], []
    misses = visible = 0
    entries = content["images"][:max_images] if max_images else content["images"]
    for entry in entries:
        path = images / entry["file_name"]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"image of id {entry['id']} not found: {path}")
        if (image.shape[1], image.shape[0]) != tuple(estimator.input_wh):
            raise ValueError(f"{path}: size {image.shape[1]}x{image.shape[0]} != network input "
                             f"{estimator.input_wh}; this diagnosis needs image = input pixels")
        heatmaps, tags = estimator.bottom_up_maps(image)
        num_joints, height, width = heatmaps.shape
        people = by_image.get(entry["id"], [])
        maps = heatmaps.cpu().numpy()
        means = []
        read = np.zeros((len(people), num_joints, 3), np.float32)  # x, y, value at GT people
        for index, keypoints in enumerate(people):
            labelled = [j for j in range(num_joints) if keypoints[j, 2] > 0
                        and 0 <= keypoints[j, 0] < width and 0 <= keypoints[j, 1] < height]
            if labelled:
                pixels = [int(keypoints[j, 1]) * width + int(keypoints[j, 0]) for j in labelled]
                values = tags(torch.as_tensor(labelled), torch.as_tensor(pixels)).cpu().numpy()
                mean = values.mean(axis=0)
                means.append(mean)
                spread.extend(np.linalg.norm(values - mean, axis=1).tolist())
            for j in range(num_joints):
                if keypoints[j, 2] <= 0:  # labelled joints only (OKS ignores the others)
                    continue
                x, y = keypoints[j, :2]
                x0, y0 = max(0, int(x) - WINDOW), max(0, int(y) - WINDOW)
                window = maps[j, y0 : int(y) + WINDOW + 1, x0 : int(x) + WINDOW + 1]
                if window.size == 0:
                    continue
                py, px = np.unravel_index(int(window.argmax()), window.shape)
                read[index, j] = (x0 + px, y0 + py, window.max())
                if keypoints[j, 2] < 2:  # the statistics: visible joints
                    continue
                visible += 1
                if window.max() < 0.1:
                    misses += 1
                    continue
                errors.append(float(np.hypot(x0 + px - x, y0 + py - y)))
        separation.extend(float(np.linalg.norm(means[a] - means[b]))
                          for a in range(len(means)) for b in range(a + 1, len(means)))
        # the model's people from the same maps (what `estimator(image)` groups, without a
        # second network pass) and the heatmaps read at the GT people, both in image pixels
        # scale-1.0 input size, centre and scale (what the warp would use; no second warp)
        base_wh, base_center, base_scale = multi_scale_size(
            image.shape[1::-1], estimator.input_wh[0], 1.0, min(estimator.scales)
        )
        model = parse_bottom_up(heatmaps, tags, estimator.grouping)
        for evaluator, people_hm, scores in (
            (model_eval, model.grouped[:, :, :3], model.scores),
            (bound_eval, adjust_positions(read, heatmaps), read[:, :, 2].mean(axis=1)),
        ):
            points = people_hm.astype(np.float64)
            if len(points):
                points[:, :, :2] = back_project_centre_aligned(
                    points[:, :, :2], np.asarray(base_center), np.asarray(base_scale), base_wh
                )
            evaluator.process([entry["id"]], [Poses(points.astype(np.float32), scores)])
    spread_a, separation_a, errors_a = map(np.asarray, (spread, separation, errors))
    return {
        "images": len(entries),
        "tag_spread_median": float(np.median(spread_a)) if spread else None,
        "tag_spread_p90": float(np.percentile(spread_a, 90)) if spread else None,
        "tag_separation_median": float(np.median(separation_a)) if separation else None,
        "tag_separation_p10": float(np.percentile(separation_a, 10)) if separation else None,
        "pairs_closer_than_0.5": float((separation_a < 0.5).mean()) if separation else None,
        "joint_miss_rate": misses / max(visible, 1),
        "joint_error_median_px": float(np.median(errors_a)) if errors else None,
        "joint_error_p90_px": float(np.percentile(errors_a, 90)) if errors else None,
        "AP_model": model_eval.evaluate()["AP"],
        "AP_heatmaps_at_gt_people": bound_eval.evaluate()["AP"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="default: pose_core.DEFAULT_MODEL")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped weights")
    parser.add_argument("--annotations", type=pathlib.Path, required=True)
    parser.add_argument("--images", type=pathlib.Path, required=True)
    parser.add_argument("--max-images", type=int, default=100, help="0 = all")
    parser.add_argument("--no-flip", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    import pose_core

    torch.set_num_threads(args.threads)
    estimator = PoseEstimator(args.model or pose_core.DEFAULT_MODEL, checkpoint=args.checkpoint,
                              flip_test=not args.no_flip)
    report = diagnose(estimator, args.annotations, args.images, args.max_images)
    report["checkpoint"] = args.checkpoint or "shipped"
    for key, value in report.items():
        print(f"{key:>26}: {value:.4f}" if isinstance(value, float) else f"{key:>26}: {value}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
