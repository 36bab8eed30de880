"""`pose-eval`: keypoint AP of a results file, or of a model run over an image folder.

    pose-eval --dataset coco|crowdpose --annotations GT.json --results RES.json [--json OUT]
    pose-eval --dataset coco --annotations GT.json --images DIR --model NAME
              [--checkpoint F] [--detections DETS.json] [--save-results RES.json] [--json OUT]

Under `torchrun --nproc_per_node N -m pose_core.evaluation.cli ...` the second form runs on N
processes, each taking a shard of the images; rank 0 gathers the people and evaluates once (gloo
on the CPU, NCCL on CUDA, one GPU per rank).

The first form evaluates an existing COCO-format results file. The second runs
`pose_core.PoseEstimator` over every image of the annotation file (read from DIR with OpenCV,
colour, EXIF orientation ignored, BGR), with the person boxes of a detection-results JSON for
top-down models, writes the records if asked, then evaluates. A table is printed; `--json` writes
the metrics as a JSON object of numbers (-1 where no ground truth is in range).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from pose_core.data.coco_results import load_results_json, write_results_json
from pose_core.data.detections import read_detections
from pose_core.evaluation.coco_evaluator import (
    EVAL_DATASETS,
    KeypointEvaluator,
    evaluate_keypoint_results,
)

__all__ = ["build_parser", "format_table", "main", "run_model_on_images"]


def build_parser() -> argparse.ArgumentParser:
    from pose_core.grouping.double_embedding import add_dem_arguments
    from pose_core.grouping.options import add_grouping_arguments
    from pose_core.inference.backend_factory import add_backend_arguments

    parser = argparse.ArgumentParser(
        prog="pose-eval", description="COCO / CrowdPose keypoint evaluation (official tools)."
    )
    parser.add_argument("--dataset", choices=EVAL_DATASETS, required=True)
    parser.add_argument("--annotations", required=True, type=pathlib.Path,
                        help="ground-truth annotation JSON")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--results", type=pathlib.Path, help="COCO-format results JSON")
    source.add_argument("--images", type=pathlib.Path,
                        help="image folder: run --model over the annotated images first")
    parser.add_argument("--model", help="model name (with --images)")
    parser.add_argument("--checkpoint", type=pathlib.Path, help="weights file (with --images)")
    parser.add_argument("--detections", type=pathlib.Path,
                        help="person detection results JSON (top-down models)")
    parser.add_argument("--min-det-score", type=float, default=0.0,
                        help="skip detections below this score")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--top-down-decoder", choices=("quarter", "dark"),
                        help="top-down decoding: HRNet quarter offset (default) or DARK")
    parser.add_argument("--no-flip", action="store_true", help="disable the flip test")
    parser.add_argument("--flip-scale", type=float, default=1.0,
                        help="size of the flip test's mirrored pass relative to the input "
                        "(1.0: the official flip test; the pose node uses 0.625)")
    parser.add_argument("--scales", type=float, nargs="+", default=None,
                        help="bottom-up test scales (with --images; 1.0 among them; "
                             "default: the model's own)")
    parser.add_argument("--input-size", type=int, default=None,
                        help="network input size (with --images; default: the model's own)")
    add_backend_arguments(parser)  # used with --images
    add_grouping_arguments(parser)  # used with --images
    add_dem_arguments(parser)  # used with --images and a Double Embedding model
    parser.add_argument("--save-results", type=pathlib.Path,
                        help="write the predicted records here (with --images)")
    parser.add_argument("--json", type=pathlib.Path, help="write the metrics as JSON here")
    parser.add_argument("--only-processed", action="store_true",
                        help="with --results: evaluate only images that have records "
                        "(default: every GT image, as the official code)")
    parser.add_argument("--verbose", action="store_true", help="show the tool's own summary")
    return parser


def format_table(metrics: dict[str, float], title: str = "") -> str:
    """Two-column text table of metric values (3 decimals; -1 printed as -1)."""
    width = max([len("metric"), *(len(name) for name in metrics)])
    lines = [title] if title else []
    lines.append(f"{'metric':<{width}}  value")
    lines.append(f"{'-' * width}  ------")
    for name, value in metrics.items():
        text = "-1" if value == -1 else f"{value:.3f}"
        lines.append(f"{name:<{width}}  {text:>6}")
    return "\n".join(lines)


def run_model_on_images(
    evaluator: KeypointEvaluator,
    image_dir: pathlib.Path,
    model: str,
    checkpoint: pathlib.Path | None = None,
    detections: pathlib.Path | None = None,
    min_det_score: float = 0.0,
    device: str = "cpu",
    **estimator_options: Any,
) -> int:
    """Run `PoseEstimator` over the GT images and feed `evaluator`; returns the image count.

    `estimator_options` go to `PoseEstimator` (flip_test, top_down_decoder, ...).

    Boxes (top-down) are passed as `boxes=` (N, 5) float32 x, y, w, h, score (image pixels).
    Under `torchrun` each rank runs a shard of the images and rank 0's evaluator receives every
    rank's people in file order (`pose_core.evaluation.sharding`); the others' stays empty.
    """
    import cv2

    from pose_core.evaluation.sharding import init_evaluation_ranks
    from pose_core.inference import PoseEstimator

    content = json.loads(evaluator.gt_json.read_text())
    boxes = None
    if detections:
        # category 1 (field required), score >= min_det_score, every image id kept
        found = read_detections(detections, min_score=min_det_score)
        boxes = {key: value.astype(np.float32) for key, value in found.items()}
    weights = None if checkpoint is None else str(checkpoint)
    from pose_core.evaluation.sharding import (
        finish_evaluation_ranks,
        gather_in_order,
        shard_positions,
    )

    rank, world_size, device = init_evaluation_ranks(device)
    estimator: Any = PoseEstimator(model, checkpoint=weights, device=device, **estimator_options)
    found = []
    images = content["images"]
    for position in shard_positions(len(images), rank, world_size):
        image = images[position]
        path = image_dir / image["file_name"]
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if frame is None:
            raise FileNotFoundError(
                f"image file of image id {image['id']} ('file_name' {image['file_name']!r}) "
                f"not found at {path}"
            )
        if boxes is None:
            poses = estimator(frame)
        else:
            image_boxes = boxes.get(int(image["id"]), np.zeros((0, 5), np.float32))
            poses = estimator(frame, boxes=image_boxes)
        found.append((position, image["id"], poses))
    for _, image_id, poses in gather_in_order(found):  # rank 0: every rank's, in file order
        evaluator.process([image_id], [poses])
    finish_evaluation_ranks()
    return len(images)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.images is not None and not args.model:
        parser.error("--images needs --model")
    if args.images is None and (args.model or args.checkpoint or args.detections):
        parser.error("--model/--checkpoint/--detections go with --images")
    try:
        if args.results is not None:
            records = load_results_json(args.results)
            image_ids = {r["image_id"] for r in records} if args.only_processed else None
            metrics = evaluate_keypoint_results(
                args.annotations, records, args.dataset, image_ids, args.verbose
            )
            title = f"{args.dataset} keypoints: {args.results}"
        else:
            evaluator = KeypointEvaluator(args.annotations, args.dataset, verbose=args.verbose)
            from pose_core.grouping.double_embedding import dem_options_from_args
            from pose_core.grouping.options import grouping_params_from_args
            from pose_core.inference.backend_factory import backend_options_from_args

            options: dict[str, Any] = {
                "flip_test": not args.no_flip,
                "flip_scale": args.flip_scale,
                "scales": None if args.scales is None else tuple(args.scales),
                "backend": args.backend,
                "backend_options": backend_options_from_args(args),
                **dataclasses.asdict(grouping_params_from_args(args)),
                **dem_options_from_args(args),
            }
            if args.top_down_decoder:
                options["top_down_decoder"] = args.top_down_decoder
            if args.input_size:
                options["input_size"] = args.input_size
            count = run_model_on_images(
                evaluator, args.images, args.model, args.checkpoint, args.detections,
                args.min_det_score, args.device, **options,
            )
            from pose_core.evaluation.sharding import is_main_rank

            if not is_main_rank():
                return 0  # rank 0 evaluates every rank's people once
            if args.save_results:
                write_results_json(args.save_results, evaluator.results)
            metrics = evaluator.evaluate()
            title = f"{args.dataset} keypoints: {args.model} on {count} images of {args.images}"
    except (FileNotFoundError, ValueError) as error:
        print(f"pose-eval: error: {error}", file=sys.stderr)
        return 2
    print(format_table(metrics, title))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(metrics, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
