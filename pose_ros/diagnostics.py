"""Counters and latency statistics of the pose node, reported as diagnostic_msgs.

`NodeStatistics` is thread-safe (the subscription callback and the worker both write to it) and
pure apart from building the `DiagnosticStatus` message. Times are seconds internally and
milliseconds in the report.

Reported keys (values are strings, as DiagnosticStatus requires):
- `input_rate_hz`, `processed_rate_hz`: over the period since the previous report;
- `frames_received`, `frames_processed`, `frames_dropped` (replaced by a newer frame before the
  worker took them), `frames_rejected` (malformed), `processing_errors`, totals since start;
- `last_reject_reason` and `rejected[<reason>]` for the most frequent reasons;
- `latency_ms.<stage>.p50|p90|p99|max` over the last `window` processed frames, for `total`
  (image header stamp -> people published), `convert`, `preprocess`, `network`, `grouping`,
  `publish`, `depth` (the 3D stage with `depth: true`: pairing, including its wait for late
  depth, and people_3d) and `age_at_start` (the frame's age when the worker took it);
- `people_last`, plus whatever `static` info the node adds (device, backend, model, ...);
- `input_stalls`: times the input stopped after frames had come (a report period without
  frames while active; counted once per stop), `seconds_since_input` ("never" before the first).

Level: ERROR when processing raised in the period, WARN when frames were rejected in the
period or no frame arrived, OK otherwise.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

__all__ = ["NodeStatistics", "LATENCY_STAGES", "percentiles_ms", "status_values"]

LATENCY_STAGES = ("total", "convert", "preprocess", "network", "grouping", "publish", "depth",
                  "age_at_start")
_PERCENTILES = (50, 90, 99)


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / max of samples given in seconds, in milliseconds (empty dict if none)."""
    if not samples_s:
        return {}
    values = np.asarray(samples_s, dtype=np.float64) * 1e3
    result = {f"p{q}": float(np.percentile(values, q)) for q in _PERCENTILES}
    result["max"] = float(values.max())
    return result


class NodeStatistics:
    """Thread-safe counters and latency windows of one node.

    Args:
        window: number of processed frames kept for the latency percentiles.
        clock: monotonic time source (injectable for tests).
    """

    def __init__(self, window: int = 300, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._monotonic = clock
        self._latency: dict[str, deque[float]] = {
            stage: deque(maxlen=window) for stage in LATENCY_STAGES
        }
        self._rejects: Counter[str] = Counter()
        self.last_reject_reason = ""
        self.last_error = ""
        self.received = 0
        self.processed = 0
        self.rejected = 0
        self.errors = 0
        self.people_last = 0
        self.input_stalls = 0  # times the input stopped (a report period without frames)
        self._stalled = False
        self._last_received_at: float | None = None
        self._period_start = self._monotonic()
        self._period_received = 0
        self._period_processed = 0
        self._period_rejected = 0
        self._period_errors = 0

    def record_received(self) -> None:
        """One input message arrived (valid or not)."""
        with self._lock:
            self.received += 1
            self._period_received += 1
            self._last_received_at = self._monotonic()

    def record_rejected(self, reason: str) -> None:
        """One input message was malformed; `reason` is a short stable string."""
        with self._lock:
            self.rejected += 1
            self._period_rejected += 1
            self._rejects[reason] += 1
            self.last_reject_reason = reason

    def record_error(self, message: str) -> None:
        """Processing a valid frame raised."""
        with self._lock:
            self.errors += 1
            self._period_errors += 1
            self.last_error = message

    def record_processed(self, stage_seconds: Mapping[str, float], num_people: int) -> None:
        """One frame went all the way to a published PersonArray.

        Args:
            stage_seconds: durations per stage (keys of `LATENCY_STAGES`; others are ignored).
            num_people: people in the published message.
        """
        with self._lock:
            self.processed += 1
            self._period_processed += 1
            self.people_last = int(num_people)
            for stage, seconds in stage_seconds.items():
                if stage in self._latency:
                    self._latency[stage].append(float(seconds))

    def samples_ms(self, stage: str = "total") -> list[float]:
        """The window's samples of one stage, in milliseconds (oldest first)."""
        with self._lock:
            return [1e3 * s for s in self._latency[stage]]

    def clear_latency(self) -> None:
        """Forget the latency samples (benchmarks: start a measurement after a warm-up)."""
        with self._lock:
            for samples in self._latency.values():
                samples.clear()

    def latency_ms(self, stage: str = "total") -> dict[str, float]:
        """Percentiles of one stage over the window, in milliseconds."""
        with self._lock:
            samples = list(self._latency[stage])
        return percentiles_ms(samples)

    def reject_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._rejects)

    def report(
        self,
        name: str,
        hardware_id: str,
        static: Mapping[str, str] | None = None,
        dropped: int = 0,
        active: bool = True,
    ) -> DiagnosticStatus:
        """Build the status for the period since the previous report, and start a new period.

        Args:
            name: status name (conventionally "<node name>: <what>").
            hardware_id: e.g. the compute device.
            static: extra key/values (device, backend, model...).
            dropped: frames dropped by the newest-frame rule (total, from the buffer).
            active: whether the node is receiving (no-input warning only when active).
        """
        with self._lock:
            now = self._monotonic()
            period = max(now - self._period_start, 1e-6)
            period_received, period_processed = self._period_received, self._period_processed
            period_rejected, period_errors = self._period_rejected, self._period_errors
            self._period_start = now
            self._period_received = self._period_processed = 0
            self._period_rejected = self._period_errors = 0
            if active and period_received == 0 and self.received > 0 and not self._stalled:
                self.input_stalls += 1  # frames came before and have stopped
            self._stalled = active and period_received == 0
            silent = (now - self._last_received_at if self._last_received_at is not None
                      else None)
            latencies = {stage: list(samples) for stage, samples in self._latency.items()}
            rejects = self._rejects.most_common(8)
            values: dict[str, str] = {
                "input_rate_hz": f"{period_received / period:.2f}",
                "processed_rate_hz": f"{period_processed / period:.2f}",
                "frames_received": str(self.received),
                "frames_processed": str(self.processed),
                "frames_dropped": str(int(dropped)),
                "frames_rejected": str(self.rejected),
                "processing_errors": str(self.errors),
                "last_reject_reason": self.last_reject_reason,
                "last_error": self.last_error,
                "people_last": str(self.people_last),
                "input_stalls": str(self.input_stalls),
                "seconds_since_input": "never" if silent is None else f"{silent:.1f}",
            }
        for reason, count in rejects:
            values[f"rejected[{reason}]"] = str(count)
        for stage, samples in latencies.items():
            for key, value in percentiles_ms(samples).items():
                values[f"latency_ms.{stage}.{key}"] = f"{value:.2f}"
        values.update(static or {})

        if period_errors:
            level, message = DiagnosticStatus.ERROR, f"{period_errors} processing errors"
        elif period_rejected:
            level, message = DiagnosticStatus.WARN, f"{period_rejected} frames rejected"
        elif active and period_received == 0:
            level, message = DiagnosticStatus.WARN, "no input frames"
        elif not active:
            level, message = DiagnosticStatus.OK, "inactive"
        else:
            level = DiagnosticStatus.OK
            message = f"{period_processed / period:.1f} Hz, {self.people_last} people"
        status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id)
        status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
        return status


def status_values(array: DiagnosticArray, name_contains: str = "") -> dict[str, str]:
    """Key/values of the first status whose name contains `name_contains` (for consumers)."""
    for status in array.status:
        if name_contains in status.name:
            return {kv.key: kv.value for kv in status.values}
    return {}
