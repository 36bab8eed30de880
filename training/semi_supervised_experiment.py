"""The synthetic-crops experiment of docs/semi_supervised.md: 5 arms x seeds through pose-train.

Arms: supervised-only, naive consistency, PoseCons, PoseDual, PoseDual + Joint Cutout (the
`config/train/*_synthetic*.yaml` files, same budget). Each run is `pose-train --config ...`
in its own process (training only: `validation.every_epochs` is 0). Afterwards network 1 of
every run (`last.pt`) predicts the held-out crops in one batch: heatmap argmax (x stride 4) in
network-input pixels for PCK, mapped back through the crop affine to image pixels for OKS AP
(the project's `KeypointEvaluator`, pycocotools, ground-truth boxes, score = mean heatmap
maximum). The collapse indicator comes from each run's `train_log.csv`. Writes `results.json`
and the plots into `--out`; finished runs (a `last.pt` at the last step) are read, not rerun.

Usage (data first, see the docs):
    python training/semi_supervised_experiment.py --runs runs/semi_exp --out docs/semi_supervised \
        --seeds 0 1 2 --epochs 8 --steps-per-epoch 250 --parallel 2
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

PCK_THRESHOLDS = (0.05, 0.1, 0.2)

ARMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("supervised", "config/train/supervised_synthetic_crops.yaml", ()),
    ("naive consistency", "config/train/consistency_naive_synthetic.yaml", ()),
    ("PoseCons", "config/train/posecons_synthetic.yaml", ()),
    ("PoseDual", "config/train/posedual_synthetic.yaml", ()),
    ("PoseDual + Joint Cutout", "config/train/posedual_synthetic.yaml",
     ("semi_supervised.joint_cutout=5",)),
)


def run_arm(arm: tuple[str, str, tuple[str, ...]], seed: int, epochs: int, steps: int,
            runs: pathlib.Path) -> dict:
    name, config, overrides = arm
    run_dir = runs / f"{name.replace(' ', '_').replace('+', 'plus')}_seed{seed}"
    command = [sys.executable, "-m", "pose_core.engine.cli", "--config", config,
               "--output-dir", str(run_dir), "--no-resume", f"seed={seed}",
               f"epochs={epochs}", f"max_steps_per_epoch={steps}", *overrides]
    if _last_step(run_dir) != epochs * steps:  # a finished run is read, not rerun
        with open(run_dir.with_suffix(".log"), "w", encoding="utf-8") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    curve = []
    with open(run_dir / "train_log.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            curve.append((int(row["step"]), float(row["monitor/collapse_net1"])))
    return {"arm": name, "seed": seed, "run": run_dir.name, "collapse_curve": curve}


def _last_step(run_dir: pathlib.Path) -> int:
    """The last logged step of a run with a final checkpoint (-1 when unfinished)."""
    log = run_dir / "train_log.csv"
    if not (run_dir / "last.pt").is_file() or not log.is_file():
        return -1
    with open(log, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return int(rows[-1]["step"]) if rows else -1


def test_crops(run_dir: pathlib.Path) -> tuple[object, list[dict]]:
    """The task of a finished run and its held-out crops (no augmentation)."""
    from pose_core.engine.config import load_config
    from pose_core.engine.tasks import build_task

    task = build_task(load_config(run_dir / "config.yaml"))
    test = task._top_down_dataset(task.instances("val_annotations", "val_images"))
    test.augment = False
    return task, [test[i] for i in range(len(test))]


def pck(predicted: "torch.Tensor", items: list[dict], threshold: float) -> float:
    """Fraction of visible joints whose prediction (N, J, 2 crop pixels) lies within
    `threshold` x the crop side of the truth."""
    hits, total = 0, 0
    for item, joints in zip(items, predicted):
        visible = item["joints_vis"] > 0
        error = (joints - item["joints"][:, :2]).norm(dim=1)
        hits += int(((error <= threshold * max(item["image"].shape[-2:])) & visible).sum())
        total += int(visible.sum())
    return hits / max(total, 1)


def run_predictions(task: object, run_dir: pathlib.Path,
                    items: list[dict]) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Network 1 (`last.pt`) on the crops: heatmap argmax of the data's joints in input pixels
    (N, J, 2) and the heatmap maxima (N, J)."""
    import torch

    from pose_core.data.hard_views import argmax_joints
    from pose_core.engine.checkpointing import load_training_checkpoint

    model = task.build_networks()["model"]
    model.load_state_dict(load_training_checkpoint(run_dir / "last.pt")["model"])
    model.eval()
    with torch.no_grad():
        heatmaps = model(torch.stack([item["image"] for item in items]))
    heatmaps = heatmaps[:, list(task.channel_of_joint)]
    stride = items[0]["image"].shape[-1] / heatmaps.shape[-1]
    return argmax_joints(heatmaps, stride), heatmaps.flatten(2).amax(2)


def oks_ap(task: object, items: list[dict], joints: "torch.Tensor",
           maxima: "torch.Tensor") -> dict[str, float]:
    """COCO keypoint AP of the predictions: input pixels -> image pixels through the inverse
    crop affine (GT-box centre / scale, no rotation), one person per crop."""
    import numpy as np

    from pose_core.data.top_down_dataset import crop_affine_transform
    from pose_core.engine.tasks import evaluate_coco_keypoints
    from pose_core.structures import Poses

    poses, image_ids = [], []
    for item, points, peak in zip(items, joints.numpy(), maxima.numpy()):
        inverse = crop_affine_transform(item["center"].numpy().astype(np.float64),
                                        item["scale"].numpy().astype(np.float64), 0.0,
                                        task.image_wh, inverse=True)
        xy = points.astype(np.float64) @ inverse[:, :2].T + inverse[:, 2]
        keypoints = np.concatenate([xy, peak[:, None]], 1)[None].astype(np.float32)
        poses.append(Poses(keypoints, np.asarray([peak.mean()], np.float32)))
        image_ids.append(int(item["image_id"]))
    return evaluate_coco_keypoints(task.data.val_annotations, image_ids, poses, task.spec,
                                   task.data.dataset)


def add_scores(results: list[dict], runs: pathlib.Path, thresholds: tuple[float, ...]) -> dict:
    """PCK and OKS AP of every run, plus the mean-pose baseline (each joint predicted at its
    mean test position: what a network that ignores the image can reach at best)."""
    import torch

    task, items = test_crops(runs / results[0]["run"])
    truth = torch.stack([item["joints"][:, :2] for item in items])
    visible = torch.stack([item["joints_vis"] for item in items])[..., None]
    mean_pose = (truth * visible).sum(0) / visible.sum(0).clamp_min(1)
    baseline = {f"PCK@{t}": pck(mean_pose.expand_as(truth), items, t) for t in thresholds}
    ones = torch.ones(truth.shape[:2])
    baseline.update({k: v for k, v in oks_ap(task, items, mean_pose.expand_as(truth),
                                             ones).items() if k in ("AP", "AP50", "AR")})
    for result in results:
        predicted, maxima = run_predictions(task, runs / result["run"], items)
        result.update({f"PCK@{t}": pck(predicted, items, t) for t in thresholds})
        result.update({k: v for k, v in oks_ap(task, items, predicted, maxima).items()
                       if k in ("AP", "AP50", "AP75", "AR")})
    return baseline


def plot(results: list[dict], out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [arm[0] for arm in ARMS]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric, label in ((axes[0], "AP", "OKS AP (held-out crops, GT boxes)"),
                              (axes[1], "PCK@0.1", "PCK@0.1 (held-out crops)")):
        for index, name in enumerate(names):
            values = [r[metric] for r in results if r["arm"] == name]
            ax.scatter([index] * len(values), values, color="C0")
            if values:
                ax.hlines(sum(values) / len(values), index - 0.3, index + 0.3, color="C3")
        ax.set_xticks(range(len(names)), names, rotation=20)
        ax.set_ylabel(label)
    fig.tight_layout()
    fig.savefig(out / "ap_per_arm.png", dpi=110)
    fig, ax = plt.subplots(figsize=(7, 4))
    for index, name in enumerate(names):
        for number, r in enumerate(r for r in results if r["arm"] == name):
            steps, values = zip(*r["collapse_curve"]) if r["collapse_curve"] else ((), ())
            ax.plot(steps, values, color=f"C{index}", alpha=0.8,
                    label=name if number == 0 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("collapse indicator (mean channel max, unlabeled)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "collapse_indicator.png", dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=pathlib.Path, default=pathlib.Path("runs/semi_exp"))
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("docs/semi_supervised"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--steps-per-epoch", type=int, default=250)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args(argv)
    args.runs.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(arm, seed) for seed in args.seeds for arm in ARMS]
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        results = list(pool.map(
            lambda job: run_arm(job[0], job[1], args.epochs, args.steps_per_epoch, args.runs),
            jobs))
    baseline = add_scores(results, args.runs, PCK_THRESHOLDS)
    (args.out / "results.json").write_text(
        json.dumps({"mean_pose_baseline": baseline, "runs": results}, indent=1),
        encoding="utf-8")
    plot(results, args.out)
    for name, *_ in ARMS:
        values = [r["AP"] for r in results if r["arm"] == name]
        scores = [r["PCK@0.1"] for r in results if r["arm"] == name]
        print(f"{name}: AP {', '.join(f'{v:.4f}' for v in values)}; "
              f"PCK@0.1 {', '.join(f'{v:.3f}' for v in scores)}")
    print(f"mean-pose baseline: {baseline}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
