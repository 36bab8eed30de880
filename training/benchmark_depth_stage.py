"""Time `keypoints_from_depth` on one synthetic frame (640 x 480, 4 walkers, noisy depth with
holes), both units; medians of `--calls` calls, in this process.

    ./env.sh python training/benchmark_depth_stage.py --calls 50
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from pose_core.data.synthetic import SyntheticVideo
from pose_core.data.synthetic.depth import render_depth
from pose_core.depth import keypoints_from_depth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--frame", type=int, default=5)
    args = parser.parse_args(argv)
    video = SyntheticVideo(640, 480, 4, fps=10.0, seed=0)
    layout, scene = video.layout(args.frame), video.frame(args.frame)
    depth = render_depth(layout, scene, noise_m=0.002, hole_fraction=0.05, seed=1)
    keypoints = scene.keypoints.astype(np.float32).copy()
    keypoints[..., 2] = (keypoints[..., 2] > 0) * 0.9  # every labelled joint found
    print(f"{platform.processor() or platform.machine()}: {len(keypoints)} people")
    for unit, image in (("m", depth.depth), ("mm", depth.millimetres())):
        seconds = []
        for _ in range(args.calls):
            started = time.perf_counter()
            keypoints_from_depth(keypoints, image, depth.camera_matrix, unit)
            seconds.append(time.perf_counter() - started)
        print(f"depth_unit={unit}: median {1e3 * statistics.median(seconds):.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
