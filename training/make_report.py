"""Report of the synthetic-world CPU experiment, and the shipped default checkpoint.

    ./env.sh python training/make_report.py [--run-dir runs/synthetic_lite] [--no-copy]

Reads the run's `train_log.csv` / `val_log.csv` / `config.yaml`, evaluates the best checkpoint
on the whole held-out set (official test path: `PoseEstimator` with flip test,
`group_bottom_up`, `KeypointEvaluator` / pycocotools), draws the plots
(`docs/training_loss.png`, `docs/training_ap.png`, `docs/training_examples.png`), writes
`docs/training_synthetic.md`, and copies the best model state_dict (fp32) to
`pose_core/weights/<model>.pt` (the package data `PoseEstimator(DEFAULT_MODEL)` loads).
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import re
import sys
import time
from typing import Any, Sequence

import cv2
import numpy as np
import torch

from pose_core.engine.checkpointing import load_training_checkpoint
from pose_core.engine.config import TrainConfig, load_config
from pose_core.engine.tasks import build_validation_estimator, evaluate_coco_keypoints
from pose_core.structures import Poses

REPO = pathlib.Path(__file__).resolve().parents[1]
MAX_WEIGHTS_BYTES = 20 * 1024 * 1024


def read_csv(path: pathlib.Path) -> list[dict[str, float]]:
    """Rows of a numeric CSV log (missing file -> no rows)."""
    if not path.is_file():
        return []
    with path.open(newline="") as stream:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(stream)]


def plot_losses(rows: Sequence[dict[str, float]], out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("loss", "heatmaps_0", "heatmaps_1"):
        axes[0].plot(steps, [r[key] for r in rows], label=key)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("iteration (batch 8)")
    axes[0].set_title("heatmap losses (mean over 10 iterations)")
    axes[0].legend()
    for key in ("push", "pull"):
        axes[1].plot(steps, [r[key] for r in rows], label=key)
    axes[1].set_xlabel("iteration (batch 8)")
    axes[1].set_title("associative-embedding losses (factors applied)")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def plot_ap(rows: Sequence[dict[str, float]], out: pathlib.Path, final: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["elapsed_s"] / 60.0 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("AP", "AP50", "AP75", "AR"):
        ax.plot(minutes, [r[key] for r in rows], marker="o", label=key)
    if final:
        ax.axhline(final["AP"], color="k", linestyle=":", label="final AP (all val images)")
    ax.axhline(0.5, color="r", linestyle="--", linewidth=0.8, label="target AP 0.5")
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("COCO keypoint metric")
    ax.set_ylim(0, 1)
    ax.set_title("validation on held-out synthetic images")
    ax.legend(loc="lower right")
    for r, m in zip(rows, minutes, strict=True):
        ax.annotate(f"ep {int(r['epoch'])}", (m, r["AP"]), fontsize=6, xytext=(2, -9),
                    textcoords="offset points")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def draw_examples(
    images: Sequence[np.ndarray], poses: Sequence[Poses], spec: Any, out: pathlib.Path
) -> None:
    from pose_core.visualization import draw_poses

    # every person found, low scores included (what a training run's maps produce; the
    # committed example figures were drawn so)
    tiles = [draw_poses(image, found, spec, min_score=0.1, min_person_score=0.0)
             for image, found in zip(images, poses, strict=True)]
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)]
    cv2.imwrite(str(out), np.vstack(rows))


def evaluate_full(
    config: TrainConfig, state_dict: dict[str, torch.Tensor], flip_test: bool,
    max_images: int = 0, val_dir: pathlib.Path | None = None,
) -> tuple[dict[str, float], list[np.ndarray], list[Poses], float]:
    """AP of a state dict on every held-out image (the config's set, or `val_dir` holding
    `annotations.json` + `images/`); also returns a few examples and seconds per image."""
    import dataclasses

    from pose_core.data.coco import load_coco_keypoints
    from pose_core.models import build_model, model_info

    info = model_info(config.model.name)
    model = build_model(config.model.name)
    model.load_state_dict(state_dict, strict=True)
    options = dataclasses.replace(config.validation, flip_test=flip_test)
    estimator = build_validation_estimator(model, config.model.name, options,
                                           torch.device("cpu"))
    annotations = config.data.val_annotations if val_dir is None else str(
        val_dir / "annotations.json")
    images_dir = config.data.val_images if val_dir is None else str(val_dir / "images")
    records = load_coco_keypoints(annotations, info.keypoints, image_dir=images_dir)
    if max_images > 0:
        records = records[:max_images]
    ids, found, examples, example_poses = [], [], [], []
    start = time.perf_counter()
    for index, record in enumerate(records):
        image = cv2.imread(str(record.path))
        poses = estimator(image)
        ids.append(int(record.image_id))
        found.append(poses)
        if index < 8:
            examples.append(image)
            example_poses.append(poses)
    seconds = (time.perf_counter() - start) / max(1, len(records))
    metrics = evaluate_coco_keypoints(annotations, ids, found, info.keypoints)
    return metrics, examples, example_poses, seconds


class _FixedOutputs:
    """A `PoseEstimator` backend returning preset maps (for the target-oracle check)."""

    device = torch.device("cpu")

    def __init__(self) -> None:
        self.outputs: tuple[torch.Tensor, ...] = ()

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.outputs


def target_oracle_ap(config: TrainConfig, max_images: int = 100) -> dict[str, float]:
    """AP of the training targets themselves through the inference + evaluation path.

    The held-out images' ground truth is rendered as the training dataset renders targets
    (heatmaps at both resolutions, no augmentation) with ideal tags (person index painted
    around each joint), then decoded by `PoseEstimator` (no flip) and scored: the ceiling that
    the target grids and the decoding allow, and a check that targets, decoding and evaluation
    agree on coordinates.
    """
    from pose_core.data.bottom_up_dataset import BottomUpDataset
    from pose_core.data.coco import load_coco_keypoints
    from pose_core.evaluation.coco_evaluator import KeypointEvaluator
    from pose_core.inference import PoseEstimator
    from pose_core.models import model_info

    info = model_info(config.model.name)
    spec = info.keypoints
    size = int(config.data.input_size[0])
    sizes = (size // 4, size // 2)
    records = load_coco_keypoints(config.data.val_annotations, spec,
                                  image_dir=config.data.val_images)[:max_images]
    dataset = BottomUpDataset(records, spec, input_size=size, output_sizes=sizes,
                              sigma=config.codec.sigma, augment=False,
                              drop_images_without_people=False, mean=info.mean, std=info.std)
    backend = _FixedOutputs()
    estimator = PoseEstimator(config.model.name, backend=backend, flip_test=False)  # type: ignore[arg-type]
    evaluator = KeypointEvaluator(config.data.val_annotations)
    evaluator.reset()
    joints_count, r0 = spec.num_keypoints, sizes[0]
    for index, record in enumerate(records):
        sample = dataset[index]
        tags = torch.zeros(joints_count, r0, r0)
        for person, slots in enumerate(sample["joints"]):
            for joint in range(joints_count):
                if slots[joint, 1] > 0:
                    y, x = divmod(int(slots[joint, 0]) - joint * r0 * r0, r0)
                    tags[joint, max(0, y - 2) : y + 3, max(0, x - 2) : x + 3] = 3.0 * (person + 1)
        heatmaps = sample["heatmaps"]
        backend.outputs = (torch.cat([heatmaps[0], tags])[None], heatmaps[1][None])
        evaluator.process([record.image_id], [estimator(cv2.imread(str(record.path)))])
    return {k: float(v) for k, v in evaluator.evaluate().items()}


def write_markdown(
    out: pathlib.Path, config: TrainConfig, train_rows: Sequence[dict[str, float]],
    val_rows: Sequence[dict[str, float]], final: dict[str, float], final_noflip: dict[str, float],
    checkpoint: dict[str, Any], checkpoint_name: str, seconds_per_image: float,
    weights_path: pathlib.Path | None, num_val: int, data_commands: Sequence[str],
    other_runs: str, extra_sets: dict[str, dict[str, float]], oracle: dict[str, float],
    rationale: str = "", history: str = "", machine: str = "", report_args: str = "",
) -> None:
    last = train_rows[-1] if train_rows else {}
    minutes = last.get("elapsed_s", 0.0) / 60.0
    speed = np.mean([r["images_per_s"] for r in train_rows]) if train_rows else 0.0
    table = "\n".join(
        f"| {int(r['epoch'])} | {int(r['step'])} | {r['elapsed_s'] / 60:.1f} | {r['AP']:.3f} | "
        f"{r['AP50']:.3f} | {r['AP75']:.3f} | {r['AR']:.3f} |" for r in val_rows
    )
    metric_names = ("AP", "AP50", "AP75", "APm", "APl", "AR")
    final_line = " | ".join(f"{final.get(k, float('nan')):.3f}" for k in metric_names)
    noflip_line = " | ".join(f"{final_noflip.get(k, float('nan')):.3f}" for k in metric_names)
    verdict = "reached" if final.get("AP", 0.0) >= 0.5 else "NOT reached"
    weights_text = (
        f"`{weights_path.relative_to(REPO)}` ({weights_path.stat().st_size / 1e6:.1f} MB, fp32 "
        f"state_dict with official key names) = `{checkpoint_name}` of the run"
        if weights_path is not None and weights_path.is_file() else "(not copied)"
    )
    data, optim, loss = config.data, config.optim, config.loss
    report_writes = "this page + weights" if weights_path is not None else "this page"
    data_commands = "\n".join(f"./env.sh {c}" for c in data_commands)
    extra_lines = "\n".join(
        f"| flip test, other held-out set `{name}` | "
        + " | ".join(f"{m.get(k, float('nan')):.3f}" for k in metric_names) + " |"
        for name, m in extra_sets.items()
    )
    text = f"""# CPU experiment: a small HigherHRNet trained from scratch on the synthetic world

Goal (issue 6): a small HigherHRNet trained from scratch on synthetic images for at most
60 minutes on this 2-core machine reaches COCO-style AP >= 0.5 on a held-out synthetic set,
evaluated with pycocotools through the same grouping and evaluation code as real models.
**Result: AP {final.get('AP', float('nan')):.3f} on all {num_val} held-out images (target
{verdict}).** The checkpoint ships as the default model: {weights_text}.

## Reproduce

```
{data_commands}
./env.sh pose-train --config config/train/{config.name}.yaml   # writes runs/{config.name}/
./env.sh python training/make_report.py {report_args}  # {report_writes}
```

The run stops itself after `max_minutes: {config.max_minutes:g}` of wall time with a
final validation and checkpoint; a killed run continues with the same command (it resumes
from `runs/{config.name}/last.pt`).

## Set-up

| item | value |
|---|---|
| model | `{config.model.name}` (HigherHRNet, width 16, reduced stages, 1.23 M parameters), random init |
| input / outputs | {data.input_size[0]}x{data.input_size[0]} / heatmaps at 64 and 128, AE tags at 64 |
| data | `{data.train_annotations}` (training), `{data.val_annotations}` ({num_val} held-out images), 256x256, made by the `pose-synth` commands above |
| batch, optimiser | {config.batch_size}, {optim.optimizer} lr {optim.lr:g}, warm-up {optim.warmup_iters} it, x{optim.lr_gamma:g} at epoch {list(optim.lr_milestones)}, no weight decay |
| epoch | {config.max_steps_per_epoch} iterations ({config.max_steps_per_epoch * config.batch_size} images) |
| augmentation | rotation +-{data.max_rotation:g} deg, scale {data.min_scale:g}-{data.max_scale:g}, translation {data.max_translate:g}, flip {data.flip:g} |
| targets / loss | sigma {config.codec.sigma:g} at both resolutions; heatmap MSE x{list(loss.heatmap_factors)}, AE push/pull x{loss.push_factor:g}/{loss.pull_factor:g} ('{loss.ae_loss_type}') |
| machine | {machine}, {config.num_threads} torch thread(s) + {data.num_workers} loader worker(s), channels_last {config.channels_last}, autocast {config.amp} |
| validation | every {config.validation.every_epochs} epochs on the first {data.val_max_images or num_val} held-out images, flip test, official grouping (detection 0.1, tag 1.0, adjust, refine) |

Why these choices (the comment block of `config/train/{config.name}.yaml`):

```text
{rationale}
```

## Results

Final (checkpoint `{checkpoint_name}`: epoch {checkpoint['epoch']}, iteration
{checkpoint['step']}), all {num_val} held-out images, single scale:

| test | AP | AP50 | AP75 | APm | APl | AR |
|---|---|---|---|---|---|---|
| flip test | {final_line} |
| no flip | {noflip_line} |
{extra_lines}

Pipeline check: the ground truth of the first 100 held-out images rendered as training targets
(both heatmap resolutions, ideal tags) and decoded by the same `PoseEstimator` + grouping +
evaluator gives AP {oracle.get('AP', float('nan')):.3f} (AP75 {oracle.get('AP75', float('nan')):.3f}):
targets, decoding and evaluation agree, and this is the ceiling of the 64/128 target grids.

Training: {int(last.get('step', 0))} iterations in {minutes:.1f} minutes
({speed:.1f} images/s on average, including validation pauses not counted in images/s);
inference {seconds_per_image * 1000:.0f} ms per 256x256 image with flip test on this CPU.

AP during training (first {data.val_max_images or num_val} held-out images):

| epoch | iteration | minutes | AP | AP50 | AP75 | AR |
|---|---|---|---|---|---|---|
{table}

![losses](training_loss.png)

![AP](training_ap.png)

Predictions of this run's `{checkpoint_name}` on the first held-out images (every person found,
joints with value > 0.1):

![examples](training_examples.png)

Logs: `runs/{config.name}/train_log.csv`, `val_log.csv`, TensorBoard in `runs/{config.name}/tb`
(not committed; regenerate with the commands above).
{other_runs}{history}"""
    out.write_text(text)


def config_rationale(config_text: str) -> str:
    """The leading comment block of an experiment YAML, as markdown lines."""
    lines = []
    for line in config_text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[2:].rstrip() if line.startswith("# ") else line[1:].strip())
    return "\n".join(lines)


def machine_name() -> str:
    """CPU model and core count (from /proc/cpuinfo where there is one)."""
    import os
    import platform

    model = platform.processor() or platform.machine()
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPU cores ({model})"


def other_runs_table(run_dirs: Sequence[str]) -> str:
    """Markdown table of the validation AP of other runs (their own val_log.csv)."""
    if not run_dirs:
        return ""
    lines = ["", "## Other runs", "",
             "Validation AP as logged by each run (its own held-out set and `val_max_images`):",
             "", "| run | config | epochs | minutes | last AP | best AP |", "|---|---|---|---|---|---|"]
    for run in run_dirs:
        rows = read_csv(pathlib.Path(run) / "val_log.csv")
        if not rows:
            continue
        name = load_config(pathlib.Path(run) / "config.yaml").name
        lines.append(
            f"| `{run}` | `config/train/{name}.yaml` | {int(rows[-1]['epoch'])} | "
            f"{rows[-1]['elapsed_s'] / 60:.1f} | {rows[-1]['AP']:.3f} | "
            f"{max(r['AP'] for r in rows):.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/synthetic_lite")
    parser.add_argument("--checkpoint", default=None, help="default: best.pt, else last.pt")
    parser.add_argument("--config", default=None,
                        help="the experiment YAML (default config/train/<run name>.yaml); its "
                        "'#   pose-synth ...' comment lines are the data commands")
    parser.add_argument("--extra-val", action="append", default=[],
                        help="another held-out folder (annotations.json + images/) to evaluate "
                        "the checkpoint on, e.g. data/synthetic_lite/val (repeatable)")
    parser.add_argument("--other-run", action="append", default=[],
                        help="another run dir to list in a comparison table (repeatable)")
    parser.add_argument("--history", default=None,
                        help="a markdown file appended as the page's last section (earlier runs)")
    parser.add_argument("--docs", default=str(REPO / "docs"))
    parser.add_argument("--weights-dir", default=str(REPO / "pose_core" / "weights"))
    parser.add_argument("--no-copy", action="store_true", help="do not write the weights file")
    parser.add_argument("--max-images", type=int, default=0,
                        help="evaluate only the first N held-out images (testing; 0 = all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run_dir = pathlib.Path(args.run_dir)
    config = load_config(run_dir / "config.yaml")
    checkpoint_path = pathlib.Path(args.checkpoint) if args.checkpoint else (
        run_dir / "best.pt" if (run_dir / "best.pt").is_file() else run_dir / "last.pt"
    )
    checkpoint = load_training_checkpoint(checkpoint_path)
    docs = pathlib.Path(args.docs)
    docs.mkdir(parents=True, exist_ok=True)
    train_rows = read_csv(run_dir / "train_log.csv")
    val_rows = read_csv(run_dir / "val_log.csv")
    final, images, poses, seconds = evaluate_full(config, checkpoint["model"], True,
                                                  args.max_images)
    final_noflip, _, _, _ = evaluate_full(config, checkpoint["model"], False, args.max_images)
    print("final (flip):", json.dumps(final), "\nfinal (no flip):", json.dumps(final_noflip))
    extra_sets = {}
    for folder in args.extra_val:
        extra_sets[folder] = evaluate_full(config, checkpoint["model"], True, args.max_images,
                                           pathlib.Path(folder))[0]
        print(f"{folder} (flip):", json.dumps(extra_sets[folder]))
    plot_losses(train_rows, docs / "training_loss.png")
    plot_ap(val_rows, docs / "training_ap.png", final)
    from pose_core.models import model_info

    draw_examples(images, poses, model_info(config.model.name).keypoints,
                  docs / "training_examples.png")
    weights_path = None
    if not args.no_copy:
        weights_path = pathlib.Path(args.weights_dir) / f"{config.model.name}.pt"
        weights_path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.float().contiguous() if v.is_floating_point() else v
                 for k, v in checkpoint["model"].items()}
        torch.save(state, weights_path)
        if weights_path.stat().st_size > MAX_WEIGHTS_BYTES:
            print(f"{weights_path} is over 20 MB", file=sys.stderr)
            return 1
    from pose_core.data.coco import load_coco_keypoints

    num_val = args.max_images or len(load_coco_keypoints(
        config.data.val_annotations, model_info(config.model.name).keypoints,
        image_dir=config.data.val_images))
    source = pathlib.Path(args.config) if args.config else (
        REPO / "config" / "train" / f"{config.name}.yaml")
    data_commands = [m.group(1) for m in re.finditer(r"^#\s+(pose-synth .*)$",
                                                     source.read_text(), re.MULTILINE)]
    history = "\n" + pathlib.Path(args.history).read_text() if args.history else ""
    write_markdown(docs / "training_synthetic.md", config, train_rows, val_rows, final,
                   final_noflip, checkpoint, checkpoint_path.name, seconds, weights_path,
                   num_val, data_commands, other_runs_table(args.other_run), extra_sets,
                   target_oracle_ap(config, 100 if not args.max_images else args.max_images),
                   rationale=config_rationale(source.read_text()), history=history,
                   machine=machine_name(), report_args=" ".join(
                       ["--run-dir", str(args.run_dir)]
                       + (["--config", str(args.config)] if args.config else [])
                       + [f"--extra-val {folder}" for folder in args.extra_val]
                       + ([f"--history {args.history}"] if args.history else [])
                       + (["--no-copy"] if args.no_copy else [])
                       + ([f"--docs {args.docs}"] if args.docs != parser.get_default("docs")
                          else [])))
    (run_dir / "final_metrics.json").write_text(json.dumps(
        {"checkpoint": str(checkpoint_path), "flip": final, "no_flip": final_noflip,
         "extra": extra_sets}, indent=1))
    print(f"wrote {docs / 'training_synthetic.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
