"""`pose-synth`: write a synthetic COCO-format keypoint dataset (images or video frames).

Examples:
    pose-synth --out data/synth_train --num-images 20000 --seed 1 --size 256 256 \
        --keypoints coco --max-people 6
    pose-synth --out data/synth_video --video --frames 300 --size 640 480 --max-people 6
    pose-synth --out data/synth_crops --num-images 1000 --size 384 384 --crops 192 256

Writes `OUT/annotations.json` and `OUT/images/*.jpg`. Every argument is checked before any
image is drawn; an impossible one exits with status 2 and a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

from pose_core.data.synthetic.config import (
    DIFFICULTY_LEVELS,
    MAX_PEOPLE_LIMIT,
    SyntheticSceneConfig,
    difficulty_config,
)
from pose_core.data.synthetic.writers import (
    write_crop_dataset,
    write_dataset,
    write_video_dataset,
)

__all__ = ["build_parser", "main", "scene_config", "validate_args"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pose-synth",
        description="Write synthetic multi-person images (or video frames) with exact COCO / "
        "CrowdPose keypoint annotations.",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--num-images", type=int, default=100, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="random seed (output is "
                        "byte-identical for a given seed)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), default=(256, 256),
                        help="image width and height in pixels")
    parser.add_argument("--keypoints", choices=("coco", "crowdpose"), default="coco")
    parser.add_argument("--max-people", type=int, default=None,
                        help=f"most people per image (1..{MAX_PEOPLE_LIMIT}); in video mode "
                        "the number of people slots (default 5)")
    parser.add_argument("--difficulty", choices=DIFFICULTY_LEVELS, default="default",
                        help="crowding / effects preset for still images")
    parser.add_argument("--min-people", type=int, default=None,
                        help="fewest people per image (overrides the preset)")
    parser.add_argument("--overlap", type=float, default=None,
                        help="crowding level 0..1 (overrides the preset)")
    parser.add_argument("--people-distribution", choices=("uniform", "geometric"),
                        default=None, help="people count distribution (overrides the preset)")
    parser.add_argument("--video", action="store_true",
                        help="write consecutive frames of people walking (track_id per person)")
    parser.add_argument("--frames", type=int, default=None, help="number of video frames")
    parser.add_argument("--fps", type=float, default=30.0, help="video frame rate")
    parser.add_argument("--crops", type=int, nargs=2, metavar=("W", "H"), default=None,
                        help="top-down crop mode: one W x H crop per person of each scene")
    parser.add_argument("--jpeg-quality", type=int, default=92)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def validate_args(args: argparse.Namespace) -> list[str]:
    """Every problem with the arguments, as messages (empty when they are usable)."""
    problems = []
    width, height = args.size
    if width < 16 or height < 16 or width > 8192 or height > 8192:
        problems.append(f"--size must be between 16 and 8192 per side, got {width} {height}")
    if args.num_images < 0:
        problems.append(f"--num-images must be >= 0, got {args.num_images}")
    if args.max_people is not None and not 1 <= args.max_people <= MAX_PEOPLE_LIMIT:
        problems.append(f"--max-people must be in [1, {MAX_PEOPLE_LIMIT}], got {args.max_people}")
    if args.video:
        if args.frames is None:
            problems.append("--video needs --frames F")
        elif args.frames < 0:
            problems.append(f"--frames must be >= 0, got {args.frames}")
        if not args.fps > 0:
            problems.append(f"--fps must be > 0, got {args.fps}")
    elif args.frames is not None:
        problems.append("--frames is only valid with --video")
    if args.crops is not None:
        crop_w, crop_h = args.crops
        if crop_w < 16 or crop_h < 16 or crop_w > 8192 or crop_h > 8192:
            problems.append(f"--crops must be between 16 and 8192 per side, got {crop_w} {crop_h}")
        if args.video:
            problems.append("--crops and --video cannot be combined")
    if not 1 <= args.jpeg_quality <= 100:
        problems.append(f"--jpeg-quality must be in [1, 100], got {args.jpeg_quality}")
    if args.video and (args.min_people is not None or args.overlap is not None
                       or args.people_distribution is not None):
        problems.append("--min-people / --overlap / --people-distribution are for still images")
    if not problems and not args.video:
        try:
            scene_config(args)
        except ValueError as error:
            problems.append(str(error))
    return problems


def scene_config(args: argparse.Namespace) -> SyntheticSceneConfig:
    """The still-image config: the `--difficulty` preset with the explicit overrides."""
    width, height = args.size
    config = difficulty_config(args.difficulty, width, height, args.keypoints, args.max_people)
    if args.min_people is not None:
        config = replace(config, min_people=args.min_people)
    if args.overlap is not None:
        config = replace(config, overlap=args.overlap)
    if args.people_distribution is not None:
        config = replace(config, people_distribution=args.people_distribution)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problems = validate_args(args)
    if problems:
        parser.error("; ".join(problems))
    if args.video:
        path = write_video_dataset(
            args.out, args.frames, args.seed, tuple(args.size), args.keypoints,
            num_people=5 if args.max_people is None else args.max_people, fps=args.fps,
            jpeg_quality=args.jpeg_quality, progress=not args.no_progress,
        )
    elif args.crops is not None:
        path = write_crop_dataset(
            args.out, args.num_images, args.seed, crop_wh=tuple(args.crops),
            config=scene_config(args), jpeg_quality=args.jpeg_quality,
            progress=not args.no_progress,
        )
    else:
        path = write_dataset(
            args.out, args.num_images, args.seed, config=scene_config(args),
            jpeg_quality=args.jpeg_quality, progress=not args.no_progress,
        )
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
