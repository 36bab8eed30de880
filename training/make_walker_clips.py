"""Extra training data for the demo's scene: many short walking clips, frames far apart.

The shipped model's misses and wrong-person edges in the demo are where walkers overlap
(docs/training_synthetic.md). `make_shipped_data.py`'s clips are 24 runs of 80 consecutive frames
at 30 fps (2.7 s each: few distinct overlaps); this part writes `--clips` clips of `--frames`
frames at `--fps` (3 fps: frames a third of a second apart), 4-6 walkers at 640x480, seeds from
`--seed0` (300: unused elsewhere; the demo camera uses 0, the tracking videos 0-3, the tuning
clips 1 and 500), into `<data>/walkers/`, and a training file (`make_shipped_data.merge`) that
lists the training parts of `make_shipped_data.py` once and the new clips `--repeat` times
(repeated entries get their own image ids, so each is sampled on its own).

    ./env.sh python training/make_walker_clips.py --data data/shipped_v2 \\
        --train-out data/shipped_v2/train_v4.json
"""

from __future__ import annotations

import argparse
import pathlib

from tqdm import tqdm

from make_shipped_data import merge, train_parts  # training/
from pose_core.data.synthetic import write_video_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=pathlib.Path, required=True,
                        help="the folder make_shipped_data.py wrote (its parts are reused)")
    parser.add_argument("--train-out", type=pathlib.Path, required=True)
    parser.add_argument("--clips", type=int, default=120)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--fps", type=float, default=3.0)
    parser.add_argument("--seed0", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    clips = []
    for clip in tqdm(range(args.clips), desc="clips"):
        name = f"walkers/{clip:03d}"
        write_video_dataset(args.data / name, args.frames, args.seed0 + clip, size_wh=(640, 480),
                            num_people=4 + clip % 3, fps=args.fps)
        clips.append((name, args.data / name))
    count = merge(train_parts(args.data) + clips * args.repeat, args.train_out)
    print(f"wrote {args.train_out}: {count} images ({len(clips) * args.frames} new "
          f"x {args.repeat})")


if __name__ == "__main__":
    main()
