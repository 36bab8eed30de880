"""A camera that films the synthetic world: the built-in default input of the pose node.

Publishes frames of `pose_core.data.synthetic.SyntheticVideo` (people walking across a fixed
scene) as `image` (sensor_msgs/Image, bgr8) and `camera_info` (an ideal pinhole, no distortion:
fx = fy = `focal_px` or the image width, principal point at the image centre), optionally also
`image/compressed` (JPEG). Stamps are the node clock at publication; `frame_id` is a parameter.
Topics are relative; QoS is SensorData (best effort, depth 5) with the standard overrides.

Frame index i is published at the i-th tick of the `rate` timer; the video loops after
`loop_frames` frames (0 = never), so long runs stay deterministic. A loop of at most
MAX_CACHED_FRAMES frames is rendered once, lazily, and then replayed from memory (a tick then
costs <1 ms instead of ~3-7 ms at 640x480); the ground truth is that of the replayed index.

With `publish_depth`, the camera also has an aligned depth sensor
(`pose_core.data.synthetic.depth.render_depth`: people at the distance their size gives, a
floor and a wall behind them, optional z^2 noise and holes) and publishes `depth/image`
(`depth_encoding` 32FC1 metres or 16UC1 millimetres) and `depth/camera_info` with the colour
frame's header, so the pose node's 3D stage can be tested with exact ground truth.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import numpy as np
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from pose_core.data.synthetic import SyntheticScene, SyntheticVideo
from pose_core.data.synthetic.depth import DepthFrame, render_depth
from pose_ros.depth_input import DEPTH_ENCODINGS, depth_to_image
from pose_ros.image_conversion import bgr_to_compressed, bgr_to_image
from pose_ros.node_main import run_node

__all__ = ["SyntheticCameraNode", "pinhole_camera_info", "main"]


def pinhole_camera_info(header: Header, width: int, height: int, focal_px: float) -> CameraInfo:
    """An ideal pinhole CameraInfo (plumb_bob with zero distortion)."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    info = CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob")
    info.d = [0.0] * 5
    info.k = [focal_px, 0.0, cx, 0.0, focal_px, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [focal_px, 0.0, cx, 0.0, 0.0, focal_px, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def _int_range(low: int, high: int) -> list[IntegerRange]:
    return [IntegerRange(from_value=low, to_value=high, step=1)]


def _float_range(low: float, high: float) -> FloatingPointRange:
    return FloatingPointRange(from_value=low, to_value=high)


MAX_CACHED_FRAMES = 300  # frames of a looping video kept in memory (640x480: ~280 MB at most)
GROUND_TRUTH_FRAMES = 600  # ground truth of the latest published frames, by stamp


class SyntheticCameraNode(Node):
    """Publishes the synthetic video at a fixed rate (see the module docstring).

    Args:
        node_name: ROS node name.
        **kwargs: passed to `rclpy.node.Node` (context, parameter_overrides, namespace, ...).
    """

    def __init__(self, node_name: str = "synthetic_camera", **kwargs: object) -> None:
        super().__init__(node_name, **kwargs)
        read_only = {"read_only": True}
        self.width = self.declare_parameter(
            "width", 640, ParameterDescriptor(
                description="image width, px", integer_range=_int_range(16, 7680), **read_only)
        ).value
        self.height = self.declare_parameter(
            "height", 480, ParameterDescriptor(
                description="image height, px", integer_range=_int_range(16, 4320), **read_only)
        ).value
        self.rate = self.declare_parameter(
            "rate", 15.0, ParameterDescriptor(
                description="frames per second",
                floating_point_range=[FloatingPointRange(from_value=0.1, to_value=240.0)],
                **read_only)
        ).value
        self.num_people = self.declare_parameter(
            "num_people", 4, ParameterDescriptor(
                description="people walking in the scene", integer_range=_int_range(0, 30),
                **read_only)
        ).value
        self.seed = self.declare_parameter(
            "seed", 0, ParameterDescriptor(description="scene seed", **read_only)
        ).value
        self.frame_id = self.declare_parameter(
            "frame_id", "camera_optical_frame",
            ParameterDescriptor(description="header.frame_id of the images", **read_only)
        ).value
        self.focal_px = self.declare_parameter(
            "focal_px", 0.0, ParameterDescriptor(
                description="pinhole focal length in px for camera_info (0 = image width)",
                **read_only)
        ).value or float(self.width)
        self.loop_frames = self.declare_parameter(
            "loop_frames", 0, ParameterDescriptor(
                description="restart the video after this many frames (0 = never)",
                integer_range=_int_range(0, 10**9), **read_only)
        ).value
        self.publish_compressed = self.declare_parameter(
            "publish_compressed", False,
            ParameterDescriptor(description="also publish image/compressed (JPEG)", **read_only)
        ).value
        self.publish_depth = self.declare_parameter(
            "publish_depth", False,
            ParameterDescriptor(description="also publish depth/image and depth/camera_info",
                                **read_only)
        ).value
        self.depth_encoding = self.declare_parameter(
            "depth_encoding", "32FC1",
            ParameterDescriptor(description="32FC1 (metres) or 16UC1 (millimetres)", **read_only)
        ).value
        if self.depth_encoding not in DEPTH_ENCODINGS:  # refused now, not at the first frame
            raise ValueError(
                f"depth_encoding must be one of {', '.join(DEPTH_ENCODINGS)}, "
                f"got {self.depth_encoding!r}"
            )
        self.depth_noise_m = self.declare_parameter(
            "depth_noise_m", 0.0,
            ParameterDescriptor(description="depth noise sigma at 1 m (grows with z^2)",
                                floating_point_range=[_float_range(0.0, 1.0)], **read_only)
        ).value
        self.depth_hole_fraction = self.declare_parameter(
            "depth_hole_fraction", 0.0,
            ParameterDescriptor(description="share of depth pixels without a reading",
                                floating_point_range=[_float_range(0.0, 1.0)], **read_only)
        ).value
        self.video = SyntheticVideo(
            self.width, self.height, self.num_people, fps=self.rate, seed=self.seed
        )
        overrides = QoSOverridingOptions.with_default_policies()
        self._image_publisher = self.create_publisher(
            Image, "image", qos_profile_sensor_data, qos_overriding_options=overrides
        )
        self._info_publisher = self.create_publisher(
            CameraInfo, "camera_info", qos_profile_sensor_data
        )
        self._compressed_publisher = (
            self.create_publisher(CompressedImage, "image/compressed", qos_profile_sensor_data)
            if self.publish_compressed
            else None
        )
        self._depth_publishers = (
            (self.create_publisher(Image, "depth/image", qos_profile_sensor_data),
             self.create_publisher(CameraInfo, "depth/camera_info", qos_profile_sensor_data))
            if self.publish_depth
            else None
        )
        self.last_depth: DepthFrame | None = None
        self.frames_published = 0
        self.render_seconds = 0.0
        self.last_scene: SyntheticScene | None = None
        # (keypoints, areas) of the latest frames by stamp: the demo scores what the pose node
        # published for a frame against the frame's exact ground truth
        self._ground_truth: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        # with depth: the exact 3D keypoints (render_depth's positions) of the same frames
        self._ground_truth_3d: OrderedDict[int, np.ndarray] = OrderedDict()
        # A looping video replays its frames from memory (up to MAX_CACHED_FRAMES): rendering is
        # Python-heavy and, in a process shared with the pose node, competes for the GIL.
        self._cache: dict[int, SyntheticScene] = {}
        self._timer = self.create_timer(1.0 / self.rate, self._tick)

    def _tick(self) -> None:
        index = self.frames_published
        if self.loop_frames:
            index %= self.loop_frames
        scene = self._cache.get(index)
        if scene is None:
            started = time.perf_counter()
            scene = self.video.frame(index)
            self.render_seconds += time.perf_counter() - started
            if 0 < self.loop_frames <= MAX_CACHED_FRAMES:
                self._cache[index] = scene
        header = Header(frame_id=self.frame_id, stamp=self.get_clock().now().to_msg())
        self._image_publisher.publish(bgr_to_image(scene.image_bgr, header))
        self._info_publisher.publish(
            pinhole_camera_info(header, self.width, self.height, self.focal_px)
        )
        if self._compressed_publisher is not None:
            self._compressed_publisher.publish(bgr_to_compressed(scene.image_bgr, header))
        if self._depth_publishers is not None:
            depth = self._publish_depth(index, scene, header)
            self._ground_truth_3d[_stamp_ns(header)] = depth.positions
            while len(self._ground_truth_3d) > GROUND_TRUTH_FRAMES:
                self._ground_truth_3d.popitem(last=False)
        self.last_scene = scene
        self._ground_truth[_stamp_ns(header)] = (scene.keypoints, scene.areas)
        while len(self._ground_truth) > GROUND_TRUTH_FRAMES:
            self._ground_truth.popitem(last=False)
        self.frames_published += 1

    def ground_truth(self, header: Header) -> tuple[np.ndarray, np.ndarray] | None:
        """(keypoints (P, J, 3), areas (P,)) of the frame published with this header's stamp,
        while it is among the latest GROUND_TRUTH_FRAMES; None otherwise."""
        return self._ground_truth.get(_stamp_ns(header))

    def ground_truth_positions(self, header: Header) -> np.ndarray | None:
        """(P, J, 3) exact 3D keypoints (metres, the depth camera's optical frame, the people
        of `ground_truth`) of the frame published with this header's stamp; None without
        `publish_depth` or once the frame is no longer among the latest."""
        return self._ground_truth_3d.get(_stamp_ns(header))

    def _publish_depth(self, index: int, scene: SyntheticScene, header: Header) -> DepthFrame:
        depth = render_depth(
            self.video.layout(index), scene, self.focal_px, noise_m=self.depth_noise_m,
            hole_fraction=self.depth_hole_fraction, seed=index,
        )
        pixels = depth.millimetres() if self.depth_encoding == "16UC1" else depth.depth
        image_publisher, info_publisher = self._depth_publishers
        image_publisher.publish(depth_to_image(pixels, self.depth_encoding, header))
        info_publisher.publish(pinhole_camera_info(header, self.width, self.height,
                                                   self.focal_px))
        self.last_depth = depth
        return depth


def _stamp_ns(header: Header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def main(args: list[str] | None = None) -> None:
    """`python -m pose_ros.synthetic_camera [--ros-args ...]`: publish until Ctrl-C."""
    run_node(SyntheticCameraNode, args)


if __name__ == "__main__":
    main()
