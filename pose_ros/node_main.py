"""The `main()` body every pose_ros executable shares (ros2/demos idiom).

`run_node(node_factory, args)` initialises rclpy, builds one node, spins it until Ctrl-C or an
external shutdown, destroys the node (or, when the context is already gone, calls its
`stop_processing()` if it has one) and shuts rclpy down. A node with an `executor_threads`
parameter above 1 spins on a MultiThreadedExecutor of that many threads.
"""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

__all__ = ["run_node"]


def run_node(node_factory: Callable[[], Node], args: list[str] | None = None) -> None:
    """Spin the node `node_factory()` builds until Ctrl-C or an external shutdown.

    Args:
        node_factory: builds the node once rclpy is initialised (a `Node` subclass).
        args: command-line arguments for `rclpy.init` (`--ros-args ...`); None reads `sys.argv`.
    """
    try:
        with rclpy.init(args=args):
            node = node_factory()
            threads = (node.get_parameter("executor_threads").value
                       if node.has_parameter("executor_threads") else 1)
            executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else None
            try:
                rclpy.spin(node, executor=executor)
            finally:
                # SIGTERM (rclpy's handler) shuts the context down under the node; destroying a
                # node of a dead context raises, and there is nothing left to release then but
                # the node's own threads: a worker thread still inside the network when the
                # interpreter exits aborts the process, so it is stopped (and waited for).
                if node.context.ok():
                    node.destroy_node()
                else:
                    stop = getattr(node, "stop_processing", None)
                    if callable(stop):
                        stop()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
