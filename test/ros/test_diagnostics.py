"""NodeStatistics: counters, per-period rates, latency percentiles, levels, reject reasons."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from pose_ros.diagnostics import NodeStatistics, percentiles_ms, status_values

pytestmark = pytest.mark.ros


class _FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_percentiles_in_milliseconds() -> None:
    result = percentiles_ms([i / 1000 for i in range(1, 101)])
    assert result["p50"] == pytest.approx(50.5) and result["max"] == pytest.approx(100.0)
    assert percentiles_ms([]) == {}


def test_report_rates_counts_latency_and_levels() -> None:
    clock = _FakeClock()
    stats = NodeStatistics(window=10, clock=clock)
    for _ in range(20):
        stats.record_received()
    for i in range(10):
        stats.record_processed({"total": 0.010 * (i + 1), "network": 0.005, "other": 1.0}, 3)
    stats.record_rejected("zero-size image")
    stats.record_rejected("zero-size image")
    stats.record_rejected("unsupported encoding 'x'")
    clock.now += 2.0
    status = stats.report("pose_node: pipeline", "cpu", {"device": "cpu"}, dropped=7)
    values = {kv.key: kv.value for kv in status.values}
    assert status.level == DiagnosticStatus.WARN and status.hardware_id == "cpu"
    assert values["input_rate_hz"] == "10.00" and values["processed_rate_hz"] == "5.00"
    assert values["frames_dropped"] == "7" and values["frames_rejected"] == "3"
    assert values["rejected[zero-size image]"] == "2"
    assert values["last_reject_reason"] == "unsupported encoding 'x'"
    assert float(values["latency_ms.total.max"]) == pytest.approx(100.0)
    assert float(values["latency_ms.network.p50"]) == pytest.approx(5.0)
    assert values["device"] == "cpu" and values["people_last"] == "3"
    # next period: frames but no rejects -> OK; then nothing -> WARN no input; errors -> ERROR
    stats.record_received()
    stats.record_processed({"total": 0.01}, 0)
    clock.now += 1.0
    assert stats.report("n", "cpu").level == DiagnosticStatus.OK
    clock.now += 1.0
    quiet = stats.report("n", "cpu")
    assert quiet.level == DiagnosticStatus.WARN and quiet.message == "no input frames"
    assert stats.report("n", "cpu", active=False).level == DiagnosticStatus.OK
    stats.record_error("boom")
    assert stats.report("n", "cpu").level == DiagnosticStatus.ERROR


def test_status_values_helper() -> None:
    stats = NodeStatistics()
    array = DiagnosticArray(status=[stats.report("pose_node: pipeline", "cpu")])
    assert status_values(array, "pipeline")["frames_received"] == "0"
    assert status_values(array, "missing") == {}

def test_a_camera_that_stops_is_counted_once_per_stop() -> None:
    clock = _FakeClock()
    stats = NodeStatistics(clock=clock)
    clock.now += 1.0
    first = {kv.key: kv.value for kv in stats.report("n", "cpu").values}
    assert first["input_stalls"] == "0" and first["seconds_since_input"] == "never"
    stats.record_received()
    clock.now += 1.0
    stats.report("n", "cpu")
    for _ in range(3):  # three silent periods: one stop
        clock.now += 1.0
        values = {kv.key: kv.value for kv in stats.report("n", "cpu").values}
    assert values["input_stalls"] == "1" and values["seconds_since_input"] == "4.0"
    stats.record_received()  # it comes back, then stops again
    clock.now += 1.0
    stats.report("n", "cpu")
    clock.now += 1.0
    assert status_values(DiagnosticArray(status=[stats.report("n", "cpu")]))["input_stalls"] == "2"
