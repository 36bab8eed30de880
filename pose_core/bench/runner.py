"""`pose-bench` measurements: model-only and end-to-end (image -> people) latency per backend,
precision, input size and batch, measured side by side.

Every case is built once, warmed up, then measured in `rounds` interleaved rounds (case A,
case B, ..., A, B, ...) of `repeats` calls each, so a change in machine load hits every case
alike; each round gives one median per case and `BenchResult.round_medians_ms` keeps them.
Model-only: `backend(batch (B, 3, h, w))`. End-to-end: `PoseEstimator.predict_batch` of B frames
(several cameras batched into one forward; the flip test as configured), with the shares of
pre-processing, network and grouping from `PoseEstimator.last_timings`.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from pose_core.bench.stats import LatencyStats, latency_stats, peak_rss_mib, time_calls

__all__ = ["BenchCase", "BenchResult", "run_cases", "synthetic_frames"]


@dataclass(frozen=True)
class BenchCase:
    """One measured configuration."""

    mode: Literal["model", "e2e"]
    backend: str
    precision: str
    size_wh: tuple[int, int]
    batch: int
    flip_test: bool = False
    backend_options: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        w, h = self.size_wh
        flip = "+flip" if self.flip_test else ""
        return f"{self.mode} {self.backend} {self.precision} {w}x{h} b{self.batch}{flip}"


@dataclass
class BenchResult:
    """Timings of one case over every round."""

    case: BenchCase
    stats: LatencyStats | None = None
    round_medians_ms: list[float] = field(default_factory=list)
    cpu_median_ms: float = 0.0  # process CPU time per call, all threads (load-robust)
    stage_shares: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    cuda_peak_mib: float = 0.0
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["label"] = self.case.label
        return data


def synthetic_frames(size_wh: tuple[int, int], count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` BGR frames of the synthetic world (people at random places) of size (w, h)."""
    from pose_core.data.synthetic import difficulty_config, render_scene

    config = difficulty_config("default", size_wh[0], size_wh[1], "coco")
    return [render_scene(config, (seed, i)).image_bgr for i in range(count)]


def _build_call(case: BenchCase, model_name: str, checkpoint: str | None, device: str,
                frame_wh: tuple[int, int]) -> tuple[Callable[[], object], Any]:
    """The measured call of a case and the estimator (None in model-only mode)."""
    from pose_core.inference.backend_factory import BackendOptions, build_backend

    options = BackendOptions(precision=case.precision, **dict(case.backend_options))
    backend = build_backend(case.backend, model_name, checkpoint, device, options)
    if case.mode == "model":
        width, height = case.size_wh
        generator = torch.Generator().manual_seed(0)
        batch = torch.randn(case.batch, 3, height, width, generator=generator).to(device)
        return (lambda: backend(batch)), None
    from pose_core.inference.estimator import PoseEstimator

    estimator = PoseEstimator(model_name, backend=backend, flip_test=case.flip_test,
                              scales=(1.0,), input_size=case.size_wh[0])
    frames = synthetic_frames(frame_wh, case.batch)
    return (lambda: estimator.predict_batch(frames, batch_size=case.batch)), estimator


def run_cases(
    cases: Sequence[BenchCase],
    model_name: str,
    checkpoint: str | None,
    device: str = "cpu",
    rounds: int = 3,
    repeats: int = 5,
    warmup: int = 2,
    frame_wh: tuple[int, int] = (640, 480),
) -> list[BenchResult]:
    """Measure every case (see the module docstring); a case that fails to build or run keeps
    its error text and the others go on."""
    sync = (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)
    results = [BenchResult(case) for case in cases]
    calls: list[tuple[Callable[[], object], Any] | None] = []
    for result in results:
        try:
            call, estimator = _build_call(result.case, model_name, checkpoint, device, frame_wh)
            time_calls(call, 0, warmup, sync)
            calls.append((call, estimator))
            result.peak_rss_mib = peak_rss_mib()  # of the process, after this case's warm-up
        except Exception as error:  # noqa: BLE001 - reported in the table, others measured
            result.error = f"{type(error).__name__}: {error}"
            calls.append(None)
    samples: list[list[float]] = [[] for _ in cases]
    cpu: list[list[float]] = [[] for _ in cases]
    stages: list[dict[str, float]] = [{} for _ in cases]
    for _ in range(rounds):
        for index, entry in enumerate(calls):
            if entry is None:
                continue
            call, estimator = entry
            times = time_calls(call, repeats, 0, sync, cpu[index])
            samples[index].extend(times)
            results[index].round_medians_ms.append(1e3 * statistics.median(times))
            if estimator is not None:
                for stage, seconds in estimator.last_timings.items():
                    stages[index][stage] = stages[index].get(stage, 0.0) + seconds
    for index, result in enumerate(results):
        if samples[index]:
            result.stats = latency_stats(samples[index], result.case.batch)
            result.cpu_median_ms = 1e3 * statistics.median(cpu[index])
            total = sum(stages[index].values())
            result.stage_shares = {k: v / total for k, v in stages[index].items()} if total else {}
        if device.startswith("cuda"):
            result.cuda_peak_mib = torch.cuda.max_memory_allocated() / 2**20
    return results
