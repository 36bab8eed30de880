"""Double Embedding grouping experiment on simulated network outputs (no training).

Synthetic standing people (COCO 17 joints + centre) on a square map; simulated outputs:
Gaussian heatmap peaks (sigma 2) with random scores and missed joints, 1-D tags = the person's
value + per-joint Gaussian noise (sigma_tag) painted in a disk (two noisy copies, as the flip
test gives), offsets to the parent / centre + Gaussian noise (sigma_off, map pixels) painted in a
square around each joint (later people overwrite earlier ones where they overlap).
Compared on the same maps: tag-only associative embedding (HigherHRNet parser, tags on every
joint) vs Double Embedding grouping in "release" and "paper" mode. Metrics: fraction of correctly
grouped joints and COCO OKS-AP (pycocotools through `pose_core.evaluation`).

MRM study: people whose wrists / ankles have low scores and large localisation noise while their
elbows / knees are confident (or, as a control, below the 0.75 threshold); mean error of those
joints with MRM on vs off (paper mode). Offsets either regress the joint's true limb vector
("limb-vector", constant over the square) or the exact training target parent - pixel
("pixel-anchored").

Usage: python training/dem_grouping_experiment.py --out docs/double_embedding_runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import tempfile
from dataclasses import dataclass

import numpy as np

import pose_core
from pose_core.evaluation import KeypointEvaluator
from pose_core.keypoint_specs import COCO_17
from pose_core.models.double_embedding import DEM_PARTITIONS

PARTITION = DEM_PARTITIONS["coco"]
# standing template, (x, y) in person heights from the hip midpoint level
TEMPLATE = np.array([
    (0.0, -0.42), (-0.03, -0.44), (0.03, -0.44), (-0.06, -0.42), (0.06, -0.42),
    (-0.13, -0.30), (0.13, -0.30), (-0.18, -0.10), (0.18, -0.10), (-0.20, 0.08), (0.20, 0.08),
    (-0.09, 0.05), (0.09, 0.05), (-0.10, 0.28), (0.10, 0.28), (-0.10, 0.50), (0.10, 0.50),
])


@dataclass(frozen=True)
class Scene:
    """Ground truth: joints (P, 17, 3) x, y, v (v 2 = has a peak, 1 = missed), centres (P, 2)."""

    joints: np.ndarray
    centres: np.ndarray
    heatmaps: np.ndarray  # (18, S, S)
    tags: np.ndarray  # (18, S, S, 2)
    offsets: np.ndarray  # (42, S, S) normalised by sqrt(2) S
    true_joints: np.ndarray | None = None  # (P, 17, 2) before localisation noise (MRM study)


def _people(rng: np.random.Generator, count: int, size: int, height: float) -> np.ndarray:
    joints = np.zeros((count, 17, 3))
    for p in range(count):
        h = height * rng.uniform(0.8, 1.2)
        anchor = rng.uniform([0.15 * size, 0.45 * h], [0.85 * size, size - 0.5 * h])
        pose = TEMPLATE + rng.normal(0, 0.035, TEMPLATE.shape)
        joints[p, :, :2] = anchor + pose * h
        joints[p, :, 2] = 2
    return joints


def _paint_peak(maps: np.ndarray, channel: int, x: float, y: float, value: float) -> None:
    size = maps.shape[-1]
    xi, yi = int(round(x)), int(round(y))
    y0, y1, x0, x1 = max(0, yi - 6), min(size, yi + 7), max(0, xi - 6), min(size, xi + 7)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    patch = value * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 2.0**2))
    np.maximum(maps[channel, y0:y1, x0:x1], patch, out=maps[channel, y0:y1, x0:x1])


def _region(x: float, y: float, half: int, size: int) -> tuple[slice, slice, np.ndarray]:
    xi, yi = int(round(x)), int(round(y))
    rows = slice(max(0, yi - half), min(size, yi + half + 1))
    cols = slice(max(0, xi - half), min(size, xi + half + 1))
    yy, xx = np.mgrid[rows, cols]
    return rows, cols, np.stack((xx, yy), -1).astype(np.float64)


def simulate(rng: np.random.Generator, count: int, sigma_tag: float, sigma_off: float,
             miss: float, size: int = 128, height: float = 56.0, pixel_anchored: bool = True,
             scores: tuple[float, float] = (0.5, 1.0), people: np.ndarray | None = None) -> Scene:
    """One scene: people, then their simulated maps (see the module docstring)."""
    joints = _people(rng, count, size, height) if people is None else people.copy()
    joints[:, :, 2] = np.where(rng.uniform(size=joints.shape[:2]) < miss, 1, 2)
    inside = (joints[:, :, :2] >= 0).all(-1) & (joints[:, :, :2] < size).all(-1)
    joints[~inside, 2] = 0
    centres = joints[:, :, :2].mean(axis=1)
    heatmaps = np.zeros((18, size, size))
    tags = np.full((18, size, size, 2), 100.0)
    offsets = np.zeros((42, size, size))
    z = math.sqrt(2) * size
    person_tags = rng.permutation(count) * 1.5
    first = PARTITION.offset_channels()
    for p in range(count):
        points = [*((j, joints[p, j]) for j in range(17)), (17, (*centres[p], 2))]
        for j, (x, y, v) in points:
            if v < 2:
                continue
            value = rng.uniform(*scores) if j < 17 else rng.uniform(0.7, 1.0)
            _paint_peak(heatmaps, j, x, y, value)
            rows, cols, _ = _region(x, y, 3, size)
            tags[j, rows, cols] = person_tags[p] + rng.normal(0, sigma_tag, 2)
            if j not in first:
                continue
            rows, cols, grid = _region(x, y, 3, size)
            anchor = grid if pixel_anchored else np.array([x, y])
            noise = rng.normal(0, sigma_off, 4)
            targets = [centres[p]] if j in PARTITION.face else [
                joints[p, PARTITION.parent_of(j), :2], centres[p]]
            for k, target in enumerate(targets):
                delta = (target - anchor + noise[2 * k:2 * k + 2]) / z
                offsets[first[j] + 2 * k, rows, cols] = delta[..., 1]
                offsets[first[j] + 2 * k + 1, rows, cols] = delta[..., 0]
    return Scene(joints, centres, heatmaps.astype(np.float32), tags.astype(np.float32),
                 offsets.astype(np.float32))


def group(scene: Scene, method: str, **options: object) -> pose_core.Poses:
    """AE ("ae", tags on every joint) or DEM ("release" / "paper") grouping of one scene."""
    if method == "ae":
        refine = bool(options.get("refine", True))
        return pose_core.group_bottom_up(scene.heatmaps[:17], scene.tags[:17], refine=refine)
    return pose_core.group_bottom_up(scene.heatmaps, scene.tags, method="double_embedding",
                                     offsets=scene.offsets, dem_mode=method, **options)


def correctly_grouped(
    scene: Scene, poses: pose_core.Poses, radius: float = 3.0
) -> tuple[int, int]:
    """(correctly grouped joints, GT peaks). Each found joint is owned by the GT person with
    the nearest peak of its type within `radius`; each GT person is matched to the found
    person holding most of its joints, and only those joints count (splits and mixes lose)."""
    gt = scene.joints
    owned = np.zeros((len(poses.keypoints), len(gt)), np.int64)
    for k, person in enumerate(poses.keypoints):
        for j in np.nonzero(person[:, 2] > 0)[0]:
            d = np.linalg.norm(gt[:, j, :2] + 0.5 - person[j, :2], axis=1)
            d[gt[:, j, 2] < 2] = np.inf
            if d.min() <= radius:
                owned[k, int(np.argmin(d))] += 1
    correct = int(owned.max(axis=0).sum()) if len(owned) else 0
    return correct, int((gt[:, :, 2] == 2).sum())


def oks_ap(scenes: list[Scene], results: list[pose_core.Poses], workdir: pathlib.Path) -> float:
    """COCO keypoint AP (pycocotools) of the results against the scenes' people."""
    images, annotations = [], []
    for i, scene in enumerate(scenes):
        size = scene.heatmaps.shape[-1]
        images.append({"id": i + 1, "width": size, "height": size, "file_name": f"{i}.png"})
        for p, person in enumerate(scene.joints):
            labelled = person[:, 2] > 0
            x0, y0 = person[labelled, :2].min(0)
            x1, y1 = person[labelled, :2].max(0)
            keypoints = np.concatenate((person[:, :2] + 0.5, np.where(labelled, 2, 0)[:, None]), 1)
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
                "keypoints": keypoints.ravel().tolist(), "num_keypoints": int(labelled.sum()),
                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float((x1 - x0) * (y1 - y0) * 1.2),
            })
    categories = [{"id": 1, "name": "person", "keypoints": list(COCO_17.names),
                   "skeleton": COCO_17.skeleton_1based}]
    path = workdir / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}))
    evaluator = KeypointEvaluator(path, "coco")
    evaluator.reset()
    evaluator.process(list(range(1, len(scenes) + 1)), results)
    return float(evaluator.evaluate()["AP"])


def grouping_sweep(args: argparse.Namespace, workdir: pathlib.Path) -> list[dict]:
    rows = []
    for count in args.people:
        for sigma_tag in args.tag_noise:
            rng = np.random.default_rng(args.seed)
            scenes = [simulate(rng, count, sigma_tag, args.offset_noise, args.miss)
                      for _ in range(args.images)]
            for method in ("ae", "release", "paper"):
                results = [group(scene, method) for scene in scenes]
                counts = np.array([correctly_grouped(s, group(s, method, refine=False))
                                   for s in scenes])
                rows.append({
                    "people": count, "sigma_tag": sigma_tag, "method": method,
                    "correct_fraction": float(counts[:, 0].sum() / counts[:, 1].sum()),
                    "ap": oks_ap(scenes, results, workdir),
                })
                print(json.dumps(rows[-1]), flush=True)
    return rows


def _limb_error(scene: Scene, poses: pose_core.Poses, joints: tuple[int, ...]) -> list[float]:
    errors = []
    assert scene.true_joints is not None
    for p, person in enumerate(scene.joints):
        for j in joints:
            if person[j, 2] < 2:
                continue
            found = poses.keypoints[:, j]
            # outputs use the official pixel-centre convention (index + 0.5)
            d = np.linalg.norm(found[:, :2] - 0.5 - scene.true_joints[p, j], axis=1)
            d[found[:, 2] <= 0] = np.inf
            if d.size and d.min() < 12:
                errors.append(float(d.min()))
    return errors


def mrm_study(args: argparse.Namespace) -> list[dict]:
    """Low-score end joints displaced by `args.mrm_shift` px, parents confident or not."""
    ends = (9, 10, 15, 16)
    rows = []
    for anchored in (False, True):
        for parent_score in (0.9, 0.7):
            rng = np.random.default_rng(args.seed + 1)
            errors = {False: [], True: []}
            for _ in range(args.images):
                people = _people(rng, 3, 128, 56.0)
                true = people[:, :, :2].copy()
                shift = rng.normal(0, args.mrm_shift, (3, 17, 2))
                shifted = people.copy()
                shifted[:, ends, :2] += shift[:, ends]
                scene = simulate(rng, 3, 0.1, 1.0, 0.0, people=shifted, pixel_anchored=anchored,
                                 scores=(parent_score, parent_score))
                # rebuild: ends low-score at the shifted place; offsets from the true places
                scene = dataclasses.replace(
                    _with_low_score_ends(scene, true, ends, anchored, rng), true_joints=true)
                for mrm in (False, True):
                    poses = group(scene, "paper", dem_mrm=mrm)
                    errors[mrm] += _limb_error(scene, poses, ends)
            rows.append({"offsets": "pixel-anchored" if anchored else "limb-vector",
                         "parent_score": parent_score,
                         "error_mrm_off": float(np.mean(errors[False])),
                         "error_mrm_on": float(np.mean(errors[True])),
                         "joints": len(errors[False])})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _with_low_score_ends(scene: Scene, true: np.ndarray, ends: tuple[int, ...], anchored: bool,
                         rng: np.random.Generator) -> Scene:
    """End joints: peak 0.3 at the displaced position; limb-vector offsets from the TRUE joint
    position (a regression of the limb), pixel-anchored ones from each pixel."""
    size = scene.heatmaps.shape[-1]
    z = math.sqrt(2) * size
    first = PARTITION.offset_channels()
    for j in ends:
        scene.heatmaps[j] = 0
        for p, person in enumerate(scene.joints):
            x, y, v = person[j]
            if v < 2:
                continue
            _paint_peak(scene.heatmaps, j, x, y, 0.3)
            rows, cols, grid = _region(x, y, 3, size)
            parent = true[p, PARTITION.parent_of(j)]
            anchor = grid if anchored else true[p, j]
            delta = (parent - anchor + rng.normal(0, 1.0, 2)) / z
            scene.offsets[first[j], rows, cols] = delta[..., 1]
            scene.offsets[first[j] + 1, rows, cols] = delta[..., 0]
    return scene


def plot(results: dict, out_dir: pathlib.Path) -> None:
    """`grouping.png` (correct fraction and AP vs tag noise, one panel pair per crowd size)
    and `mrm.png` (mean error of the low-score end joints, MRM off / on)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["grouping"]
    crowds = sorted({r["people"] for r in rows})
    fig, axes = plt.subplots(2, len(crowds), figsize=(4 * len(crowds), 6.5), squeeze=False)
    styles = {"ae": ("tag-only AE", "tab:gray"), "release": ("DEM release", "tab:blue"),
              "paper": ("DEM paper", "tab:orange")}
    for c, people in enumerate(crowds):
        for method, (label, colour) in styles.items():
            sel = sorted((r for r in rows if r["people"] == people and r["method"] == method),
                         key=lambda r: r["sigma_tag"])
            noise = [r["sigma_tag"] for r in sel]
            axes[0, c].plot(noise, [r["correct_fraction"] for r in sel], "o-", c=colour,
                            label=label)
            axes[1, c].plot(noise, [r["ap"] for r in sel], "o-", c=colour, label=label)
        axes[0, c].set_title(f"{people} people / 128x128 map")
        axes[1, c].set_xlabel("tag noise sigma")
    axes[0, 0].set_ylabel("correctly grouped joints")
    axes[1, 0].set_ylabel("OKS-AP")
    axes[0, 0].legend()
    fig.tight_layout()
    fig.savefig(out_dir / "grouping.png", dpi=90)
    mrm = results["mrm"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"{r['offsets']}\nparent {r['parent_score']}" for r in mrm]
    x = np.arange(len(mrm))
    ax.bar(x - 0.2, [r["error_mrm_off"] for r in mrm], 0.4, label="MRM off")
    ax.bar(x + 0.2, [r["error_mrm_on"] for r in mrm], 0.4, label="MRM on")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("mean error of low-score\nwrists / ankles (px)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "mrm.png", dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("runs/dem_grouping"))
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--people", type=int, nargs="+", default=[2, 5, 10, 15])
    parser.add_argument("--tag-noise", type=float, nargs="+", default=[0.0, 0.2, 0.4, 0.6, 0.8])
    parser.add_argument("--offset-noise", type=float, default=2.0)
    parser.add_argument("--miss", type=float, default=0.1)
    parser.add_argument("--mrm-shift", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw the plots from <out>/results.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        plot(json.loads((args.out / "results.json").read_text()), args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        grouping = grouping_sweep(args, pathlib.Path(tmp))
    mrm = mrm_study(args)
    (args.out / "results.json").write_text(json.dumps(
        {"settings": {k: v for k, v in vars(args).items() if k != "out"},
         "grouping": grouping, "mrm": mrm}, indent=1, default=str) + "\n")
    plot(json.loads((args.out / "results.json").read_text()), args.out)


if __name__ == "__main__":
    main()
