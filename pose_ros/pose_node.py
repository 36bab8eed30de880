"""The perception node: camera images in, people (`pose_ros/PersonArray`) out, for one camera or
several.

Topics (all relative, so namespaces and remapping apply), per camera (parameter `cameras`;
camera "" (the default) has the names below, camera "front" the same names under `front/`):
- subscribes `image` (sensor_msgs/Image) or, with `compressed: true` or the camera's
  `camera_transports` entry `compressed`, `image/compressed` (sensor_msgs/CompressedImage);
  SensorData QoS (best effort, depth 5) that users retune through
  the standard `qos_overrides./<ns>/image.subscription.*` parameters;
- publishes `people` (PersonArray, reliable, depth 10): the input header unchanged, keypoints in
  the input image's pixels, `Person.id` the person's track id (per camera; -1 with tracking
  off); an empty `people` list when a processed frame has nobody in it;
- publishes `annotated_image` (sensor_msgs/Image bgr8) and `markers`
  (visualization_msgs/MarkerArray) only when enabled and subscribed (colours follow the ids);
- publishes `/diagnostics` (diagnostic_msgs/DiagnosticArray) every `diagnostics_period`, one
  status per camera.

Processing: each subscription callback converts the image (rejecting malformed ones with a
reason) and puts it into its camera's newest-frame slot; one worker thread takes the newest
frame of every camera that has one, runs the estimator on them as one batched call
(`predict_batch`: frames of the same size share the network), then tracks and publishes per
camera. So a slow model never builds a backlog (frames replaced while the worker is busy are
counted as dropped) and no camera waits behind another. Every input message ends as exactly one
of processed, dropped, rejected or (if the estimator raises) a processing error, all visible in
diagnostics.

Lifecycle: configure builds the estimator (`build_estimator`, pose_ros.estimator_factory) and the publishers, activate
subscribes and starts the worker, deactivate unsubscribes, cleanup releases the model. With
`auto_activate: true` (default) the node configures and activates itself at start.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from pose_core.inference.thread_policy import set_openmp_wait_policy
from pose_core.keypoint_specs import KeypointSpec
from pose_core.structures import Poses
from pose_ros.camera_channel import CameraChannel, Frame, frame_age, stamp_seconds
from pose_ros.depth_input import DepthPairer, DepthReading, depth_image_to_array
from pose_ros.diagnostics import NodeStatistics
from pose_ros.estimator_factory import Estimator, build_estimator, network_precision, resolve_device
from pose_ros.frame_buffer import FrameWorker, KeyedLatestFrames
from pose_ros.image_conversion import ImageRejected, compressed_to_bgr, image_to_bgr
from pose_ros.msg import PersonArray
from pose_ros.node_main import run_node
from pose_ros.params import NodeParams, declare_node_parameters, read_node_params

__all__ = ["PoseNode", "Estimator", "build_estimator", "resolve_device", "main"]

OUTPUT_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
# Parameters whose change needs a new estimator (the others are read per frame).
_ESTIMATOR_FIELDS = (
    "flip_test",
    "flip_scale",
    "scales",
    "detection_threshold",
    "tag_threshold",
    "max_people",
    "refine",
    "person_min_score",  # also the estimator's refine_min_score
    "max_input_size",
    "dem_mode",
)


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
        # the camera list is read-only: fixed for the node's life
        self.channels = [CameraChannel(name) for name in self.params.cameras]
        self._channel = {channel.name: channel for channel in self.channels}
        self.buffer: KeyedLatestFrames[Frame] = KeyedLatestFrames(list(self._channel))
        self._worker = FrameWorker(self.buffer, self._process, self._on_worker_error, "pose",
                                   cpus=self.params.worker_cpu_set())
        self._apply_openmp_wait_policy()
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

    @property
    def stats(self) -> NodeStatistics:
        """The statistics of the first (or only) camera."""
        return self.channels[0].stats

    def _apply_openmp_wait_policy(self) -> None:
        policy = self.params.omp_wait_policy
        if not set_openmp_wait_policy(policy):
            self.get_logger().warning(
                f"omp_wait_policy '{policy}' not applied: torch was loaded before the node with "
                f"OMP_WAIT_POLICY='{os.environ.get('OMP_WAIT_POLICY', '')}'; set the variable "
                "in the environment of the process (the launch file does)"
            )

    @property
    def keypoint_spec(self) -> KeypointSpec | None:
        """The keypoint layout of the loaded model (None before configure)."""
        with self._estimator_lock:
            return None if self._estimator is None else self._estimator.keypoint_spec

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
            for channel in self.channels:  # the node stays up; diagnostics count the failure
                channel.stats.record_error(f"configure: {type(error).__name__}: {error}")
            if self._diagnostics_publisher is None:
                self._diagnostics_publisher = self.create_publisher(
                    DiagnosticArray, "/diagnostics", OUTPUT_QOS
                )
            self.publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        with self._estimator_lock:
            self._estimator, self._estimator_stale = estimator, False
        self.get_logger().info(
            f"model {self.params.model} on {self.device} "
            f"({self.params.checkpoint or 'shipped weights'}) loaded in "
            f"{time.monotonic() - started:.2f} s"
        )
        for channel in self.channels:
            channel.people_publisher = self.create_lifecycle_publisher(
                PersonArray, channel.topic("people"), OUTPUT_QOS
            )
            channel.annotated_publisher = self.create_lifecycle_publisher(
                Image, channel.topic("annotated_image"), OUTPUT_QOS
            )
            channel.markers_publisher = self.create_lifecycle_publisher(
                MarkerArray, channel.topic("markers"), OUTPUT_QOS
            )
            if self.params.depth:
                channel.depth = DepthPairer(self.params.depth_sync_tolerance)
                channel.people_3d_publisher = self.create_lifecycle_publisher(
                    PersonArray, channel.topic("people_3d"), OUTPUT_QOS
                )
        if self._diagnostics_publisher is None:  # made by a failed configure before
            self._diagnostics_publisher = self.create_publisher(
                DiagnosticArray, "/diagnostics", OUTPUT_QOS
            )
        self._diagnostics_timer = self.create_timer(
            self.params.diagnostics_period, self.publish_diagnostics
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the camera and start the worker."""
        for index, channel in enumerate(self.channels):
            message_type, topic = (
                (CompressedImage, "image/compressed") if self.params.camera_is_compressed(index)
                else (Image, "image")
            )
            channel.subscription = self.create_subscription(
                message_type,
                channel.topic(topic),
                lambda msg, name=channel.name: self._on_image(name, msg),
                qos_profile_sensor_data,
                qos_overriding_options=QoSOverridingOptions.with_default_policies(),
            )
        if self.params.depth:
            self._subscribe_depth()
        self._worker.start()
        self._active = True
        for channel in self.channels:
            self.get_logger().info(
                f"active: {channel.subscription.topic_name} -> {channel.topic('people')}"
            )
        return super().on_activate(state)

    def _subscribe_depth(self) -> None:
        for channel in self.channels:
            channel.depth_subscriptions = [
                self.create_subscription(
                    Image, channel.topic("depth/image"),
                    lambda msg, name=channel.name: self._on_depth(name, msg),
                    qos_profile_sensor_data,
                ),
                self.create_subscription(
                    CameraInfo, channel.topic("depth/camera_info"),
                    lambda msg, name=channel.name: self._on_depth_info(name, msg),
                    qos_profile_sensor_data,
                ),
            ]

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

    def stop_processing(self) -> None:
        """Stop the worker thread (waiting for the frame in progress) without any ROS call:
        for a process whose context is already shut down (Ctrl-C)."""
        self._active = False
        self._worker.stop(timeout=None)
        self.buffer.clear()

    def _stop_input(self) -> None:
        self._active = False
        for channel in self.channels:
            if channel.subscription is not None:
                self.destroy_subscription(channel.subscription)
                channel.subscription = None
            for subscription in channel.depth_subscriptions:
                self.destroy_subscription(subscription)
            channel.depth_subscriptions = []
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
        for channel in self.channels:
            for name in ("people_publisher", "annotated_publisher", "markers_publisher",
                         "people_3d_publisher"):
                publisher = getattr(channel, name)
                if publisher is not None:
                    self.destroy_lifecycle_publisher(publisher)
                    setattr(channel, name, None)
            if channel.tracker is not None:
                channel.tracker.reset()  # kept: ids are never given twice on a topic
        if self._diagnostics_publisher is not None:
            self.destroy_publisher(self._diagnostics_publisher)
            self._diagnostics_publisher = None
        with self._estimator_lock:
            self._estimator = None

    def destroy_node(self) -> None:
        """Stop the worker thread before the node goes away."""
        # A node whose constructor raised (invalid parameters) is still destroyed by its
        # context at shutdown: it has no channels or worker yet, only the rclpy node to free.
        if hasattr(self, "_worker"):
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
    def _on_image(self, camera: str, msg: Image | CompressedImage) -> None:
        """Subscription callback: count, convert (or reject), hand over to the worker."""
        stats = self._channel[camera].stats
        stats.record_received()
        started = time.perf_counter()
        try:
            if isinstance(msg, CompressedImage):
                image_bgr = compressed_to_bgr(msg, self.params.max_image_pixels)
            else:
                image_bgr = image_to_bgr(msg, self.params.max_image_pixels)
        except ImageRejected as rejection:
            stats.record_rejected(rejection.reason)
            where = f" ({camera})" if camera else ""
            self.get_logger().warning(
                f"image rejected{where}: {rejection.reason}", throttle_duration_sec=5.0
            )
            return
        self.buffer.put(camera, Frame(msg.header, image_bgr, time.perf_counter() - started,
                                      time.monotonic()))

    def _on_depth(self, camera: str, msg: Image) -> None:
        """Depth callback: convert (or count the rejection) and keep it for pairing."""
        channel = self._channel[camera]
        if channel.depth is None:
            return
        try:
            depth, unit = depth_image_to_array(msg)
        except ImageRejected as rejection:
            channel.count_depth("depth_rejected", f"depth image rejected: {rejection.reason}")
            return
        channel.depth.add(DepthReading(stamp_seconds(msg.header), depth, unit,
                                       msg.header.frame_id))

    def _on_depth_info(self, camera: str, msg: CameraInfo) -> None:
        channel = self._channel[camera]
        if channel.depth is not None:
            channel.depth.set_info(msg)

    def _process(self, frames: dict[str, Frame]) -> None:
        """Worker: estimate the newest frame of every ready camera at once, then track and
        publish per camera."""
        estimator = self._current_estimator()
        if estimator is None or not self._active:
            return
        params = self.params
        frames, ages = self._fresh(frames, params.max_frame_age)
        if not frames:
            return
        results = self._estimate(estimator, frames)
        for camera, (poses, timings) in results.items():
            if not self.context.ok():
                return  # shut down (Ctrl-C) while the network ran: nothing can be published
            now = self.get_clock().now().nanoseconds * 1e-9
            channel = self._channel[camera]
            try:
                # the official parser keeps every person (COCO AP needs them); a robot does not
                # want the low-score fragments it also finds on empty frames
                poses = poses.with_min_score(params.person_min_score)
                poses = channel.track(poses, frames[camera], params, estimator.keypoint_spec)
                channel.publish(frames[camera], poses, {**timings, "age_at_start": ages[camera]},
                                estimator.keypoint_spec, params, now)
            except Exception as error:  # noqa: BLE001 - one camera's failure spares the others
                self._record_error(camera, error)

    def _fresh(
        self, frames: dict[str, Frame], max_age: float
    ) -> tuple[dict[str, Frame], dict[str, float]]:
        """The frames not older than `max_age` seconds (0: all) and every frame's age when the
        worker took it; the stale ones are counted on their camera and never processed."""
        now, monotonic = self.get_clock().now().nanoseconds * 1e-9, time.monotonic()
        ages = {camera: frame_age(frame, now, monotonic) for camera, frame in frames.items()}
        if max_age <= 0:
            return frames, ages
        fresh = {}
        for camera, frame in frames.items():
            if ages[camera] > max_age:
                self._channel[camera].stale_dropped += 1
            else:
                fresh[camera] = frame
        return fresh, ages

    def _estimate(
        self, estimator: Estimator, frames: dict[str, Frame]
    ) -> dict[str, tuple[Poses, dict[str, float]]]:
        """People and stage timings per camera: one batched call, or, when it fails (or the
        estimator has no batch call), one call per camera so that a bad frame fails only its
        own camera."""
        batch = getattr(estimator, "predict_batch", None)
        if len(frames) > 1 and batch is not None:
            try:
                people = batch([frame.image_bgr for frame in frames.values()])
                timings = dict(estimator.last_timings)
                return dict(zip(frames, ((p, timings) for p in people)))
            except Exception:  # noqa: BLE001 - retried per camera below, errors counted there
                pass
        results = {}
        for camera, frame in frames.items():
            try:
                results[camera] = (estimator(frame.image_bgr), dict(estimator.last_timings))
            except Exception as error:  # noqa: BLE001 - counted for that camera
                self._record_error(camera, error)
        return results

    def _on_worker_error(self, error: BaseException) -> None:
        self._record_error(self.channels[0].name, error)

    def _record_error(self, camera: str, error: BaseException) -> None:
        message = f"{type(error).__name__}: {error}"
        self._channel[camera].stats.record_error(message)
        if not self.context.ok():
            return  # logging through a shut-down context aborts the process
        where = f" ({camera})" if camera else ""
        self.get_logger().error(f"processing failed{where}: {message}", throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ diagnostics
    def diagnostics_status_name(self, camera: str = "") -> str:
        name = f"{self.get_name()}: pose estimation"
        return f"{name} ({camera})" if camera else name

    def publish_diagnostics(self) -> None:
        """Publish one DiagnosticArray, one status per camera (timer callback)."""
        publisher = self._diagnostics_publisher
        if publisher is None:
            return
        params = self.params
        statuses = []
        for channel in self.channels:
            static = {
                "device": self.device,
                "backend": params.backend,
                "model": params.model,
                "checkpoint": params.checkpoint or "(shipped)",
                "fp16": str(params.fp16).lower(),
                "precision": network_precision(params, self.device),
                "flip_test": str(params.flip_test).lower(),
                "flip_scale": f"{params.effective_flip_scale():g}",
                "input_topic": channel.subscription.topic_name if channel.subscription else "",
                "state": "active" if self._active else "inactive",
                **channel.diagnostics_values(),
            }
            status = channel.stats.report(
                self.diagnostics_status_name(channel.name),
                hardware_id=self.device,
                static=static,
                dropped=self.buffer.counts(channel.name).dropped,
                active=self._active,
            )
            depth_warning = channel.take_depth_warning()
            if depth_warning:
                # 2D output goes on; the 3D stage says what is wrong
                if status.level == DiagnosticStatus.OK:
                    status.level = DiagnosticStatus.WARN
                    status.message = depth_warning
                self.get_logger().warning(
                    f"{channel.topic('people_3d')}: {depth_warning}", throttle_duration_sec=10.0
                )
            statuses.append(status)
        array = DiagnosticArray(status=statuses)
        array.header.stamp = self.get_clock().now().to_msg()
        publisher.publish(array)


def main(args: list[str] | None = None) -> None:
    """`python -m pose_ros.pose_node [--ros-args ...]`: run the node until Ctrl-C."""
    run_node(PoseNode, args)


if __name__ == "__main__":
    main()
