"""`pose-infer`: run a `PoseEstimator` on an image or a folder of images.

Writes a COCO-format keypoint results JSON (`pose_core.data.coco_results` records: image_id,
category_id 1, keypoints as J x (x, y, value) in image pixels, score, bbox around all keypoints
as the official bottom-up evaluation does) and, optionally, annotated images (skeletons drawn with
OpenCV).

Example:
    pose-infer images/ --out results.json --draw-dir annotated/ \
        --model higherhrnet_lite_w16_256_coco --device cpu
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2

from pose_core.data.coco_results import poses_to_coco_results, write_results_json

__all__ = ["main", "image_id_from_name"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def image_id_from_name(path: Path) -> int | str:
    """COCO ids are the numeric file stem (000000196141.jpg -> 196141); other names stay text."""
    stem = path.stem
    return int(stem) if stem.isdigit() else stem


def _list_images(source: Path) -> list[Path]:
    if source.is_dir():
        return sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if source.is_file():
        return [source]
    raise FileNotFoundError(f"no such image or folder: {source}")


def build_parser() -> argparse.ArgumentParser:
    from pose_core.default_model import DEFAULT_MODEL
    from pose_core.grouping.double_embedding import add_dem_arguments
    from pose_core.grouping.options import add_grouping_arguments
    from pose_core.inference.backend_factory import add_backend_arguments

    parser = argparse.ArgumentParser(
        prog="pose-infer", description="Multi-person pose estimation on images (COCO results)."
    )
    parser.add_argument("source", type=Path, help="an image file or a folder of images")
    parser.add_argument("--out", type=Path, default=Path("results.json"),
                        help="COCO results JSON to write")
    parser.add_argument("--draw-dir", type=Path, default=None,
                        help="write annotated images here")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="registered model name")
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="weights (default: the shipped weights of the default model)")
    parser.add_argument("--device", default="cpu")
    add_backend_arguments(parser)
    parser.add_argument("--no-flip", action="store_true", help="disable the flip test")
    parser.add_argument("--flip-scale", type=float, default=1.0,
                        help="size of the flip test's mirrored pass relative to the input "
                        "(1.0: the official flip test; the pose node uses 0.625)")
    parser.add_argument("--scales", type=float, nargs="+", default=None,
                        help="bottom-up test scales (default: the model's own)")
    parser.add_argument("--input-size", type=int, default=None)
    add_grouping_arguments(parser)
    add_dem_arguments(parser)
    parser.add_argument("--min-draw-score", type=float, default=0.05,
                        help="joints at or below this value are not drawn")
    parser.add_argument("--min-draw-person-score", type=float, default=None,
                        help="people scoring below this are not drawn nor counted as drawn (all "
                        "are written to --out); default: the model's own cut "
                        "(ModelInfo.draw_person_score; 0.25 but higher for the shipped "
                        "synthetic model)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pose_core.grouping.double_embedding import dem_options_from_args
    from pose_core.grouping.options import grouping_params_from_args
    from pose_core.inference.backend_factory import backend_options_from_args
    from pose_core.inference.estimator import PoseEstimator

    try:
        images = _list_images(args.source)
    except FileNotFoundError as error:
        print(f"pose-infer: {error}", file=sys.stderr)
        return 2
    if not images:
        print(f"pose-infer: no images in {args.source}", file=sys.stderr)
        return 2
    estimator = PoseEstimator(
        args.model,
        checkpoint=args.checkpoint,
        device=args.device,
        flip_test=not args.no_flip,
        flip_scale=args.flip_scale,
        scales=None if args.scales is None else tuple(args.scales),
        input_size=args.input_size,
        backend=args.backend,
        backend_options=backend_options_from_args(args),
        **dataclasses.asdict(grouping_params_from_args(args)),
        **dem_options_from_args(args),
    )
    if args.draw_dir is not None:
        args.draw_dir.mkdir(parents=True, exist_ok=True)
    draw_cut = (estimator.info.draw_person_score if args.min_draw_person_score is None
                else args.min_draw_person_score)
    records: list[dict[str, object]] = []
    failures = 0
    for path in images:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            print(f"pose-infer: cannot read {path}, skipped", file=sys.stderr)
            failures += 1
            continue
        start = time.perf_counter()
        try:
            poses = estimator(image)
        except ValueError as error:
            print(f"pose-infer: {path}: {error}, skipped", file=sys.stderr)
            failures += 1
            continue
        elapsed = time.perf_counter() - start
        records.extend(poses_to_coco_results(image_id_from_name(path), poses))
        # the parser also returns low-score fragments (all go to --out for COCO AP): the first
        # number is what a viewer of the drawing sees
        shown = poses.with_min_score(draw_cut)
        print(f"{path.name}: {len(shown)} people (score >= {draw_cut:g}), {len(poses)} found, "
              f"{1e3 * elapsed:.0f} ms "
              f"({', '.join(f'{k} {1e3 * v:.0f}' for k, v in estimator.last_timings.items())})")
        if args.draw_dir is not None:
            from pose_core.visualization import draw_poses

            drawn = draw_poses(image, shown, estimator.keypoint_spec,
                               min_score=args.min_draw_score, min_person_score=draw_cut)
            cv2.imwrite(str(args.draw_dir / f"{path.stem}.jpg"), drawn)
    write_results_json(args.out, records)
    print(f"wrote {len(records)} results for {len(images) - failures} images to {args.out}")
    return 0 if failures < len(images) else 1


if __name__ == "__main__":
    raise SystemExit(main())
