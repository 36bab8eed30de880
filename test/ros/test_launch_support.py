"""launch_support: the decisions of launch/camera.launch.py, and the launch file's shape."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pose_ros.launch_support import (
    LAUNCH_ARGUMENTS,
    camera_info_topic,
    node_configs,
    parse_bool,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARE = Path("/opt/share/pose_ros")


def test_defaults_start_only_the_pose_node_with_the_package_yaml() -> None:
    configs = node_configs({}, SHARE)
    assert len(configs) == 1
    node = configs[0]
    assert (node["package"], node["executable"], node["name"]) == (
        "pose_ros", "pose_node", "pose_node")
    assert node["parameters"] == [str(SHARE / "config" / "pose_node.yaml"), {"compressed": False}]
    assert ("image", "image") in node["remappings"]
    assert node["namespace"] == ""


def test_overrides_remaps_and_synthetic_camera() -> None:
    configs = node_configs(
        {
            "camera_topic": "/front/image_raw",
            "compressed": "True",
            "model": "higherhrnet_w32_512_coco",
            "checkpoint": "/weights/w32.pt",
            "device": "cuda",
            "namespace": "robot1",
            "use_synthetic_camera": "1",
            "params_file": "/tmp/my.yaml",
        },
        SHARE,
    )
    camera, pose = configs
    assert camera["executable"] == "synthetic_camera"
    assert camera["parameters"] == [{"publish_compressed": True}]
    assert ("camera_info", "/front/camera_info") in camera["remappings"]
    assert ("image", "/front/image_raw") in camera["remappings"]
    assert pose["parameters"] == [
        "/tmp/my.yaml",
        {"compressed": True, "model": "higherhrnet_w32_512_coco",
         "checkpoint": "/weights/w32.pt", "device": "cuda"},
    ]
    assert ("image/compressed", "/front/image_raw/compressed") in pose["remappings"]
    assert pose["namespace"] == camera["namespace"] == "robot1"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"compressed": "maybe"}, "compressed: expected true or false"),
        ({"camera_topic": " "}, "camera_topic must not be empty"),
        ({"camera": "x"}, "unknown launch arguments: camera"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        node_configs(arguments, SHARE)


def test_helpers() -> None:
    assert parse_bool("x", " ON ") is True and parse_bool("x", "") is False
    assert camera_info_topic("image") == "camera_info"
    assert camera_info_topic("/image") == "/camera_info"
    assert camera_info_topic("cam/image_raw") == "cam/camera_info"


def test_launch_file_is_thin_and_declares_every_argument() -> None:
    source = (REPO_ROOT / "launch" / "camera.launch.py").read_text()
    tree = ast.parse(source)
    imported = {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= {"pathlib", "ament_index_python", "launch", "launch_ros", "pose_ros"}
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions == ["_nodes", "generate_launch_description"]
    assert "LAUNCH_ARGUMENTS" in source and "node_configs" in source
    assert {a.name for a in LAUNCH_ARGUMENTS} >= {
        "camera_topic", "compressed", "model", "checkpoint", "device", "namespace",
        "use_synthetic_camera",
    }


def test_several_cameras_run_in_one_pose_node() -> None:
    from pose_ros.launch_support import parse_cameras

    configs = node_configs({"cameras": "front, left", "use_synthetic_camera": "true",
                            "namespace": "robot"}, Path("/share"))
    pose = configs[-1]
    assert pose["executable"] == "pose_node" and pose["parameters"][1]["cameras"] == [
        "front", "left"]
    assert "remappings" not in pose  # each camera subscribes <camera>/image
    cameras = [c for c in configs if c["executable"] == "synthetic_camera"]
    assert [c["namespace"] for c in cameras] == ["robot/front", "robot/left"]
    assert parse_cameras("") == ()
    with pytest.raises(ValueError, match="distinct"):
        parse_cameras("front,front")


def test_each_camera_has_its_own_topic_and_transport() -> None:
    configs = node_configs({"cameras": "front,left",
                            "camera_topics": "/front/color/image_raw,/left/color/image_raw",
                            "camera_transports": "raw,compressed",
                            "use_synthetic_camera": "true"}, Path("/share"))
    pose = configs[-1]
    assert pose["parameters"][1]["camera_transports"] == ["raw", "compressed"]
    assert ("front/image", "/front/color/image_raw") in pose["remappings"]
    assert ("left/image/compressed", "/left/color/image_raw/compressed") in pose["remappings"]
    left = [c for c in configs if c.get("name") == "synthetic_camera_left"][0]
    assert left["parameters"] == [{"publish_compressed": True}]
    assert ("camera_info", "/left/color/camera_info") in left["remappings"]
    # one transport for all; the compressed argument is the default for all
    every = node_configs({"cameras": "a,b", "compressed": "true"}, Path("/share"))[-1]
    assert every["parameters"][1]["camera_transports"] == ["compressed", "compressed"]
    for bad, reason in (({"camera_transports": "raw,raw,raw"}, "one per camera"),
                        ({"camera_transports": "jpeg"}, "raw or compressed"),
                        ({"camera_topics": "/x,/x"}, "distinct")):
        with pytest.raises(ValueError, match=reason):
            node_configs({"cameras": "a,b", **bad}, Path("/share"))
