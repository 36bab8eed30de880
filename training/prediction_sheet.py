"""A contact sheet of a model's predictions on held-out synthetic images, at its default settings.

Makes `--images` fresh images with `pose-synth`'s generator (its default level unless
`--difficulty`; a seed no training or selection used), runs `PoseEstimator(model)` at its
default test settings (the shipped model: flip, scales 1 and 1.5) and draws the people at the
model's drawing cut (`ModelInfo.draw_person_score`), ground truth not drawn.

    ./env.sh python training/prediction_sheet.py --seed 777 --images 12 \\
        --out docs/shipped_model_v4_examples.jpg
"""

from __future__ import annotations

import argparse
import pathlib
import tempfile

import cv2

from pose_core.data.synthetic.cli import main as make_synthetic_images
from pose_core.default_model import DEFAULT_MODEL
from pose_core.inference import PoseEstimator
from pose_core.visualization import contact_sheet, draw_poses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--difficulty", default=None, help="pose-synth --difficulty")
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        command = ["--out", folder, "--num-images", str(args.images), "--seed", str(args.seed)]
        if args.difficulty:
            command += ["--difficulty", args.difficulty]
        make_synthetic_images(command)  # pose-synth
        paths = sorted(pathlib.Path(folder).rglob("*.jpg")) + sorted(
            pathlib.Path(folder).rglob("*.png"))
        estimator = PoseEstimator(args.model, checkpoint=args.checkpoint)
        cut = estimator.info.draw_person_score
        tiles = []
        for path in paths[: args.images]:
            image = cv2.imread(str(path))
            tiles.append(draw_poses(image, estimator(image), estimator.keypoint_spec,
                                    min_score=0.1, min_person_score=cut))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), contact_sheet(tiles, columns=args.columns, tile_width=256),
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}: {len(tiles)} images, people drawn from score {cut:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
