"""The pose node's parameter table: one `ParameterSpec` (description, range, read-only flag)
per `NodeParams` field, in `PARAMETER_SPECS`; `pose_ros.params` declares them on the node."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_CAMERAS", "MAX_IMAGE_PIXELS_LIMIT", "ParameterSpec", "PARAMETER_SPECS"]

MAX_IMAGE_PIXELS_LIMIT = 7680 * 4320
MAX_CAMERAS = 16


@dataclass(frozen=True)
class ParameterSpec:
    """Declaration of one ROS parameter.

    Attributes:
        name: parameter name (also the NodeParams field).
        description: shown by `ros2 param describe`.
        read_only: True when a change needs a reconfigure (model, device, subscription...).
        float_range / integer_range: (from, to, step) enforced by rclpy at set time.
        additional_constraints: free text for the descriptor.
    """

    name: str
    description: str
    read_only: bool = False
    float_range: tuple[float, float, float] | None = None
    integer_range: tuple[int, int, int] | None = None
    additional_constraints: str = ""
    string_array: bool = False


PARAMETER_SPECS: tuple[ParameterSpec, ...] = (
    ParameterSpec("model", "pose_core model name (pose_core.MODEL_NAMES)", read_only=True),
    ParameterSpec(
        "checkpoint",
        "checkpoint file; '' = the shipped weights of the default model",
        read_only=True,
    ),
    ParameterSpec(
        "device", "compute device", read_only=True, additional_constraints="auto|cpu|cuda[:N]"
    ),
    ParameterSpec(
        "backend",
        "inference backend (auto: torch on CUDA, onnxruntime on the CPU; tensorrt: an engine "
        "built by pose-export tensorrt)",
        read_only=True,
        additional_constraints="auto|torch|onnxruntime|tensorrt",
    ),
    ParameterSpec("fp16", "half-precision inference (CUDA only)", read_only=True),
    ParameterSpec(
        "precision",
        "onnxruntime graph on the CPU: int8 (statically quantized, calibrated on synthetic "
        "frames) or fp32; auto: int8 for the shipped model (its accuracy measured equal), fp32 "
        "for any other checkpoint",
        read_only=True,
        additional_constraints="auto|fp32|int8",
    ),
    ParameterSpec("flip_test", "average with the horizontally flipped image (a second pass)"),
    ParameterSpec(
        "flip_scale",
        "size of the flip test's mirrored input relative to the normal one (1.0: the official "
        "flip test; 0.625: 0.39x the pixels, a second view at another scale); models with "
        "offset outputs (Double Embedding) always run 1.0",
        float_range=(0.25, 1.0, 0.0),
    ),
    ParameterSpec(
        "scales",
        "test-time scales (multi-scale inference), 1 to 4 values in [0.25, 4], with 1.0 "
        "among them when more than one",
        additional_constraints="1..4 values in [0.25, 4.0], including 1.0 if several",
    ),
    ParameterSpec(
        "detection_threshold", "minimum heatmap peak of a joint", float_range=(0.0, 1.0, 0.0)
    ),
    ParameterSpec(
        "tag_threshold",
        "maximum tag distance to join a joint to a person",
        float_range=(0.0, 100.0, 0.0),
    ),
    ParameterSpec("max_people", "maximum people per image", integer_range=(1, 100, 1)),
    ParameterSpec(
        "refine",
        "after grouping, look for each published person's missing joints near its tags (the "
        "official test step); off saves a little grouping time per frame",
    ),
    ParameterSpec(
        "max_input_size",
        "network input size: the square size of bottom-up models (e.g. 256, 512), the width "
        "of top-down ones; multiple of 32; 0 = the model's own",
        integer_range=(0, 2048, 32),
    ),
    ParameterSpec(
        "dem_mode",
        "Double Embedding models only: decoder mode (paper: MRM and the documented fixes; "
        "release: the released behaviour)",
        additional_constraints="paper|release",
    ),
    ParameterSpec(
        "compressed",
        "subscribe to image/compressed (sensor_msgs/CompressedImage) instead of image",
        read_only=True,
    ),
    ParameterSpec(
        "max_image_pixels",
        "images with more pixels are rejected before conversion",
        integer_range=(1, MAX_IMAGE_PIXELS_LIMIT, 1),
    ),
    ParameterSpec(
        "publish_annotated_image", "publish annotated_image (only while it has subscribers)"
    ),
    ParameterSpec("publish_markers", "publish markers (only while it has subscribers)"),
    ParameterSpec(
        "person_min_score",
        "people whose score (mean joint value) is below this are not published",
        float_range=(0.0, 1.0, 0.0),
    ),
    ParameterSpec(
        "keypoint_min_score",
        "joints at or below this score are not drawn",
        float_range=(0.0, 1.0, 0.0),
    ),
    ParameterSpec(
        "marker_metres_per_pixel",
        "marker display scale: metres per image pixel",
        float_range=(1e-5, 1.0, 0.0),
    ),
    ParameterSpec(
        "marker_plane_depth",
        "distance of the marker display plane from the camera, metres",
        float_range=(0.01, 100.0, 0.0),
    ),
    ParameterSpec(
        "diagnostics_period",
        "seconds between /diagnostics messages",
        read_only=True,
        float_range=(0.1, 60.0, 0.0),
    ),
    ParameterSpec(
        "auto_activate", "configure and activate the lifecycle node at start", read_only=True
    ),
    ParameterSpec(
        "cameras",
        "camera namespaces served by this node, e.g. [front, left]: each subscribes "
        "<camera>/image (or <camera>/image/compressed) and publishes <camera>/people, "
        "<camera>/annotated_image and <camera>/markers; frames ready together run as one "
        "batched network call. '' = no namespace (image, people, ...), the default ['']",
        read_only=True,
        additional_constraints="1 to 16 distinct relative names or ''",
        string_array=True,
    ),
    ParameterSpec(
        "camera_transports",
        "what each camera of `cameras` sends: raw (sensor_msgs/Image on <camera>/image) or "
        "compressed (sensor_msgs/CompressedImage on <camera>/image/compressed); one entry for "
        "every camera or one per camera, e.g. [raw, compressed]; compressed: true means all",
        read_only=True,
        additional_constraints="raw|compressed, 1 entry or one per camera",
        string_array=True,
    ),
    ParameterSpec("tracking", "persistent person ids (pose_core.PoseTracker) in Person.id"),
    ParameterSpec(
        "track_high_score",
        "people scoring at least this are matched first and may start a track",
        float_range=(0.0, 1.0, 0.0),
    ),
    ParameterSpec(
        "track_low_score",
        "people scoring below this are not tracked; between the two they only continue tracks",
        float_range=(0.0, 1.0, 0.0),
    ),
    ParameterSpec(
        "track_min_hits",
        "frames in a row a new person must be seen before it gets an id (before that it is "
        "published with id -1 when track_publish_untracked, else not at all)",
        integer_range=(1, 100, 1),
    ),
    ParameterSpec(
        "track_max_misses",
        "frames a tracked person may be missing before its id is dropped",
        integer_range=(0, 1000, 1),
    ),
    ParameterSpec(
        "track_appearance_weight",
        "weight of the appearance cue (colours along each person's limbs) in matching people "
        "to tracks; 0: keypoints and boxes only",
        float_range=(0.0, 1.0, 0.0),
    ),
    ParameterSpec(
        "track_publish_untracked",
        "also publish people without an id yet (Person.id -1): new people from their first "
        "frame, low-score people that continue no track",
    ),
    ParameterSpec(
        "track_predict_velocity",
        "move each track's joints by their last velocity before matching (constant velocity)",
    ),
    ParameterSpec(
        "track_joint_gate_speed",
        "a tracked person's joint that moved farther than this many person sizes per second "
        "since its last accepted place (a joint leaping to another person) is published with "
        "score 0, for at most 2 frames in a row; 0: off",
        float_range=(0.0, 100.0, 0.0),
    ),
    ParameterSpec("smoothing", "One-Euro smoothing of each tracked person's keypoints"),
    ParameterSpec(
        "smoothing_min_cutoff",
        "One-Euro cut-off frequency at rest, Hz (lower = smoother, more lag)",
        float_range=(0.01, 100.0, 0.0),
    ),
    ParameterSpec(
        "smoothing_beta",
        "One-Euro speed coefficient (higher = less lag in fast motion)",
        float_range=(0.0, 10.0, 0.0),
    ),
    ParameterSpec(
        "depth",
        "3D keypoints from an aligned depth camera: subscribe depth/image (16UC1 mm or 32FC1 m) "
        "and depth/camera_info per camera, publish people_3d (header: colour stamp, depth "
        "frame_id)",
        read_only=True,
    ),
    ParameterSpec(
        "depth_sync_tolerance",
        "largest time difference (s) between a colour frame and the depth image paired to it",
        float_range=(0.0, 1.0, 0.0),
    ),
    ParameterSpec(
        "max_frame_age",
        "frames older than this (s, from their stamp, or since they arrived when the stamp is "
        "not on the node's clock) when the worker takes them are dropped unprocessed and "
        "counted (frames_stale); 0 = never",
        float_range=(0.0, 60.0, 0.0),
    ),
    ParameterSpec(
        "network_threads",
        "intra-op CPU threads of the network (onnxruntime session, or torch during a torch "
        "forward); 0 = the library's default (all cores)",
        read_only=True, integer_range=(0, 256, 1),
    ),
    ParameterSpec(
        "network_inter_op_threads",
        "onnxruntime inter-op threads; 0 = its default",
        read_only=True, integer_range=(0, 256, 1),
    ),
    ParameterSpec(
        "grouping_threads",
        "torch intra-op CPU threads outside the network (pre-processing, flip merge, grouping); "
        "0 = torch's default (all cores)",
        read_only=True, integer_range=(0, 256, 1),
    ),
    ParameterSpec(
        "omp_wait_policy",
        "OpenMP wait policy of torch's threads (passive: idle threads sleep instead of "
        "spinning); read when torch loads, so the node sets OMP_WAIT_POLICY only when it "
        "starts before torch is imported and otherwise reports the value in effect; '' = "
        "leave the environment alone",
        read_only=True, additional_constraints="passive|active|''",
    ),
    ParameterSpec(
        "worker_cpus",
        "pin the processing thread to these CPUs ('1', '0,1'); '' = not pinned",
        read_only=True,
    ),
    ParameterSpec(
        "executor_threads",
        "threads of the executor that runs the callbacks (image conversion, diagnostics) when "
        "the node runs alone (pose_node executable); inference always runs on its own worker "
        "thread, so callbacks never wait behind it",
        read_only=True, integer_range=(1, 16, 1),
    ),
    ParameterSpec(
        "depth_max_offset",
        "joints whose depth is further than this (m) from their person's median are rejected",
        float_range=(0.01, 10.0, 0.0),
    ),
)
