"""`pose-bench` reports: JSON (every number), a markdown table and a plot (PNG).

`30-fps cameras`: end-to-end frames per second / 30, rounded down (B frames of B cameras per
forward: how many 30-frames/s cameras this configuration keeps up with).
Ratios are per round (the cases of one round ran back to back) and summarised by their median:
`speedup = median over rounds of (reference round median / case round median)`, the reference
being the same mode, precision, size, batch and flip setting on the `torch` backend.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pose_core.bench.runner import BenchResult

__all__ = ["machine_description", "speedups", "write_reports"]


def machine_description() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            names = [line.split(":", 1)[1].strip() for line in handle
                     if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu, "logical_cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0],
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def speedups(results: Sequence[BenchResult], reference: str = "torch") -> list[dict[str, Any]]:
    """Per-round speed ratios of every non-reference case against its reference case."""
    def key(result: BenchResult) -> tuple:
        c = result.case
        return (c.mode, c.precision, c.size_wh, c.batch, c.flip_test)

    refs = {key(r): r for r in results if r.case.backend == reference and r.round_medians_ms}
    rows = []
    for result in results:
        ref = refs.get(key(result))
        if result.case.backend == reference or ref is None or not result.round_medians_ms:
            continue
        per_round = [a / b for a, b in zip(ref.round_medians_ms, result.round_medians_ms)]
        rows.append({"case": result.case.label, "reference": ref.case.label,
                     "speedup_per_round": per_round,
                     "speedup_median": statistics.median(per_round),
                     "cpu_time_ratio": ref.cpu_median_ms / result.cpu_median_ms
                     if result.cpu_median_ms else float("nan")})
    return rows


def _markdown(results: Sequence[BenchResult], ratios: list[dict[str, Any]],
              machine: dict[str, Any]) -> str:
    lines = [
        "| case | median ms | p90 ms | p99 ms | CPU ms | items/s | 30-fps cameras | "
        "round medians ms | pre / net / group | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.stats is None:
            lines.append(f"| {r.case.label} | failed: {r.error} | | | | | | | | |")
            continue
        s = r.stats
        shares = " / ".join(f"{100 * r.stage_shares.get(k, 0):.0f}%"
                            for k in ("preprocess", "network", "grouping")) if r.stage_shares \
            else "-"
        rounds = ", ".join(f"{m:.1f}" for m in r.round_medians_ms)
        cameras = str(int(s.throughput // 30)) if r.case.mode == "e2e" else "-"
        lines.append(f"| {r.case.label} | {s.median_ms:.1f} | {s.p90_ms:.1f} | {s.p99_ms:.1f} | "
                     f"{r.cpu_median_ms:.0f} | {s.throughput:.2f} | {cameras} | {rounds} | "
                     f"{shares} | "
                     f"{r.peak_rss_mib:.0f} |")
    if ratios:
        lines += ["", "| case | vs | speed-up (median of rounds) | per round | CPU-time ratio |",
                  "|---|---|---|---|---|"]
        for row in ratios:
            per = ", ".join(f"{v:.2f}" for v in row["speedup_per_round"])
            lines.append(f"| {row['case']} | {row['reference']} | "
                         f"{row['speedup_median']:.2f}x | {per} | "
                         f"{row['cpu_time_ratio']:.2f}x |")
    described = ", ".join(f"{k} {v}" for k, v in machine.items())
    return "\n".join([f"Machine: {described}", "", *lines, ""])


def write_reports(results: Sequence[BenchResult], out_dir: str | os.PathLike[str],
                  settings: dict[str, Any], stem: str = "bench") -> dict[str, Path]:
    """`<stem>.json`, `<stem>.md` and `<stem>.png` in `out_dir`; returns their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    machine = machine_description()
    ratios = speedups(results)
    paths = {"json": folder / f"{stem}.json", "markdown": folder / f"{stem}.md",
             "plot": folder / f"{stem}.png"}
    paths["json"].write_text(json.dumps({
        "machine": machine, "settings": settings, "results": [r.as_dict() for r in results],
        "speedups": ratios,
    }, indent=2, default=str) + "\n")
    paths["markdown"].write_text(_markdown(results, ratios, machine))
    _plot(results, paths["plot"])
    return paths


def _plot(results: Sequence[BenchResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    measured = [r for r in results if r.stats is not None]
    figure, axes = pyplot.subplots(figsize=(8, 0.5 * len(measured) + 1.5))
    labels = [r.case.label for r in measured]
    medians = [r.stats.median_ms for r in measured]  # type: ignore[union-attr]
    p90 = [r.stats.p90_ms - r.stats.median_ms for r in measured]  # type: ignore[union-attr]
    axes.barh(labels, medians, xerr=[[0] * len(p90), p90], color="tab:blue")
    axes.set_xlabel("latency (ms): median, whisker to p90")
    axes.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
