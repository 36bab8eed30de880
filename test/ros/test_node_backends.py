"""The node selects its backend by name; a backend that fails to load leaves the node up,
unconfigured, with the failure counted and published in diagnostics."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter

from pose_ros.params import NodeParams
from pose_ros.pose_node import PoseNode, build_estimator

pytestmark = pytest.mark.ros


def test_backend_load_failure_is_counted_in_diagnostics(
    ros_context: rclpy.Context, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    listener = rclpy.create_node("diagnostics_listener", context=ros_context)
    received: list[DiagnosticArray] = []
    listener.create_subscription(DiagnosticArray, "/diagnostics", received.append, 10)
    node = PoseNode(context=ros_context, parameter_overrides=[
        Parameter("checkpoint", value=str(broken)), Parameter("device", value="cpu"),
        Parameter("backend", value="onnxruntime"),
    ])
    try:
        assert not node.active  # configure failed, the process and the node stay up
        assert node.stats.errors == 1
        executor = rclpy.executors.SingleThreadedExecutor(context=ros_context)
        executor.add_node(listener)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            node.publish_diagnostics()
            executor.spin_once(timeout_sec=0.2)
            if received:
                break
        assert received, "no diagnostics published after the failed configure"
        values = {kv.key: kv.value for kv in received[-1].status[0].values}
        assert values["processing_errors"] == "1"
        assert values["backend"] == "onnxruntime"
    finally:
        node.destroy_node()
        listener.destroy_node()


def test_node_estimator_backend_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pose_core.inference.backends import TorchBackend
    from pose_core.inference.onnxruntime_backend import OnnxRuntimeBackend

    monkeypatch.setenv("POSE_ROS_CACHE_DIR", str(tmp_path))
    assert NodeParams().backend == "auto"
    cpu_auto = build_estimator(NodeParams(device="cpu"))
    assert isinstance(cpu_auto.backend, OnnxRuntimeBackend)  # the measured CPU default
    torch_named = build_estimator(NodeParams(device="cpu", backend="torch"))
    assert isinstance(torch_named.backend, TorchBackend)
    with pytest.raises(ValueError, match="tensorrt needs a CUDA device"):
        NodeParams(device="cpu", backend="tensorrt")
