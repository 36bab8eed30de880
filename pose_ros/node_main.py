"""The `main()` body every pose_ros executable shares (ros2/demos idiom).

`run_node(node_factory, args)` initialises rclpy, builds one node, spins it until Ctrl-C or an
external shutdown, destroys the node (or, when the context is already gone, calls its
`stop_processing()` if it has one) and shuts rclpy down.
"""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
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
            try:
                rclpy.spin(node)
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
