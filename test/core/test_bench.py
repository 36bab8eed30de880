"""pose-bench: statistics, interleaved side-by-side cases, reports (JSON, markdown, plot)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pose_core.bench.cli import main as bench_main
from pose_core.bench.report import speedups
from pose_core.bench.stats import latency_stats


def test_latency_stats() -> None:
    seconds = [0.001 * v for v in range(1, 101)]
    stats = latency_stats(seconds, items_per_call=2)
    assert stats.median_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(np.percentile(np.arange(1, 101), 90))
    assert stats.p99_ms == pytest.approx(np.percentile(np.arange(1, 101), 99))
    assert stats.throughput == pytest.approx(2 / 0.0505)
    with pytest.raises(ValueError):
        latency_stats([])


def test_bench_cli_runs_both_backends_side_by_side(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POSE_ROS_CACHE_DIR", str(tmp_path / "cache"))
    code = bench_main(["--backends", "torch", "onnxruntime", "--sizes", "128", "--modes",
                       "model", "e2e", "--batches", "2", "--rounds", "2", "--repeats", "1",
                       "--warmup", "0", "--frame-size", "160x120", "--out-dir", str(tmp_path),
                       "--stem", "t"])
    assert code == 0
    report = json.loads((tmp_path / "t.json").read_text())
    assert report["machine"]["logical_cpus"] >= 1
    labels = [r["label"] for r in report["results"]]
    assert labels == ["model torch fp32 128x128 b2", "model onnxruntime fp32 128x128 b2",
                      "e2e torch fp32 128x128 b2", "e2e onnxruntime fp32 128x128 b2"]
    for result in report["results"]:
        assert len(result["round_medians_ms"]) == 2 and result["stats"]["count"] == 2
    e2e = report["results"][2]
    assert set(e2e["stage_shares"]) == {"preprocess", "network", "grouping"}
    assert sum(e2e["stage_shares"].values()) == pytest.approx(1.0)
    assert [row["case"] for row in report["speedups"]] == [labels[1], labels[3]]
    markdown = (tmp_path / "t.md").read_text()
    assert "Machine: cpu" in markdown and "speed-up" in markdown
    assert (tmp_path / "t.png").stat().st_size > 1000


def test_speedups_pair_cases_by_configuration() -> None:
    from pose_core.bench.runner import BenchCase, BenchResult

    torch_case = BenchResult(BenchCase("model", "torch", "fp32", (512, 512), 1),
                             round_medians_ms=[300.0, 330.0, 310.0])
    onnx_case = BenchResult(BenchCase("model", "onnxruntime", "fp32", (512, 512), 1),
                            round_medians_ms=[200.0, 200.0, 220.0])
    other_size = BenchResult(BenchCase("model", "onnxruntime", "fp32", (256, 256), 1),
                             round_medians_ms=[50.0])
    rows = speedups([torch_case, onnx_case, other_size])
    assert len(rows) == 1
    assert rows[0]["speedup_per_round"] == pytest.approx([1.5, 1.65, 310 / 220])
    assert rows[0]["speedup_median"] == pytest.approx(1.5)
