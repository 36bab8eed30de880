"""Benchmark of the synthetic world (not a test) and its contact sheet.

Measures images per second of `render_scene` (and render + JPEG encode, as `pose-synth` does) at
256x256 and 512x512 with exactly 1 and 10 people, plus `SyntheticVideo.frame` at 640x480 with 5
people; each number is the median over repeats of a batch of images, on one core (the process is
pinned to one CPU where the OS allows). Prints a Markdown table and the machine; with
`--contact-sheet PATH` also writes a PNG grid of generated images with skeletons drawn
(green = visible joint, red = hidden joint, a box per person).

Example:
    nice -n 10 ./env.sh python training/benchmark_synthetic.py --repeats 5 --images 40 \
        --contact-sheet docs/synthetic_contact_sheet.png
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import replace

import cv2
import numpy as np

from pose_core.data.synthetic import (
    DIFFICULTY_LEVELS,
    SyntheticScene,
    SyntheticVideo,
    difficulty_config,
    render_scene,
)
from pose_core.keypoint_specs import get_keypoint_spec


def machine_description() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{model}; {os.cpu_count()} logical CPUs; load average {load[0]:.1f}; "
            f"Python {platform.python_version()}; OpenCV {cv2.__version__}; "
            f"numpy {np.__version__}")


def _rate(fn, count: int, repeats: int) -> tuple[float, float]:  # noqa: ANN001
    """Median images/s over `repeats` batches of `count` calls, wall clock and CPU time."""
    wall, cpu = [], []
    fn(0)  # warm caches (noise tiles)
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(count):
            fn(1000 * (r + 1) + i)
        wall.append(count / (time.perf_counter() - t0))
        cpu.append(count / max(time.process_time() - c0, 1e-9))
    return statistics.median(wall), statistics.median(cpu)


def run_benchmark(images: int, repeats: int) -> list[tuple[str, float, float]]:
    rows = []
    for size in (256, 512):
        for people in (1, 10):
            config = replace(difficulty_config("default", size, size), min_people=people,
                             max_people=people, overlap=0.3)

            def render(seed: int, config=config) -> None:  # noqa: ANN001
                render_scene(config, seed)

            def render_jpeg(seed: int, config=config) -> None:  # noqa: ANN001
                cv2.imencode(".jpg", render_scene(config, seed).image_bgr,
                             [cv2.IMWRITE_JPEG_QUALITY, 92])

            rows.append((f"{size}x{size}, {people} people, render", *_rate(render, images,
                                                                               repeats)))
            rows.append((f"{size}x{size}, {people} people, render + JPEG",
                         *_rate(render_jpeg, images, repeats)))
    default = difficulty_config("default", 256, 256)

    def default_jpeg(seed: int) -> None:
        cv2.imencode(".jpg", render_scene(default, seed).image_bgr,
                     [cv2.IMWRITE_JPEG_QUALITY, 92])

    rows.append(("256x256, default level (1-6 people), render + JPEG",
                 *_rate(default_jpeg, images, repeats)))
    video = SyntheticVideo(640, 480, num_people=5, fps=30.0, seed=0)
    rows.append(("video 640x480, 5 people, frame()", *_rate(video.frame, images, repeats)))
    return rows


def level_statistics(images: int, size: int = 256) -> list[str]:
    """Markdown rows: people per image, visibility shares, joint extents, crowd index."""
    rows = []
    for level in DIFFICULTY_LEVELS:
        config = difficulty_config(level, size, size)
        people, extents, crowd = [], [], []
        counts = np.zeros(3, np.int64)
        for i in range(images):
            scene = render_scene(config, (99, i))
            people.append(scene.num_people)
            crowd.append(scene.crowd_index)
            visibility = scene.keypoints[..., 2].astype(np.int64).ravel()
            counts += np.bincount(visibility, minlength=3)
            for person in scene.keypoints:
                labelled = person[person[:, 2] > 0]
                if len(labelled):
                    extents.append(float(np.ptp(labelled[:, 1])))
        share = counts / max(int(counts.sum()), 1)
        p10, p50, p90 = np.percentile(extents, (10, 50, 90))
        rows.append(f"| {level} | {np.mean(people):.2f} | {max(people)} | "
                    f"{share[2]:.2f} / {share[1]:.2f} / {share[0]:.2f} | "
                    f"{p10:.0f} / {p50:.0f} / {p90:.0f} | {np.mean(crowd):.2f} |")
    return rows


def draw_annotations(scene: SyntheticScene) -> np.ndarray:
    """The scene image with skeletons, joints (green visible, red hidden) and boxes."""
    image = scene.image_bgr.copy()
    spec = get_keypoint_spec(scene.keypoints_name)
    for person, box in zip(scene.keypoints, scene.boxes, strict=True):
        x, y, w, h = (int(round(float(v))) for v in box)
        cv2.rectangle(image, (x, y), (x + w - 1, y + h - 1), (255, 255, 0), 1, cv2.LINE_AA)
        for a, b in spec.skeleton:
            if person[a, 2] > 0 and person[b, 2] > 0:
                cv2.line(image, (int(person[a, 0]), int(person[a, 1])),
                         (int(person[b, 0]), int(person[b, 1])), (255, 255, 255), 1,
                         cv2.LINE_AA)
        for px, py, v in person:
            if v > 0:
                colour = (0, 230, 0) if v == 2 else (0, 0, 255)
                cv2.circle(image, (int(px), int(py)), 2, colour, -1, cv2.LINE_AA)
    return image


def contact_sheet(path: str, tile: int = 224, levels: int = 24) -> None:
    """A 4 x 4 grid of raw / annotated pairs: difficulty levels, CrowdPose and video frames."""
    scenes = [
        ("easy", render_scene(difficulty_config("easy", 256, 256), 1)),
        ("default", render_scene(difficulty_config("default", 256, 256), 2)),
        ("default", render_scene(difficulty_config("default", 256, 256), 7)),
        ("hard", render_scene(difficulty_config("hard", 256, 256), 3)),
        ("crowd", render_scene(difficulty_config("crowd", 256, 256), 4)),
        ("crowdpose", render_scene(difficulty_config("crowd", 256, 256, "crowdpose"), 5)),
    ]
    video = SyntheticVideo(384, 288, num_people=5, fps=30.0, seed=3)
    scenes += [("video f0", video.frame(0)), ("video f20", video.frame(20))]
    tiles = []
    for name, scene in scenes:
        for annotated in (False, True):
            image = draw_annotations(scene) if annotated else scene.image_bgr
            h, w = image.shape[:2]
            scale = tile / max(h, w)
            small = cv2.resize(image, (int(w * scale), int(h * scale)),
                               interpolation=cv2.INTER_AREA)
            canvas = np.full((tile, tile, 3), 32, np.uint8)
            canvas[:small.shape[0], :small.shape[1]] = small
            cv2.putText(canvas, name, (4, tile - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(canvas)
    rows = [np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles), 4)]
    sheet = np.vstack(rows)
    # coarser colour steps keep the PNG small (the sheet is for eyes, not for training)
    step = 256 // levels
    sheet = (sheet // step * step + step // 2).astype(np.uint8)
    cv2.imwrite(path, sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40, help="images per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--contact-sheet", default=None, help="write the PNG grid here")
    parser.add_argument("--skip-benchmark", action="store_true")
    parser.add_argument("--level-stats", type=int, default=0, metavar="N",
                        help="also print statistics of N images per difficulty level")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cv2.setNumThreads(1)
    if not args.skip_benchmark:
        print(f"machine: {machine_description()}")
        print(f"median over {args.repeats} repeats of {args.images} images, one core\n")
        print("| case | images/s (wall) | images/s (CPU time) |")
        print("|---|---:|---:|")
        for name, wall, cpu in run_benchmark(args.images, args.repeats):
            print(f"| {name} | {wall:.0f} | {cpu:.0f} |")
    if args.level_stats > 0:
        print(f"\nstatistics of {args.level_stats} images per level at 256x256\n")
        print("| level | people / image | max | joints v=2 / v=1 / v=0 | "
              "vertical joint extent p10 / median / p90 (px) | mean crowdIndex |")
        print("|---|---|---|---|---|---|")
        for row in level_statistics(args.level_stats):
            print(row)
    if args.contact_sheet:
        contact_sheet(args.contact_sheet)
        print(f"\nwrote {args.contact_sheet} ({os.path.getsize(args.contact_sheet) // 1024} KiB)")


if __name__ == "__main__":
    main()
