"""Extra training data for the demo's scene: many short walking clips, frames far apart.

The shipped model's misses and wrong-person edges in the demo are where walkers overlap
(docs/training_synthetic.md). `make_shipped_data.py`'s clips are 24 runs of 80 consecutive frames
at 30 fps (2.7 s each: few distinct overlaps); this part writes `--clips` clips of `--frames`
frames at `--fps` (3 fps: frames a third of a second apart), 4-6 walkers at 640x480, seeds from
`--seed0` (300: unused elsewhere; the demo camera uses 0, the tracking videos 0-3, the tuning
clips 1 and 500), and a training file that lists an existing training file once and the new
frames `--repeat` times (repeated entries get their own image ids, so each is sampled on its own).

    ./env.sh python training/make_walker_clips.py --base data/shipped_v2/train.json \\
        --out data/shipped_v2/walkers --train-out data/shipped_v2/train_v4.json
"""

from __future__ import annotations

import argparse
import json
import pathlib

from tqdm import tqdm

from pose_core.data.synthetic import write_video_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=pathlib.Path, required=True,
                        help="the training file to extend (file names relative to its folder)")
    parser.add_argument("--out", type=pathlib.Path, required=True,
                        help="folder for the clips, inside the base file's folder")
    parser.add_argument("--train-out", type=pathlib.Path, required=True)
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--fps", type=float, default=3.0)
    parser.add_argument("--seed0", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    root = args.base.parent
    prefix = args.out.relative_to(root)  # raises when the clips would lie outside the root
    data = json.loads(args.base.read_text())
    images, annotations = list(data["images"]), list(data["annotations"])
    new_images, new_annotations = [], []
    for clip in tqdm(range(args.clips), desc="clips"):
        folder = args.out / f"{clip:03d}"
        write_video_dataset(folder, args.frames, args.seed0 + clip, size_wh=(640, 480),
                            num_people=4 + clip % 3, fps=args.fps)
        part = json.loads((folder / "annotations.json").read_text())
        ids = {}
        for image in part["images"]:
            ids[image["id"]] = len(new_images)
            file_name = f"{prefix}/{clip:03d}/images/{image['file_name']}"
            new_images.append({**image, "file_name": file_name})
        for ann in part["annotations"]:
            new_annotations.append({**ann, "image_id": ids[ann["image_id"]]})
    for _ in range(args.repeat):
        first = len(images) + 1
        for index, image in enumerate(new_images):
            images.append({**image, "id": first + index})
        for ann in new_annotations:
            annotations.append({**ann, "id": len(annotations) + 1,
                                "image_id": first + ann["image_id"]})
    args.train_out.write_text(json.dumps({**data, "images": images, "annotations": annotations}))
    print(f"wrote {args.train_out}: {len(images)} images ({len(new_images)} new x {args.repeat})")


if __name__ == "__main__":
    main()
