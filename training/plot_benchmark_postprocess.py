"""Figure for docs/benchmark_postprocess.md from the JSON files of the two benchmark scripts.

Left: the 10-person speed-up of every `benchmark_postprocess.py` run given (one dot per run,
by threads and schedule; the issue's 50x goal as a line). Right: stacked median stage times
from `postprocess_stages.py` runs (one bar per file).

Usage:
    ./env.sh python training/plot_benchmark_postprocess.py --runs a.json b.json ... \
        --stages s1.json s2.json [--commits OLDEST ... NEWEST] --out docs/benchmark_postprocess.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)

GOAL = 50.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, help="benchmark_postprocess JSONs")
    parser.add_argument("--stages", nargs="+", required=True, help="postprocess_stages JSONs")
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--commits", nargs="*", default=[],
                        help="column order of the file-name commit prefixes (oldest first)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.6, 1]}
    )
    groups: dict[str, list[float]] = {}
    for path in args.runs:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
        label = f"{info['torch_threads']} thread{'s' if info['torch_threads'] > 1 else ''}\n"
        label += info.get("schedule", "interleaved")
        # files named <commit>_...: one column per commit
        prefix = Path(path).name.split("_")[0]
        if len(prefix) == 7 and all(c in "0123456789abcdef" for c in prefix):
            label += f"\n{prefix}"
        if not info.get("buffer_pool", True):
            label += "\nno pool"
        for row in info["rows"]:
            if row["people"] == args.people and "speedup" in row:
                groups.setdefault(label, []).append(row["speedup"])
    def column(label: str) -> tuple:
        commit = label.split("\n")[-1]
        rank = args.commits.index(commit) if commit in args.commits else len(args.commits)
        return label.split("\n")[0], rank, label

    labels = sorted(groups, key=column)
    for x, label in enumerate(labels):
        values = groups[label]
        left.scatter([x] * len(values), values, color="tab:blue", zorder=3)
    left.axhline(GOAL, color="tab:red", linestyle="--", label=f"goal {GOAL:.0f}x")
    left.set_xticks(range(len(labels)), labels, fontsize=8)
    left.set_xlim(-0.5, len(labels) - 0.5)
    left.set_ylabel(f"speed-up vs loop reference ({args.people} people)")
    left.set_ylim(bottom=0)
    left.set_title("one dot per benchmark run")
    left.legend(loc="lower right", fontsize=8)
    left.grid(axis="y", alpha=0.3)

    stage_runs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in args.stages]
    names = list(stage_runs[0]["stage_median_ms"])
    bottoms = [0.0] * len(stage_runs)
    colors = plt.get_cmap("tab10").colors
    for i, name in enumerate(names):
        heights = [run["stage_median_ms"][name] for run in stage_runs]
        right.bar(range(len(stage_runs)), heights, bottom=bottoms, label=name,
                  color=colors[i % len(colors)])
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ticks = [f"{r['torch_threads']} thread" + ("s" if r["torch_threads"] > 1 else "")
             for r in stage_runs]
    right.set_xticks(range(len(stage_runs)), ticks)
    right.set_ylabel("median ms per stage (stacked)")
    right.set_title(f"batched path, {stage_runs[0]['people']} people, 512 x 768")
    right.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
