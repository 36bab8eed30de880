"""Make the training and validation data of the shipped model (config/train/shipped_model_v2.yaml).

The demo shows 640x480 frames of people walking at many scales, overlapping; held-out checks use
`pose-synth` defaults (256x256, "default" level). The training set mixes both, plus the crowd and
easy levels, as one COCO file whose `file_name`s point into the parts:

    part          size      level / mode                        images
    default       256x256   default                             6000
    wide          640x480   default (non-square stills)         1500
    video         640x480   --video, 4-6 walkers, 24 clips      24 x 80
    crowd         256x256   crowd, at most 8 people             1500
    easy          256x256   easy                                1000
    val           256x256   default (validation while training)  200

Seeds 101-199 (stills) and 200-299 (clips) are used here only; the demo camera uses seed 0 and
the held-out test sets of docs/training_synthetic.md use seeds 12 and 777.

    ./env.sh python training/make_shipped_data.py --out data/shipped_v2
"""

from __future__ import annotations

import argparse
import json
import pathlib

from tqdm import tqdm

from pose_core.data.synthetic import write_dataset, write_video_dataset

STILL_PARTS = (  # name, size, difficulty, count, seed, max_people
    ("default", (256, 256), "default", 6000, 101, None),
    ("wide", (640, 480), "default", 1500, 102, None),
    ("crowd", (256, 256), "crowd", 1500, 103, 8),
    ("easy", (256, 256), "easy", 1000, 104, None),
)
VIDEO_CLIPS, VIDEO_FRAMES, VIDEO_SEED0 = 24, 80, 200
VAL_PART = ("val", (256, 256), "default", 200, 105, None)


def merge(parts: list[tuple[str, pathlib.Path]], out_file: pathlib.Path) -> int:
    """One COCO file over several written parts (ids renumbered, file names prefixed)."""
    images, annotations, categories = [], [], None
    for prefix, folder in parts:
        data = json.loads((folder / "annotations.json").read_text())
        categories = categories or data["categories"]
        id_map = {}
        for image in data["images"]:
            id_map[image["id"]] = len(images) + 1
            images.append({**image, "id": id_map[image["id"]],
                           "file_name": f"{prefix}/images/{image['file_name']}"})
        for ann in data["annotations"]:
            annotations.append({**ann, "id": len(annotations) + 1,
                                "image_id": id_map[ann["image_id"]]})
    out_file.write_text(json.dumps({"images": images, "annotations": annotations,
                                    "categories": categories}))
    return len(images)


def train_parts(out: pathlib.Path) -> list[tuple[str, pathlib.Path]]:
    """(prefix, folder) of every training part under `out`, in the order of `train.json`."""
    parts = [(name, out / name) for name, *_ in STILL_PARTS]
    parts += [(f"video/{clip:02d}", out / f"video/{clip:02d}") for clip in range(VIDEO_CLIPS)]
    return parts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("data/shipped_v2"))
    args = parser.parse_args(argv)
    out = args.out
    for name, size, level, count, seed, max_people in tqdm(STILL_PARTS, desc="stills"):
        write_dataset(out / name, count, seed, size_wh=size, difficulty=level,
                      max_people=max_people)
    for clip in tqdm(range(VIDEO_CLIPS), desc="clips"):
        write_video_dataset(out / f"video/{clip:02d}", VIDEO_FRAMES, VIDEO_SEED0 + clip,
                            size_wh=(640, 480), num_people=4 + clip % 3)
    name, size, level, count, seed, max_people = VAL_PART
    write_dataset(out / name, count, seed, size_wh=size, difficulty=level, max_people=max_people)
    count = merge(train_parts(out), out / "train.json")
    merge([(name, out / name)], out / "val.json")
    print(f"wrote {out / 'train.json'} ({count} images) and {out / 'val.json'}")


if __name__ == "__main__":
    main()
