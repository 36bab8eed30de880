"""`run_node`: the shared `main()` body of the pose_ros executables (real rclpy, default context)."""

from __future__ import annotations

import pytest
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from pose_ros.node_main import run_node

pytestmark = pytest.mark.ros


class _StopsOnFirstTick(Node):
    """Raises `error` from its first timer callback, as Ctrl-C or `ros2 lifecycle` shutdown do."""

    destroyed: list[str]

    def __init__(self, error: BaseException, destroyed: list[str]) -> None:
        super().__init__("run_node_probe")
        self.destroyed = destroyed
        self._error = error
        self.create_timer(0.01, self._tick)

    def _tick(self) -> None:
        raise self._error

    def destroy_node(self) -> None:
        self.destroyed.append(self.get_name())
        super().destroy_node()


@pytest.mark.parametrize("error", [KeyboardInterrupt(), ExternalShutdownException()])
def test_run_node_spins_until_interrupted_then_cleans_up(error: BaseException) -> None:
    destroyed: list[str] = []
    run_node(lambda: _StopsOnFirstTick(error, destroyed), args=[])
    assert destroyed == ["run_node_probe"]
    assert not rclpy.ok()


def test_run_node_propagates_other_errors_after_destroying_the_node() -> None:
    destroyed: list[str] = []
    with pytest.raises(RuntimeError, match="boom"):
        run_node(lambda: _StopsOnFirstTick(RuntimeError("boom"), destroyed), args=[])
    assert destroyed == ["run_node_probe"]
    assert not rclpy.ok()


def test_a_refused_top_down_model_is_the_only_error(
    random_checkpoint, capfd: pytest.CaptureFixture[str]
) -> None:
    """The node refuses a top-down model in its constructor; rclpy's shutdown then destroys
    the half-built node, which must not add an error of its own (it once raised
    AttributeError: no 'channels')."""
    from pose_ros.pose_node import PoseNode

    args = ["--ros-args", "-p", "model:=hrnet_w32_256x192_coco",
            "-p", f"checkpoint:={random_checkpoint}"]
    with pytest.raises(ValueError, match="top-down: it needs a box per person") as refused:
        run_node(PoseNode, args=args)
    assert refused.value.__context__ is None  # nothing went wrong while handling it
    assert not rclpy.ok()
    output = capfd.readouterr()
    assert "AttributeError" not in output.out + output.err
