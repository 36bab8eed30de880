"""Latency statistics and process memory for `pose-bench`.

Times are seconds in, milliseconds out (`LatencyStats`). Percentiles: linear interpolation
between order statistics (numpy's default).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["LatencyStats", "latency_stats", "peak_rss_mib", "time_calls"]


@dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated timings (milliseconds; throughput in items per second)."""

    count: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    throughput: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def latency_stats(seconds: Sequence[float], items_per_call: int = 1) -> LatencyStats:
    """Median / p90 / p99 / mean / min of call times; throughput = items / median time."""
    values = np.asarray(seconds, dtype=np.float64) * 1e3
    if values.size == 0:
        raise ValueError("no timings")
    median = float(np.median(values))
    return LatencyStats(
        count=int(values.size),
        median_ms=median,
        p90_ms=float(np.percentile(values, 90)),
        p99_ms=float(np.percentile(values, 99)),
        mean_ms=float(values.mean()),
        min_ms=float(values.min()),
        throughput=items_per_call * 1e3 / median if median > 0 else float("inf"),
    )


def time_calls(call: Callable[[], object], repeats: int, warmup: int,
               sync: Callable[[], None] = lambda: None,
               cpu_seconds: list[float] | None = None) -> list[float]:
    """`warmup` untimed calls, then the wall time of each of `repeats` calls (synced); the
    process CPU time of each (all threads) is appended to `cpu_seconds` when given."""
    for _ in range(warmup):
        call()
    sync()
    times = []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        sync()
        times.append(time.perf_counter() - start)
        if cpu_seconds is not None:
            cpu_seconds.append(time.process_time() - start_cpu)
    return times


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
