"""Camera in, people out: `ros2 launch pose_ros camera.launch.py [camera_topic:=...]`.

Thin on purpose: the arguments and the node set-up live in `pose_ros.launch_support`
(unit-tested, since `launch` is not installable everywhere). Arguments: see
`pose_ros.launch_support.LAUNCH_ARGUMENTS` or `ros2 launch pose_ros camera.launch.py -s`.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from pose_ros.launch_support import LAUNCH_ARGUMENTS, PACKAGE, node_configs


def _nodes(context):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in LAUNCH_ARGUMENTS}
    share = Path(get_package_share_directory(PACKAGE))
    return [Node(**config) for config in node_configs(values, share)]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
         for a in LAUNCH_ARGUMENTS]
        + [OpaqueFunction(function=_nodes)]
    )
