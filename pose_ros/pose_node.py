"""The perception node: camera images in, people (`pose_ros/PersonArray`) out.

Topics (all relative, so namespaces and remapping apply):
- subscribes `image` (sensor_msgs/Image) or, with `compressed: true`, `image/compressed`
  (sensor_msgs/CompressedImage); SensorData QoS (best effort, depth 5) that users retune through
  the standard `qos_overrides./<ns>/image.subscription.*` parameters;
- publishes `people` (PersonArray, reliable, depth 10): the input header unchanged, keypoints in
  the input image's pixels; an empty `people` list when a processed frame has nobody in it;
- publishes `annotated_image` (sensor_msgs/Image bgr8) and `markers`
  (visualization_msgs/MarkerArray) only when enabled and subscribed;
- publishes `/diagnostics` (diagnostic_msgs/DiagnosticArray) every `diagnostics_period`.

Processing: the subscription callback converts the image (rejecting malformed ones with a
reason) and puts it into a single-slot newest-frame buffer; one worker thread runs the estimator
on the newest frame, so a slow model never builds a backlog: frames replaced while the worker is
busy are counted as dropped. Every input message ends as exactly one of processed, dropped,
rejected or (if the estimator raises) a processing error, all visible in diagnostics.

Lifecycle: configure builds the estimator (`build_estimator`) and the publishers, activate
subscribes and starts the worker, deactivate unsubscribes, cleanup releases the model. With
`auto_activate: true` (default) the node configures and activates itself at start.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from pose_core.keypoint_specs import KeypointSpec
from pose_core.structures import Poses
from pose_ros.diagnostics import NodeStatistics
from pose_ros.frame_buffer import FrameWorker, LatestFrameBuffer
from pose_ros.image_conversion import (
    ImageRejected,
    bgr_to_image,
    compressed_to_bgr,
    image_to_bgr,
)
from pose_ros.marker_conversion import poses_to_markers
from pose_ros.msg import PersonArray
from pose_ros.node_main import run_node
from pose_ros.params import NodeParams, declare_node_parameters, read_node_params
from pose_ros.pose_conversion import PersonArrayBuilder

__all__ = ["PoseNode", "Estimator", "build_estimator", "resolve_device", "main"]

OUTPUT_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
# Parameters whose change needs a new estimator (the others are read per frame).
_ESTIMATOR_FIELDS = (
    "flip_test",
    "scales",
    "detection_threshold",
    "tag_threshold",
    "max_people",
    "max_input_size",
)


class Estimator(Protocol):
    """What the node needs from `pose_core.PoseEstimator`."""

    keypoint_spec: KeypointSpec
    last_timings: dict[str, float]

    def __call__(self, image_bgr: np.ndarray) -> Poses: ...


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; other values unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_estimator(params: NodeParams) -> Estimator:
    """The one place where the node's estimator is made: any model + checkpoint.

    `checkpoint == ''` means the shipped weights of `pose_core.DEFAULT_MODEL`.
    """
    from dataclasses import asdict

    from pose_core import PoseEstimator

    options: dict[str, Any] = asdict(params.grouping_params())
    return PoseEstimator(
        params.model,
        checkpoint=params.checkpoint or None,
        device=resolve_device(params.device),
        flip_test=params.flip_test,
        scales=params.scales,
        input_size=params.max_input_size or None,
        fp16=params.fp16,
        **options,
    )


@dataclass(frozen=True)
class _Frame:
    """A converted input frame waiting for the worker."""

    header: Header
    image_bgr: np.ndarray
    convert_seconds: float


def _stamp_seconds(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class PoseNode(LifecycleNode):
    """Lifecycle node running a `pose_core` estimator on the newest camera frame.

    Args:
        node_name: ROS node name.
        estimator_factory: builds the estimator from the parameters (default
            `build_estimator`); the single hook to point the node at another model source.
        **kwargs: passed to `rclpy.lifecycle.LifecycleNode` (context, parameter_overrides,
            namespace, ...).

    Raises:
        ValueError: when the initial parameter values are invalid (the reason says which).
    """

    def __init__(
        self,
        node_name: str = "pose_node",
        *,
        estimator_factory: Callable[[NodeParams], Estimator] = build_estimator,
        **kwargs: Any,
    ) -> None:
        super().__init__(node_name, **kwargs)
        self.params = declare_node_parameters(self)
        self.add_post_set_parameters_callback(self._on_parameters_set)
        self._estimator_factory = estimator_factory
        self._estimator: Estimator | None = None
        self._estimator_lock = threading.Lock()
        self._estimator_stale = False
        self.device = resolve_device(self.params.device)
        self.stats = NodeStatistics()
        self.buffer: LatestFrameBuffer[_Frame] = LatestFrameBuffer()
        self._worker = FrameWorker(self.buffer, self._process, self._on_worker_error, "pose")
        self._subscription: Any = None
        self._builder: PersonArrayBuilder | None = None  # used by the worker thread only
        self._people_publisher: Any = None
        self._annotated_publisher: Any = None
        self._markers_publisher: Any = None
        self._diagnostics_publisher: Any = None
        self._diagnostics_timer: Any = None
        self._active = False
        if self.params.auto_activate:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    @property
    def active(self) -> bool:
        """True while subscribed and processing (lifecycle state active)."""
        return self._active

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Validate the parameters, build the estimator and the publishers."""
        try:
            self.params = read_node_params(self)
            self.device = resolve_device(self.params.device)
            started = time.monotonic()
            estimator = self._estimator_factory(self.params)
        except Exception as error:  # noqa: BLE001 - any load failure fails the transition
            self.get_logger().error(f"configure failed: {type(error).__name__}: {error}")
            return TransitionCallbackReturn.FAILURE
        with self._estimator_lock:
            self._estimator, self._estimator_stale = estimator, False
        self.get_logger().info(
            f"model {self.params.model} on {self.device} "
            f"({self.params.checkpoint or 'shipped weights'}) loaded in "
            f"{time.monotonic() - started:.2f} s"
        )
        self._people_publisher = self.create_lifecycle_publisher(PersonArray, "people", OUTPUT_QOS)
        self._annotated_publisher = self.create_lifecycle_publisher(
            Image, "annotated_image", OUTPUT_QOS
        )
        self._markers_publisher = self.create_lifecycle_publisher(
            MarkerArray, "markers", OUTPUT_QOS
        )
        self._diagnostics_publisher = self.create_publisher(
            DiagnosticArray, "/diagnostics", OUTPUT_QOS
        )
        self._diagnostics_timer = self.create_timer(
            self.params.diagnostics_period, self.publish_diagnostics
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera and start the worker."""
        message_type, topic = (
            (CompressedImage, "image/compressed") if self.params.compressed else (Image, "image")
        )
        self._subscription = self.create_subscription(
            message_type,
            topic,
            self._on_image,
            qos_profile_sensor_data,
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
        )
        self._worker.start()
        self._active = True
        self.get_logger().info(f"active: {self._subscription.topic_name} -> people")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop the worker (a pending frame is dropped)."""
        self._stop_input()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the model and the publishers."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything, from any state."""
        self._stop_input()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_input(self) -> None:
        self._active = False
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
            self._subscription = None
        if not self._worker.stop(timeout=5.0):
            # A frame is still in the network (slow CPU, big model). Destroying the node or the
            # context under it would crash the process at exit, so wait for it to finish.
            self.get_logger().warning("waiting for the frame in progress to finish")
            self._worker.stop(timeout=None)
        self.buffer.clear()

    def _release(self) -> None:
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
            self._diagnostics_timer = None
        for name in (
            "_people_publisher",
            "_annotated_publisher",
            "_markers_publisher",
        ):
            publisher = getattr(self, name)
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
                setattr(self, name, None)
        if self._diagnostics_publisher is not None:
            self.destroy_publisher(self._diagnostics_publisher)
            self._diagnostics_publisher = None
        with self._estimator_lock:
            self._estimator = None

    def destroy_node(self) -> None:
        """Stop the worker thread before the node goes away."""
        self._stop_input()
        super().destroy_node()

    # ------------------------------------------------------------------ parameters
    def _on_parameters_set(self, parameters: list[Any]) -> None:
        previous = self.params
        self.params = read_node_params(self)
        if any(getattr(previous, f) != getattr(self.params, f) for f in _ESTIMATOR_FIELDS):
            with self._estimator_lock:
                self._estimator_stale = True

    def _current_estimator(self) -> Estimator | None:
        with self._estimator_lock:
            stale, estimator = self._estimator_stale, self._estimator
        if estimator is None or not stale:
            return estimator
        try:
            rebuilt = self._estimator_factory(self.params)
        except Exception as error:  # noqa: BLE001 - keep the old estimator
            self.get_logger().error(f"new parameters not applied: {error}")
            rebuilt = estimator
        with self._estimator_lock:
            if self._estimator is not None:
                self._estimator, self._estimator_stale = rebuilt, False
            return self._estimator

    # ------------------------------------------------------------------ data path
    def _on_image(self, msg: Image | CompressedImage) -> None:
        """Subscription callback: count, convert (or reject), hand over to the worker."""
        self.stats.record_received()
        started = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):
                image_bgr = compressed_to_bgr(msg, self.params.max_image_pixels)
            else:
                image_bgr = image_to_bgr(msg, self.params.max_image_pixels)
        except ImageRejected as rejection:
            self.stats.record_rejected(rejection.reason)
            self.get_logger().warning(
                f"image rejected: {rejection.reason}", throttle_duration_sec=5.0
            )
            return
        self.buffer.put(_Frame(msg.header, image_bgr, time.perf_counter() - started))

    def _process(self, frame: _Frame) -> None:
        """Worker: estimate, then publish people (and the optional outputs)."""
        estimator = self._current_estimator()
        if estimator is None or not self._active:
            return
        params = self.params
        # the official parser keeps every person (COCO AP needs them); a robot does not want
        # the low-score fragments it also finds on empty frames
        poses = estimator(frame.image_bgr).with_min_score(params.person_min_score)
        timings = dict(estimator.last_timings)
        publish_started = time.perf_counter()
        height, width = frame.image_bgr.shape[:2]
        people_publisher = self._people_publisher
        if people_publisher is None:
            return
        builder = self._builder
        if builder is None or builder.spec != estimator.keypoint_spec:
            builder = self._builder = PersonArrayBuilder(estimator.keypoint_spec)
        # the builder reuses its message objects: publish before the next build (same thread)
        people_publisher.publish(builder.build(poses, frame.header, (width, height)))
        self._publish_optional_outputs(frame, poses, estimator.keypoint_spec, params)
        now = self.get_clock().now()
        stamp_age = now.nanoseconds * 1e-9 - _stamp_seconds(frame.header)
        stages = {
            "convert": frame.convert_seconds,
            "preprocess": timings.get("preprocess", 0.0),
            "network": timings.get("network", 0.0),
            "grouping": timings.get("grouping", 0.0),
            "publish": time.perf_counter() - publish_started,
        }
        if _stamp_seconds(frame.header) > 0 and 0.0 <= stamp_age < 3600.0:
            stages["total"] = stamp_age
        self.stats.record_processed(stages, len(poses))

    def _publish_optional_outputs(
        self, frame: _Frame, poses: Poses, spec: KeypointSpec, params: NodeParams
    ) -> None:
        height, width = frame.image_bgr.shape[:2]
        annotated = self._annotated_publisher
        if (
            params.publish_annotated_image
            and annotated is not None
            and annotated.get_subscription_count() > 0
        ):
            from pose_core.visualization import draw_poses

            drawn = draw_poses(frame.image_bgr, poses, spec, min_score=params.keypoint_min_score)
            annotated.publish(bgr_to_image(drawn, frame.header))
        markers = self._markers_publisher
        if params.publish_markers and markers is not None and markers.get_subscription_count():
            markers.publish(
                poses_to_markers(
                    poses,
                    frame.header,
                    (width, height),
                    spec,
                    min_score=params.keypoint_min_score,
                    metres_per_pixel=params.marker_metres_per_pixel,
                    plane_depth=params.marker_plane_depth,
                )
            )

    def _on_worker_error(self, error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}"
        self.stats.record_error(message)
        self.get_logger().error(f"processing failed: {message}", throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ diagnostics
    def diagnostics_status_name(self) -> str:
        return f"{self.get_name()}: pose estimation"

    def publish_diagnostics(self) -> None:
        """Publish one DiagnosticArray (timer callback)."""
        publisher = self._diagnostics_publisher
        if publisher is None:
            return
        params = self.params
        static = {
            "device": self.device,
            "backend": params.backend,
            "model": params.model,
            "checkpoint": params.checkpoint or "(shipped)",
            "fp16": str(params.fp16).lower(),
            "flip_test": str(params.flip_test).lower(),
            "input_topic": self._subscription.topic_name if self._subscription else "",
            "state": "active" if self._active else "inactive",
        }
        status = self.stats.report(
            self.diagnostics_status_name(),
            hardware_id=self.device,
            static=static,
            dropped=self.buffer.counts().dropped,
            active=self._active,
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        publisher.publish(array)


def main(args: list[str] | None = None) -> None:
    """`python -m pose_ros.pose_node [--ros-args ...]`: run the node until Ctrl-C."""
    run_node(PoseNode, args)


if __name__ == "__main__":
    main()
