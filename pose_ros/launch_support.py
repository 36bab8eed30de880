"""What `launch/camera.launch.py` computes, as plain, tested Python (no `launch` import).

`launch` / `launch_ros` are not installable on every machine (they are not on PyPI), so the
launch file only declares `LAUNCH_ARGUMENTS` and turns the dictionaries returned by
`node_configs` into `launch_ros.actions.Node(**config)`. Everything decided here is unit-tested.

Topics: with one camera (the default) the pose node subscribes its relative `image` (or
`image/compressed`); the `camera_topic` argument remaps it. With `use_synthetic_camera`, a
synthetic camera is started in the same namespace and publishes on that same topic (and
`<camera_topic>/compressed` when `compressed` is true), with `camera_info` beside it. With
`cameras:=front,left` one pose node serves every camera: it subscribes `front/image`,
`left/image`, ... and publishes `front/people`, ... (`camera_topic` does not apply;
`camera_topics:=/a/image_raw,/b/image_raw` remaps each camera's input to an existing topic and
`camera_transports:=raw,compressed` says what each sends); with `use_synthetic_camera` one
synthetic camera per name publishes there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the node's default omp_wait_policy (docs/benchmark_node.md), in the process environment
POSE_NODE_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}

__all__ = [
    "LaunchArgument",
    "LAUNCH_ARGUMENTS",
    "PACKAGE",
    "parse_bool",
    "camera_info_topic",
    "node_configs",
    "parse_cameras",
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
        "cameras",
        "",
        "comma-separated camera namespaces served by one node (front,left: front/image -> "
        "front/people, ...); '' = one camera on camera_topic",
    ),
    LaunchArgument(
        "camera_topics",
        "",
        "with cameras: comma-separated image topics, one per camera, that <camera>/image is "
        "remapped to (/front/color/image_raw,...); '' = <camera>/image itself",
    ),
    LaunchArgument(
        "camera_transports",
        "",
        "with cameras: raw|compressed, one for all cameras or one per camera (raw,compressed); "
        "'' = the compressed argument for all",
    ),
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
    cameras = parse_cameras(values["cameras"])
    if cameras:
        overrides["cameras"] = list(cameras)
        transports = _per_camera("camera_transports", values["camera_transports"], cameras,
                                 "compressed" if compressed else "raw")
        if any(t not in ("raw", "compressed") for t in transports):
            raise ValueError(f"launch argument camera_transports: raw or compressed, got "
                             f"{values['camera_transports']!r}")
        overrides["camera_transports"] = list(transports)
        topics = _per_camera("camera_topics", values["camera_topics"], cameras, "")
        if values["camera_topics"].strip() and len(set(topics)) != len(topics):
            raise ValueError("launch argument camera_topics: one distinct topic per camera")
        return _multi_camera_configs(cameras, namespace, params_file, overrides, transports,
                                     topics, synthetic)
    pose_node = {
        "package": PACKAGE,
        "executable": "pose_node",
        # read by torch's OpenMP runtime when it loads, before the node reads its parameters
        "additional_env": dict(POSE_NODE_ENV),
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


def parse_cameras(text: str) -> tuple[str, ...]:
    """'front, left' -> ('front', 'left'); '' -> () (one camera on camera_topic).

    Raises:
        ValueError: for an empty name between commas or a repeated name.
    """
    if not text.strip():
        return ()
    names = tuple(name.strip() for name in text.split(","))
    if any(not name for name in names) or len(set(names)) != len(names):
        raise ValueError(f"launch argument cameras: distinct non-empty names, got {text!r}")
    return names


def _per_camera(name: str, text: str, cameras: tuple[str, ...], default: str) -> tuple[str, ...]:
    """A comma-separated launch argument with one entry for all cameras or one per camera."""
    if not text.strip():
        return (default,) * len(cameras)
    entries = tuple(entry.strip() for entry in text.split(","))
    if len(entries) == 1:
        return entries * len(cameras)
    if len(entries) != len(cameras) or not all(entries):
        raise ValueError(f"launch argument {name}: one entry or one per camera "
                         f"({len(cameras)}), got {text!r}")
    return entries


def _multi_camera_configs(
    cameras: tuple[str, ...],
    namespace: str,
    params_file: str,
    overrides: dict[str, Any],
    transports: tuple[str, ...],
    topics: tuple[str, ...],
    synthetic: bool,
) -> list[dict[str, Any]]:
    """One pose node for every camera (each `<camera>/image` remapped to its entry of
    `topics` where given), plus one synthetic camera per camera when asked."""
    configs: list[dict[str, Any]] = []
    remappings = []
    for camera, topic in zip(cameras, topics):
        if topic:
            remappings += [(f"{camera}/image", topic),
                           (f"{camera}/image/compressed", f"{topic}/compressed")]
    if synthetic:
        for camera, transport, topic in zip(cameras, transports, topics):
            configs.append({
                "package": PACKAGE,
                "executable": "synthetic_camera",
                "name": f"synthetic_camera_{camera.replace('/', '_')}",
                "namespace": f"{namespace.rstrip('/')}/{camera}" if namespace else camera,
                "parameters": [{"publish_compressed": transport == "compressed"}],
                "output": "screen",
            })
            if topic:
                configs[-1]["remappings"] = [
                    ("image", topic), ("image/compressed", f"{topic}/compressed"),
                    ("camera_info", camera_info_topic(topic))]
    configs.append({
        "package": PACKAGE,
        "executable": "pose_node",
        # read by torch's OpenMP runtime when it loads, before the node reads its parameters
        "additional_env": dict(POSE_NODE_ENV),
        "name": "pose_node",
        "namespace": namespace,
        "parameters": [params_file, overrides],
        "output": "screen",
    })
    if remappings:
        configs[-1]["remappings"] = remappings
    return configs
