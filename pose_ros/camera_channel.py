"""One camera of the pose node: its topics, tracker, statistics and publishing.

A `CameraChannel` owns what is per camera: the input subscription (created by the node), the
`people` / `annotated_image` / `markers` publishers under the camera's namespace, a
`pose_core.PoseTracker` (ids are per camera), the `PersonArrayBuilder` and the
`NodeStatistics` that `/diagnostics` reports for that camera. The node's single worker hands
each channel its frame and its people; `publish` does the rest.

Topics: camera "" (the default single camera) uses `image`, `people`, ...; camera "front" uses
`front/image`, `front/people`, ... (relative names: node namespaces and remapping apply).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from std_msgs.msg import Header

from pose_core.depth import keypoints_from_depth
from pose_core.keypoint_specs import KeypointSpec
from pose_core.structures import Poses
from pose_core.tracking import PoseTracker, StampWentBack, TrackerConfig
from pose_ros.depth_input import DepthPairer, camera_info_size_problem, camera_model
from pose_ros.diagnostics import NodeStatistics
from pose_ros.image_conversion import bgr_to_image
from pose_ros.marker_conversion import poses_to_markers
from pose_ros.params import NodeParams
from pose_ros.pose_conversion import PersonArrayBuilder

__all__ = ["CameraChannel", "Frame", "frame_age", "stamp_age", "stamp_seconds", "tracker_config"]


@dataclass(frozen=True)
class Frame:
    """A converted input frame waiting for the worker."""

    header: Header
    image_bgr: np.ndarray
    convert_seconds: float
    received: float = 0.0  # time.monotonic() when the callback got it


def stamp_seconds(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def stamp_age(header: Header, now_seconds: float) -> float | None:
    """Seconds from the stamp to `now_seconds` (the node's clock), or None when the stamp is
    not on that clock (zero, in the future, or an hour or more old)."""
    age = now_seconds - stamp_seconds(header)
    return age if stamp_seconds(header) > 0 and 0.0 <= age < 3600.0 else None


def frame_age(frame: Frame, now_seconds: float, now_monotonic: float) -> float:
    """Seconds since the frame was taken: from its stamp when it is on the node's clock
    (`stamp_age`), else since it was received."""
    age = stamp_age(frame.header, now_seconds)
    return age if age is not None else max(now_monotonic - frame.received, 0.0)


def tracker_config(params: NodeParams, spec: KeypointSpec) -> TrackerConfig:
    """The tracker options of the node parameters."""
    return TrackerConfig(
        keypoints=spec,
        high_score=params.track_high_score,
        low_score=params.track_low_score,
        min_hits=params.track_min_hits,
        max_misses=params.track_max_misses,
        appearance_weight=params.track_appearance_weight,
        smoothing=params.smoothing,
        min_cutoff=params.smoothing_min_cutoff,
        beta=params.smoothing_beta,
        predict_velocity=params.track_predict_velocity,
        joint_gate_speed=params.track_joint_gate_speed,
    )


@dataclass
class CameraChannel:
    """Everything the node keeps per camera (see the module docstring)."""

    name: str
    stats: NodeStatistics = field(default_factory=NodeStatistics)
    subscription: Any = None
    people_publisher: Any = None
    annotated_publisher: Any = None
    markers_publisher: Any = None
    tracker: PoseTracker | None = None
    builder: PersonArrayBuilder | None = None  # used by the worker thread only
    image_wh: tuple[int, int] | None = None
    tracker_resets: int = 0
    size_changes: int = 0
    stale_dropped: int = 0  # frames older than `max_frame_age` when the worker took them
    # depth (parameter `depth`): subscriptions and publisher made by the node
    depth: DepthPairer | None = None
    depth_subscriptions: list[Any] = field(default_factory=list)
    people_3d_publisher: Any = None
    builder_3d: PersonArrayBuilder | None = None
    depth_counts: dict[str, int] = field(default_factory=dict)
    depth_warning: str = ""  # the latest depth problem since the last diagnostics report
    depth_last_problem: str = ""  # the latest depth problem ever (a diagnostics value)
    # the depth callback and the worker write the three above while the diagnostics timer reads
    depth_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def topic(self, base: str) -> str:
        """`base` under this camera's namespace."""
        return f"{self.name}/{base}" if self.name else base

    # ------------------------------------------------------------------ tracking
    def track(self, poses: Poses, frame: Frame, params: NodeParams, spec: KeypointSpec) -> Poses:
        """Track ids (when enabled); the tracker starts over after a new image size or a time
        jump backwards (a replayed bag), each counted for diagnostics."""
        height, width = frame.image_bgr.shape[:2]
        if self.image_wh is not None and self.image_wh != (width, height):
            self.size_changes += 1
            self._reset_tracker()
        self.image_wh = (width, height)
        if not params.tracking:
            if self.tracker is not None:
                self.tracker.reset()  # kept, so that ids are never given twice on this topic
            return poses
        config = tracker_config(params, spec)
        if self.tracker is None:
            self.tracker = PoseTracker(config)
        elif self.tracker.config != config:
            self.tracker.reconfigure(config)
        # a camera that leaves its stamps unset (0): the time the frame arrived
        stamp = stamp_seconds(frame.header) or frame.received
        keep = params.track_publish_untracked
        try:
            return self.tracker.update(poses, stamp, keep_untracked=keep, image=frame.image_bgr)
        except StampWentBack:
            self._reset_tracker()
            return self.tracker.update(poses, stamp, keep_untracked=keep, image=frame.image_bgr)

    def _reset_tracker(self) -> None:
        if self.tracker is not None:
            self.tracker.reset()
            self.tracker_resets += 1

    # ------------------------------------------------------------------ publishing
    def publish(
        self,
        frame: Frame,
        poses: Poses,
        timings: dict[str, float],
        spec: KeypointSpec,
        params: NodeParams,
        now_seconds: float,
    ) -> None:
        """Publish people (and the optional outputs) of one processed frame; record stats."""
        publish_started = time.perf_counter()
        height, width = frame.image_bgr.shape[:2]
        if self.people_publisher is None:
            return
        if self.builder is None or self.builder.spec != spec:
            self.builder = PersonArrayBuilder(spec)
        # the builder reuses its message objects: publish before the next build (same thread)
        self.people_publisher.publish(self.builder.build(poses, frame.header, (width, height)))
        self._publish_optional(frame, poses, spec, params)
        stages = {
            "convert": frame.convert_seconds,
            "preprocess": timings.get("preprocess", 0.0),
            "network": timings.get("network", 0.0),
            "grouping": timings.get("grouping", 0.0),
            "publish": time.perf_counter() - publish_started,
        }
        if "age_at_start" in timings:  # the frame's age when the worker took it
            stages["age_at_start"] = timings["age_at_start"]
        age = stamp_age(frame.header, now_seconds)
        if age is not None:
            stages["total"] = age
        if self.depth is not None:
            depth_started = time.perf_counter()
            self._publish_3d(frame, poses, spec, params)
            stages["depth"] = time.perf_counter() - depth_started
        self.stats.record_processed(stages, len(poses))

    # ------------------------------------------------------------------ depth
    def count_depth(self, key: str, warning: str = "") -> None:
        """Count a depth event; with `warning`, a problem that diagnostics report once."""
        with self.depth_lock:
            self.depth_counts[key] = self.depth_counts.get(key, 0) + 1
            if warning:
                self.depth_warning = self.depth_last_problem = warning

    def take_depth_warning(self) -> str:
        """The latest depth problem since the previous call ('' if none); clears it."""
        with self.depth_lock:
            warning, self.depth_warning = self.depth_warning, ""
            return warning

    def _depth_topic(self) -> str:
        """The depth image topic as subscribed (fully qualified), else its relative name."""
        for subscription in self.depth_subscriptions:
            if subscription.topic_name.endswith("depth/image"):
                return subscription.topic_name
        return self.topic("depth/image")

    def _publish_3d(
        self, frame: Frame, poses: Poses, spec: KeypointSpec, params: NodeParams
    ) -> None:
        """people_3d and 3D markers of one frame (markers on the display plane when its depth
        cannot be used)."""
        if not self._publish_people_3d(frame, poses, spec, params):
            self._publish_markers(frame, poses, spec, params)

    def _publish_people_3d(
        self, frame: Frame, poses: Poses, spec: KeypointSpec, params: NodeParams
    ) -> bool:
        """people_3d of one frame: its depth image (nearest stamp within the tolerance) and the
        depth CameraInfo; any problem is counted (False) and the 2D output is unaffected."""
        assert self.depth is not None
        self.depth.tolerance_s = params.depth_sync_tolerance
        # depth that comes a little after its colour frame is waited for (up to the tolerance)
        reading = self.depth.match(stamp_seconds(frame.header),
                                   wait_s=params.depth_sync_tolerance)
        if reading is None:
            if self.depth.received == 0:
                warning = f"no depth image received on {self._depth_topic()} yet"
            else:
                warning = "no depth image within the sync tolerance"
            self.count_depth("depth_missing", warning)
            return False
        height, width = frame.image_bgr.shape[:2]
        if reading.depth.shape != (height, width):
            self.count_depth(
                "depth_size_mismatch",
                f"depth {reading.depth.shape[1]}x{reading.depth.shape[0]} is not aligned with "
                f"the {width}x{height} colour image",
            )
            return False
        info = self.depth.info
        if info is None:
            self.count_depth("depth_info_missing", "no depth/camera_info received")
            return False
        problem = camera_info_size_problem(info, reading.depth.shape)
        if problem:
            self.count_depth("depth_info_size_mismatch", problem)
            return False
        k, distortion, problem = camera_model(info)
        if problem:
            self.count_depth("depth_info_invalid", problem)
            return False
        try:
            positions, valid = keypoints_from_depth(
                poses.keypoints, reading.depth, k, reading.unit, distortion,
                max_offset=params.depth_max_offset,
            )
        except ValueError as error:  # input the checks above let through: counted, node stays
            self.count_depth("depth_rejected", f"depth not usable: {error}")
            return False
        if self.builder_3d is None or self.builder_3d.spec != spec:
            self.builder_3d = PersonArrayBuilder(spec)
        header = Header(stamp=frame.header.stamp, frame_id=reading.frame_id)
        message = self.builder_3d.build(poses, header, (width, height), positions, valid)
        if self.people_3d_publisher is not None:
            self.people_3d_publisher.publish(message)
        self.count_depth("depth_paired")
        self._publish_markers(frame, poses, spec, params, header, positions, valid)
        return True

    def _publish_optional(
        self, frame: Frame, poses: Poses, spec: KeypointSpec, params: NodeParams
    ) -> None:
        height, width = frame.image_bgr.shape[:2]
        annotated = self.annotated_publisher
        if (
            params.publish_annotated_image
            and annotated is not None
            and annotated.get_subscription_count() > 0
        ):
            from pose_core.visualization import draw_poses

            # the published people, all of them (person_min_score already chose them)
            drawn = draw_poses(frame.image_bgr, poses, spec, min_score=params.keypoint_min_score,
                               min_person_score=0.0)
            annotated.publish(bgr_to_image(drawn, frame.header))
        if self.depth is None:  # with depth, the 3D stage publishes the markers
            self._publish_markers(frame, poses, spec, params)

    def _publish_markers(
        self,
        frame: Frame,
        poses: Poses,
        spec: KeypointSpec,
        params: NodeParams,
        header: Header | None = None,
        positions: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        """Skeleton markers: in 3D where positions are given, else on the display plane."""
        markers = self.markers_publisher
        if not (params.publish_markers and markers is not None
                and markers.get_subscription_count()):
            return
        height, width = frame.image_bgr.shape[:2]
        markers.publish(
            poses_to_markers(
                poses,
                frame.header if header is None else header,
                (width, height),
                spec,
                min_score=params.keypoint_min_score,
                metres_per_pixel=params.marker_metres_per_pixel,
                plane_depth=params.marker_plane_depth,
                positions=positions,
                valid=valid,
            )
        )

    def diagnostics_values(self) -> dict[str, str]:
        """Per-camera events for `/diagnostics`."""
        return {
            "tracking": "on" if self.tracker is not None else "off",
            "tracks": str(self.tracker.num_tracks if self.tracker is not None else 0),
            "tracker_resets": str(self.tracker_resets),
            "image_size_changes": str(self.size_changes),
            "frames_stale": str(self.stale_dropped),
            "image_size": "" if self.image_wh is None else f"{self.image_wh[0]}x{self.image_wh[1]}",
            **{key: str(count) for key, count in sorted(self._depth_counts_copy().items())},
        }

    def _depth_counts_copy(self) -> dict[str, int | str]:
        if self.depth is None:
            return {}
        with self.depth_lock:
            return {**self.depth_counts, "depth_last_problem": self.depth_last_problem}
