"""The synthetic-crops experiment of docs/semi_supervised.md: 5 arms x seeds through pose-train.

Arms: supervised-only, naive consistency, PoseCons, PoseDual, PoseDual + Joint Cutout (the
`config/train/*_synthetic*.yaml` files, same budget). Each run is `pose-train --config ...`
in its own process; AP comes from the run's validation (pycocotools, ground-truth boxes, the
held-out synthetic set) and the collapse indicator from its `train_log.csv`. Writes
`results.json` and the plots into `--out`.

Usage (data first, see the docs):
    python training/semi_supervised_experiment.py --runs runs/semi_exp --out docs/semi_supervised \
        --seeds 0 1 2 --steps 80 --parallel 2
"""

from __future__ import annotations

import argparse
import csv
import json
import pathlib
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ARMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("supervised", "config/train/supervised_synthetic_crops.yaml", ()),
    ("naive consistency", "config/train/consistency_naive_synthetic.yaml", ()),
    ("PoseCons", "config/train/posecons_synthetic.yaml", ()),
    ("PoseDual", "config/train/posedual_synthetic.yaml", ()),
    ("PoseDual + Joint Cutout", "config/train/posedual_synthetic.yaml",
     ("semi_supervised.joint_cutout=5",)),
)


def run_arm(arm: tuple[str, str, tuple[str, ...]], seed: int, steps: int,
            runs: pathlib.Path) -> dict:
    name, config, overrides = arm
    run_dir = runs / f"{name.replace(' ', '_').replace('+', 'plus')}_seed{seed}"
    command = [sys.executable, "-m", "pose_core.engine.cli", "--config", config,
               "--output-dir", str(run_dir), "--no-resume", f"seed={seed}",
               f"max_steps_per_epoch={steps}", *overrides]
    if not (run_dir / "val_log.csv").is_file():  # a finished run is read, not rerun
        with open(run_dir.with_suffix(".log"), "w", encoding="utf-8") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    with open(run_dir / "val_log.csv", encoding="utf-8") as handle:
        final = list(csv.DictReader(handle))[-1]
    curve = []
    with open(run_dir / "train_log.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            curve.append((int(row["step"]), float(row["monitor/collapse_net1"])))
    return {"arm": name, "seed": seed, "AP": float(final["AP"]), "AP50": float(final["AP50"]),
            "AR": float(final["AR"]), "collapse_curve": curve}


def plot(results: list[dict], out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [arm[0] for arm in ARMS]
    fig, ax = plt.subplots(figsize=(7, 4))
    for index, name in enumerate(names):
        values = [r["AP"] for r in results if r["arm"] == name]
        ax.scatter([index] * len(values), values, color="C0")
        if values:
            ax.hlines(sum(values) / len(values), index - 0.3, index + 0.3, color="C3")
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_ylabel("AP (held-out synthetic crops, GT boxes)")
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
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--parallel", type=int, default=1)
    args = parser.parse_args(argv)
    args.runs.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(arm, seed) for seed in args.seeds for arm in ARMS]
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        results = list(pool.map(lambda job: run_arm(job[0], job[1], args.steps, args.runs),
                                jobs))
    (args.out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    plot(results, args.out)
    for name, *_ in ARMS:
        values = [r["AP"] for r in results if r["arm"] == name]
        print(f"{name}: AP {', '.join(f'{v:.4f}' for v in values)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
