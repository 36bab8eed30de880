"""Bar chart of experiment 3 of docs/double_embedding.md (written by training/dem_vs_ae_experiment.sh).

    ./env.sh python training/plot_dem_vs_ae.py --runs docs/double_embedding_runs
"""

from __future__ import annotations

import argparse
import json
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ARMS = (("trained_ae", "AE (HigherHRNet)"), ("trained_dem_paper", "DEM, paper mode"),
        ("trained_dem_release", "DEM, release mode"))
SETS = (("dem_crowd_test", "crowd level (seed 313, 300 images)"),
        ("heldout_default_777", "default level (seed 777, 500 images)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=pathlib.Path, default=pathlib.Path("docs/double_embedding_runs"))
    args = parser.parse_args()
    fig, axes = plt.subplots(1, len(SETS), figsize=(9, 3.4), sharey=True)
    for axis, (set_key, set_title) in zip(axes, SETS):
        for offset, metric in enumerate(("AP", "AP50")):
            values = [json.loads((args.runs / f"{arm}_{set_key}.json").read_text())[metric]
                      for arm, _ in ARMS]
            bars = axis.bar([i + 0.38 * offset for i in range(len(ARMS))], values, width=0.36,
                            label=metric)
            axis.bar_label(bars, fmt="%.3f", fontsize=7)
        axis.set_xticks([i + 0.19 for i in range(len(ARMS))], [label for _, label in ARMS],
                        fontsize=7)
        axis.set_title(set_title, fontsize=9)
        axis.legend(fontsize=7)
    axes[0].set_ylabel("pycocotools")
    fig.suptitle("DEM vs AE, same backbone init, data and 1,200 steps", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.runs / "trained_ap.png", dpi=110)


if __name__ == "__main__":
    main()
