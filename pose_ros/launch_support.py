"""What `launch/camera.launch.py` computes, as plain, tested Python (no `launch` import).

`launch` / `launch_ros` are not installable on every machine (they are not on PyPI), so the
launch file only declares `LAUNCH_ARGUMENTS` and turns the dictionaries returned by
`node_configs` into `launch_ros.actions.Node(**config)`. Everything decided here is unit-tested.

Topics: the pose node always subscribes its relative `image` (or `image/compressed`); the
`camera_topic` argument remaps it. With `use_synthetic_camera`, a synthetic camera is started in
the same namespace and publishes on that same topic (and `<camera_topic>/compressed` when
`compressed` is true), with `camera_info` beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LaunchArgument",
    "LAUNCH_ARGUMENTS",
    "PACKAGE",
    "parse_bool",
    "camera_info_topic",
    "node_configs",
]

PACKAGE = "pose_ros"


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument: name, default (a string, as launch passes them) and description."""

    name: str
    default: str
    description: str


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("camera_topic", "image", "sensor_msgs/Image topic of the camera"),
    LaunchArgument(
        "compressed", "false", "subscribe <camera_topic>/compressed (CompressedImage) instead"
    ),
    LaunchArgument("model", "", "pose_core model name ('' = the one in params_file)"),
    LaunchArgument("checkpoint", "", "checkpoint path ('' = the one in params_file)"),
    LaunchArgument("device", "", "auto|cpu|cuda[:N] ('' = the one in params_file)"),
    LaunchArgument("namespace", "", "namespace of the nodes"),
    LaunchArgument("use_synthetic_camera", "false", "also start the synthetic-world camera"),
    LaunchArgument("params_file", "", "parameter YAML ('' = the package's pose_node.yaml)"),
)

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})


def parse_bool(name: str, text: str) -> bool:
    """Launch arguments are strings: 'true'/'false' (also 1/0, yes/no, on/off).

    Raises:
        ValueError: for any other text.
    """
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"launch argument {name}: expected true or false, got {text!r}")


def camera_info_topic(camera_topic: str) -> str:
    """`camera_info` beside the image topic: '/cam/image_raw' -> '/cam/camera_info'."""
    head, _, _ = camera_topic.rstrip("/").rpartition("/")
    if not head:
        return "/camera_info" if camera_topic.startswith("/") else "camera_info"
    return f"{head}/camera_info"


def node_configs(arguments: Mapping[str, str], package_share: Path) -> list[dict[str, Any]]:
    """The nodes to start, as keyword arguments of `launch_ros.actions.Node`.

    Args:
        arguments: launch argument values by name (missing ones take their default).
        package_share: the package's share directory (holds config/pose_node.yaml).

    Raises:
        ValueError: unknown argument names, bad booleans or an empty camera topic.
    """
    known = {argument.name: argument.default for argument in LAUNCH_ARGUMENTS}
    unknown = sorted(set(arguments) - set(known))
    if unknown:
        raise ValueError(f"unknown launch arguments: {', '.join(unknown)}")
    values = {**known, **arguments}
    compressed = parse_bool("compressed", values["compressed"])
    synthetic = parse_bool("use_synthetic_camera", values["use_synthetic_camera"])
    camera_topic = values["camera_topic"].strip()
    if not camera_topic:
        raise ValueError("launch argument camera_topic must not be empty")
    params_file = values["params_file"] or str(Path(package_share) / "config" / "pose_node.yaml")
    overrides: dict[str, Any] = {"compressed": compressed}
    for name in ("model", "checkpoint", "device"):
        if values[name]:
            overrides[name] = values[name]
    namespace = values["namespace"].strip()
    pose_node = {
        "package": PACKAGE,
        "executable": "pose_node",
        "name": "pose_node",
        "namespace": namespace,
        "parameters": [params_file, overrides],
        "remappings": [
            ("image", camera_topic),
            ("image/compressed", f"{camera_topic}/compressed"),
        ],
        "output": "screen",
    }
    configs = [pose_node]
    if synthetic:
        configs.insert(
            0,
            {
                "package": PACKAGE,
                "executable": "synthetic_camera",
                "name": "synthetic_camera",
                "namespace": namespace,
                "parameters": [{"publish_compressed": compressed}],
                "remappings": [
                    ("image", camera_topic),
                    ("image/compressed", f"{camera_topic}/compressed"),
                    ("camera_info", camera_info_topic(camera_topic)),
                ],
                "output": "screen",
            },
        )
    return configs
