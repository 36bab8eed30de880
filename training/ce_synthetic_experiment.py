"""Synthetic Coupled Embedding experiment: plain AE (1-D), 8-D AE and full CE (docs/).

Same data, budget, backbone and code path for every arm; only the switches differ
(`config/train/ce_synthetic_{ae1d,ae8d,full}.yaml`):
- ae1d: `ce_higherhrnet_lite_w16_256_coco_tag1` (1 tag value per joint), no coupling loss,
  fixed-sigma heatmaps (focal weight kept);
- ae8d: the 8-D network, no coupling loss, fixed-sigma heatmaps;
- full: the 8-D network, coupling loss 1e-4, scale-adaptive heatmaps (release settings).

Every arm starts from the same backbone: the shipped `higherhrnet_lite_w16_256_coco` weights
(trained on the synthetic world), heads freshly initialised; then `steps` Adam steps at the
input size of the configs. Held-out sets with exactly 1, 3, 6 and 10 people per image measure
COCO AP (CE test path with flip) and the embedding statistics of
`training/ce_embedding_analysis.py`.

Usage (writes docs/coupled_embedding_runs/results.json and the plots):
    nice -n 10 ./env.sh python training/ce_synthetic_experiment.py --out runs/ce_experiment \
        --seeds 0 1 2 --steps 300
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
ARMS = {
    "ae1d": ("ce_synthetic_ae1d", "ce_higherhrnet_lite_w16_256_coco_tag1"),
    "ae8d": ("ce_synthetic_ae8d", "ce_higherhrnet_lite_w16_256_coco"),
    "full": ("ce_synthetic_full", "ce_higherhrnet_lite_w16_256_coco"),
}
CROWDING = (1, 3, 6, 10)


def make_data(root: Path, size: int, train_images: int, val_images: int) -> None:
    """Training set with 1-10 people per image; one held-out set per crowding level."""
    from pose_core.data.synthetic import difficulty_config, write_dataset

    base = difficulty_config("default", size, size, "coco", max_people=10)
    if not (root / "train" / "annotations.json").is_file():
        train = dataclasses.replace(base, min_people=1, max_people=10)
        write_dataset(root / "train", train_images, seed=100, size_wh=(size, size), config=train)
    for people in CROWDING:
        target = root / f"val_{people}"
        if not (target / "annotations.json").is_file():
            level = dataclasses.replace(base, min_people=people, max_people=people)
            write_dataset(target, val_images, seed=200 + people, size_wh=(size, size),
                          config=level)


def init_file(model_name: str, out: Path, seed: int) -> Path:
    """Shipped backbone + freshly initialised CE head (seeded), as a loadable state_dict."""
    from pose_core.default_model import default_checkpoint_path
    from pose_core.models import build_model
    from pose_core.models.checkpoint import load_backbone_checkpoint

    path = out / f"init_{model_name}_seed{seed}.pt"
    if not path.is_file():
        torch.manual_seed(seed)
        model = build_model(model_name)
        load_backbone_checkpoint(model, default_checkpoint_path())
        torch.save({"model": model.state_dict()}, path)
    return path


def train_arm(arm: str, seed: int, data: Path, out: Path, steps: int) -> Path:
    from pose_core.engine.cli import main as train_main

    config, model_name = ARMS[arm]
    run = out / f"{arm}_seed{seed}"
    if (run / "last.pt").is_file():
        return run
    status = train_main([
        "--config", str(REPO / "config" / "train" / f"{config}.yaml"),
        "--output-dir", str(run),
        f"seed={seed}", f"max_steps_per_epoch={steps}", "validation.every_epochs=0",
        f"model.init_checkpoint={init_file(model_name, out, seed)}",
        f"data.train_annotations={data / 'train' / 'annotations.json'}",
        f"data.train_images={data / 'train' / 'images'}",
        f"data.val_annotations={data / 'val_3' / 'annotations.json'}",
        f"data.val_images={data / 'val_3' / 'images'}",
    ])
    if status != 0:
        raise RuntimeError(f"training {arm} seed {seed} failed ({status})")
    return run


def evaluate_arm(arm: str, run: Path, data: Path, max_images: int) -> dict[str, Any]:
    import cv2

    from pose_core.data.coco import load_coco_keypoints
    from pose_core.engine.tasks import evaluate_coco_keypoints
    from pose_core.inference import PoseEstimator
    from pose_core.inference.backends import TorchBackend
    from pose_core.models import build_model, model_info
    from pose_core.models.checkpoint import load_checkpoint

    _, model_name = ARMS[arm]
    model = build_model(model_name)
    load_checkpoint(model, run / "last.pt")
    model.eval()
    # at most 10 people per scene: the parser keeps the top 10 candidates per joint type
    estimator = PoseEstimator(model_name, backend=TorchBackend(model, "cpu"), flip_test=True,
                              max_people=10)
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "ce_embedding_analysis", REPO / "training" / "ce_embedding_analysis.py"
    )
    analysis = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(analysis)  # type: ignore[union-attr]
    results: dict[str, Any] = {}
    for people in CROWDING:
        folder = data / f"val_{people}"
        keypoints = model_info(model_name).keypoints
        records = load_coco_keypoints(folder / "annotations.json", keypoints,
                                      image_dir=folder / "images")[:max_images]
        poses = [estimator(cv2.imread(str(r.path))) for r in records]
        ap = evaluate_coco_keypoints(folder / "annotations.json", [r.image_id for r in records],
                                     poses, keypoints)
        stats = analysis.analyse_model(model, model_name, folder / "annotations.json",
                                       folder / "images", max_images)
        results[str(people)] = {"AP": ap["AP"], "AP50": ap.get("AP50"), **stats}
    return results


def summarise(results: dict[str, Any]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """arm -> level -> metric -> (mean, std, n) over seeds."""
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    metrics = ("AP", "pearson_abs_mean_centred", "effective_rank", "participation_ratio",
               "gt_grouping_accuracy")
    for arm in ARMS:
        runs = [r for r in results.values() if r["arm"] == arm]
        if not runs:
            continue
        table[arm] = {}
        for level in map(str, CROWDING):
            table[arm][level] = {}
            for metric in metrics:
                values = np.asarray([r["levels"][level][metric] for r in runs], np.float64)
                values = values[np.isfinite(values)]
                table[arm][level][metric] = (
                    [float(values.mean()), float(values.std()), int(len(values))]
                    if len(values) else [float("nan"), float("nan"), 0]
                )
    return table


def plot(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Three figures: AP, GT-location grouping accuracy and tag statistics vs crowding."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = summarise(results)
    labels = {"ae1d": "plain AE (1-D)", "ae8d": "8-D AE, no scale loss", "full": "full CE"}
    written = []
    panels = (
        ("coupled_embedding_ap.png", (("AP", "COCO AP (CE test path, flip)"),)),
        ("coupled_embedding_grouping.png",
         (("gt_grouping_accuracy", "joints nearest to own person's mean tag"),)),
        ("coupled_embedding_tags.png",
         (("pearson_abs_mean_centred", "mean |Pearson r| between tag dims"),
          ("effective_rank", "effective rank of mean tags"))),
    )
    for filename, metrics in panels:
        figure, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.6))
        axes = np.atleast_1d(axes)
        for axis, (metric, title) in zip(axes, metrics):
            for arm, levels in table.items():
                means = [levels[str(k)][metric][0] for k in CROWDING]
                stds = [levels[str(k)][metric][1] for k in CROWDING]
                axis.errorbar(CROWDING, means, yerr=stds, marker="o", capsize=3,
                              label=labels[arm])
            axis.set_xlabel("people per image")
            axis.set_xticks(CROWDING)
            axis.set_title(title, fontsize=10)
            axis.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        path = out_dir / filename
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ce_experiment"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=list(ARMS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--train-images", type=int, default=600)
    parser.add_argument("--val-images", type=int, default=25)
    parser.add_argument("--results", type=Path,
                        default=REPO / "docs" / "coupled_embedding_runs" / "results.json")
    parser.add_argument("--plot-only", action="store_true",
                        help="only draw the figures from --results (into its parent's parent)")
    args = parser.parse_args(argv)
    if args.plot_only:
        results = json.loads(args.results.read_text())
        for path in plot(results, args.results.parent.parent):
            print(path)
        print(json.dumps(summarise(results), indent=1))
        return 0
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "data"
    make_data(data, args.size, args.train_images, args.val_images)
    results: dict[str, Any] = {}
    if args.results.is_file():
        results = json.loads(args.results.read_text())
    for seed in args.seeds:
        for arm in args.arms:
            key = f"{arm}_seed{seed}"
            if key in results:
                continue
            started = time.time()
            run = train_arm(arm, seed, data, args.out, args.steps)
            trained = time.time()
            results[key] = {
                "arm": arm, "seed": seed, "size": args.size,
                "steps": int(torch.load(run / "last.pt", weights_only=True)["step"]),
                "train_seconds": trained - started,
                "levels": evaluate_arm(arm, run, data, args.val_images),
                "eval_seconds": time.time() - trained,
            }
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps(results, indent=1) + "\n")
            print(key, json.dumps(results[key]["levels"]), flush=True)
    plot(results, args.results.parent.parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
