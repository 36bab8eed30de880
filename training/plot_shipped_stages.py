"""Validation AP and training loss of the shipped model's consecutive runs on one step axis.

    ./env.sh python training/plot_shipped_stages.py --out docs/shipped_model_stages.png \
        --stage "version 2" docs/training_logs/shipped_model_v2 \
        --stage "v3a lr 5e-4" docs/training_logs/shipped_model_v3 \
        --stage "v3b lr 5e-5" docs/training_logs/shipped_model_v3_decay \
        --stage "v4 walkers 1e-4/1e-5" docs/training_logs/shipped_model_v4

Each stage is a prefix whose `<prefix>_train_log.csv` / `<prefix>_val_log.csv` are the run's
logs (`pose-train` writes `train_log.csv` / `val_log.csv`); a stage's steps continue where the
previous stage's last logged step ended (every stage starts from the previous one's weights).
"""

from __future__ import annotations

import argparse
import csv
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(path: pathlib.Path) -> list[dict[str, float]]:
    with path.open() as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)]


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing mean over `window` points (the loss log is noisy per 10 steps)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", nargs=2, action="append", metavar=("LABEL", "PREFIX"),
                        required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--smooth", type=int, default=20, help="loss points averaged")
    args = parser.parse_args(argv)
    fig, (ax_ap, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    offset = 0.0
    for label, prefix in args.stage:
        train = read_rows(pathlib.Path(prefix + "_train_log.csv"))
        val = read_rows(pathlib.Path(prefix + "_val_log.csv"))
        if not train:
            print(f"{prefix}_train_log.csv has no rows", file=sys.stderr)
            return 1
        steps = [offset + r["step"] for r in train]
        ax_loss.plot(steps, smooth([r["loss"] for r in train], args.smooth), label=label)
        ax_ap.plot([offset + r["step"] for r in val], [r["AP"] for r in val], "o-", label=label)
        ax_ap.axvline(offset, color="0.8", lw=0.8)
        offset = steps[-1]
    ax_ap.set(xlabel="step (8 images each)", ylabel="validation AP (100 images, flip, 1 scale)",
              title="validation AP")
    ax_loss.set(xlabel="step (8 images each)",
                ylabel=f"training loss (mean of {args.smooth} logs)",
                title="training loss", yscale="log")
    for ax in (ax_ap, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
