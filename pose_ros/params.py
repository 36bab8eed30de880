"""Parameters of the pose node: the declaration table (`pose_ros.parameter_specs`), one frozen
validated `NodeParams`.

Every parameter is declared by `declare_node_parameters` with a `ParameterDescriptor`
(description, range, read-only flag). Read-only parameters change what is loaded or subscribed
(model, device, topic type...): set them in the YAML file / command line and reconfigure. The
others may be changed at run time; `validate_parameter_update` is installed as the node's
on-set-parameters callback, so an invalid value is refused at set time with a reason.

Defaults are also the values of `config/pose_node.yaml`; those of the grouping options
(detection_threshold, tag_threshold, max_people, refine) come from
`pose_core.grouping.GroupingParams`, and `NodeParams.grouping_params()` gives the record the
estimator is built with.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from pose_core.default_model import DEFAULT_MODEL
from pose_core.grouping import GroupingParams
from pose_core.grouping.options import GROUPING_DEFAULTS, grouping_params_from
from pose_core.inference.thread_policy import ThreadPolicy
from pose_ros.parameter_specs import MAX_CAMERAS, PARAMETER_SPECS, ParameterSpec

__all__ = [
    "NodeParams",
    "ParameterSpec",
    "PARAMETER_SPECS",
    "DEVICES",
    "BACKENDS",
    "IMPLEMENTED_BACKENDS",
    "declare_node_parameters",
    "read_node_params",
    "validate_parameter_update",
]

DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt")  # pose_core backend_factory names
PRECISIONS = ("auto", "fp32", "int8")  # of the onnxruntime graph; fp16 is its own parameter
IMPLEMENTED_BACKENDS = BACKENDS
_CUDA_INDEX = re.compile(r"^cuda:\d+$")
_CAMERA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class NodeParams:
    """The validated parameters of one pose node (see `PARAMETER_SPECS` for the meaning)."""

    model: str = DEFAULT_MODEL
    checkpoint: str = ""
    device: str = "auto"
    backend: str = "auto"
    fp16: bool = False
    precision: str = "auto"
    # a second, reduced mirrored pass: far fewer wrong-person edges at the frame rate of one
    # fp32 pass once the network runs int8 (docs/training_synthetic.md, "A reduced flip test")
    flip_test: bool = True
    flip_scale: float = 0.625
    scales: tuple[float, ...] = (1.0,)
    detection_threshold: float = GROUPING_DEFAULTS.detection_threshold
    tag_threshold: float = GROUPING_DEFAULTS.tag_threshold
    max_people: int = GROUPING_DEFAULTS.max_people
    refine: bool = GROUPING_DEFAULTS.refine
    person_min_score: float = 0.25
    max_input_size: int = 0
    dem_mode: str = "paper"
    compressed: bool = False
    max_image_pixels: int = 4096 * 2304
    publish_annotated_image: bool = True
    publish_markers: bool = True
    keypoint_min_score: float = 0.1
    marker_metres_per_pixel: float = 0.002
    marker_plane_depth: float = 1.0
    diagnostics_period: float = 1.0
    auto_activate: bool = True
    # "" is the camera without a namespace (topics image, people, ...); a params file cannot
    # hold an empty list (rcl gives it no element type), so the default is [""]
    cameras: tuple[str, ...] = ("",)
    # per camera (one entry for all, or one per camera): "raw" (Image) or "compressed"
    camera_transports: tuple[str, ...] = ("raw",)
    tracking: bool = True
    track_high_score: float = 0.5
    track_low_score: float = 0.1
    track_min_hits: int = 2
    track_max_misses: int = 15
    track_appearance_weight: float = 0.6
    track_publish_untracked: bool = True
    track_predict_velocity: bool = True
    track_joint_gate_speed: float = 3.0
    smoothing: bool = False
    smoothing_min_cutoff: float = 0.5
    smoothing_beta: float = 0.05
    depth: bool = False
    depth_sync_tolerance: float = 0.05
    depth_max_offset: float = 0.5
    max_frame_age: float = 0.0
    # thread and scheduling policy: defaults chosen by training/benchmark_contention.py
    # (docs/benchmark_node.md); test/ros/test_thread_policy.py holds them to that choice
    network_threads: int = 2
    network_inter_op_threads: int = 1
    grouping_threads: int = 1
    omp_wait_policy: str = "passive"
    worker_cpus: str = ""
    executor_threads: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        object.__setattr__(self, "cameras", tuple(str(c) for c in self.cameras))
        object.__setattr__(self, "camera_transports",
                           tuple(str(t) for t in self.camera_transports))
        problem = self.problem()
        if problem:
            raise ValueError(problem)

    def problem(self) -> str:
        """The first reason these values are invalid, or '' when they are valid."""
        # imported here: pose_core.models imports torch, which params users may not need yet
        from pose_core.models import MODEL_NAMES, model_info

        if self.model not in MODEL_NAMES:
            return f"model '{self.model}' is unknown; expected one of {', '.join(MODEL_NAMES)}"
        if model_info(self.model).decoder == "top_down_heatmap":
            return (
                f"model '{self.model}' is top-down: it needs a box per person and this node "
                "has no person detector; use a bottom-up model (higherhrnet_*, ce_*, dem_*)"
            )
        if not self.checkpoint and self.model != DEFAULT_MODEL:
            return (
                f"model '{self.model}' needs a checkpoint (the shipped weights are for "
                f"{DEFAULT_MODEL} only)"
            )
        if self.checkpoint and not os.path.isfile(self.checkpoint):
            return f"checkpoint '{self.checkpoint}' is not a file"
        if self.device not in DEVICES and not _CUDA_INDEX.match(self.device):
            return f"device '{self.device}' must be one of {'|'.join(DEVICES)} or cuda:<index>"
        if self.backend not in BACKENDS:
            return f"backend '{self.backend}' must be one of {'|'.join(BACKENDS)}"
        if self.backend == "tensorrt" and self.device == "cpu":
            return "backend tensorrt needs a CUDA device (device is cpu)"
        if self.precision not in PRECISIONS:
            return f"precision '{self.precision}' must be one of {'|'.join(PRECISIONS)}"
        if self.precision == "int8" and self.backend in ("torch", "tensorrt"):
            return f"precision int8 is an onnxruntime graph; backend is {self.backend}"
        if self.fp16 and self.device == "cpu":
            return "fp16 needs a CUDA device (device is cpu)"
        if not self.scales or len(self.scales) > 4:
            return f"scales must have 1 to 4 entries, got {len(self.scales)}"
        if any(not 0.25 <= s <= 4.0 for s in self.scales):
            return f"scales must lie in [0.25, 4.0], got {list(self.scales)}"
        if len(self.scales) > 1 and 1.0 not in self.scales:
            return "multi-scale inference needs 1.0 among the scales (tags come from it)"
        if not 0.25 <= self.flip_scale <= 1.0:
            return f"flip_scale must lie in [0.25, 1.0], got {self.flip_scale}"
        if self.max_input_size and (self.max_input_size % 32 or self.max_input_size < 64):
            return f"max_input_size must be 0 or a multiple of 32 >= 64, got {self.max_input_size}"
        if self.dem_mode not in ("paper", "release"):
            return f"dem_mode must be paper|release, got '{self.dem_mode}'"
        return self._camera_problem() or self._tracking_problem() or self._thread_problem()

    def _thread_problem(self) -> str:
        if self.omp_wait_policy not in ("passive", "active", ""):
            return f"omp_wait_policy must be passive|active|'', got '{self.omp_wait_policy}'"
        try:
            self.worker_cpu_set()
        except ValueError:
            return f"worker_cpus must be '' or CPU indices like '1' or '0,1', got " \
                   f"'{self.worker_cpus}'"
        return ""

    def worker_cpu_set(self) -> tuple[int, ...]:
        """The CPUs of `worker_cpus` ('' -> (): not pinned)."""
        cpus = tuple(int(c) for c in self.worker_cpus.replace(" ", "").split(",") if c)
        if any(c < 0 for c in cpus):
            raise ValueError("negative CPU index")
        return cpus

    def effective_flip_scale(self) -> float:
        """The mirrored pass's size the estimator runs: `flip_scale`, or 1.0 (the full-size
        flip) for a model that cannot take a reduced one (offset outputs: Double Embedding)."""
        from pose_core.inference.estimator import reduced_flip_supported
        from pose_core.models import model_info

        return self.flip_scale if reduced_flip_supported(model_info(self.model)) else 1.0

    def thread_policy(self) -> ThreadPolicy:
        """The estimator's `ThreadPolicy` from the thread parameters."""
        return ThreadPolicy(self.network_threads, self.network_inter_op_threads,
                            self.grouping_threads, self.worker_cpu_set())

    def _camera_problem(self) -> str:
        if not 1 <= len(self.cameras) <= MAX_CAMERAS:
            return f"cameras: 1 to {MAX_CAMERAS} names, got {len(self.cameras)}"
        if len(set(self.cameras)) != len(self.cameras):
            return f"cameras must be distinct, got {list(self.cameras)}"
        for camera in self.cameras:
            if camera and not _CAMERA_NAME.match(camera):
                return (f"camera '{camera}' is not a relative ROS name (letters, digits, _ and /"
                        ", not starting with a digit or /)")
        if len(self.camera_transports) not in (1, len(self.cameras)):
            return (f"camera_transports: one entry for all cameras or one per camera "
                    f"({len(self.cameras)}), got {len(self.camera_transports)}")
        if any(t not in ("raw", "compressed") for t in self.camera_transports):
            return f"camera_transports entries must be raw|compressed, got " \
                   f"{list(self.camera_transports)}"
        return ""

    def _tracking_problem(self) -> str:
        if not 0.0 <= self.track_low_score <= self.track_high_score <= 1.0:
            return "tracking needs 0 <= track_low_score <= track_high_score <= 1"
        return ""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> NodeParams:
        """Build from a name -> value mapping (unknown names are refused).

        Raises:
            ValueError: with the reason, for an unknown name or an invalid value.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown parameters: {', '.join(unknown)}")
        return cls(**{name: values[name] for name in names if name in values})

    def grouping_params(self) -> GroupingParams:
        """The grouping options as one record (fields without a parameter at their defaults).

        `refine_min_score` is `person_min_score`: the node drops people below it, and refine
        never changes a person's score, so refining them would be wasted work.
        """
        return grouping_params_from(self, refine_min_score=self.person_min_score)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for arrays), as a YAML file or a launch override holds them."""
        values = asdict(self)
        values["scales"] = list(self.scales)
        values["cameras"] = list(self.cameras)
        values["camera_transports"] = list(self.camera_transports)
        return values

    def camera_is_compressed(self, index: int) -> bool:
        """Whether camera `index` of `cameras` sends CompressedImage (`compressed` or its
        `camera_transports` entry)."""
        transports = self.camera_transports
        transport = transports[0] if len(transports) == 1 else transports[index]
        return self.compressed or transport == "compressed"


def _descriptor(spec: ParameterSpec, default: Any) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(
        name=spec.name,
        description=spec.description,
        read_only=spec.read_only,
        additional_constraints=spec.additional_constraints,
    )
    if spec.string_array:
        descriptor.type = ParameterType.PARAMETER_STRING_ARRAY
    elif isinstance(default, bool):
        descriptor.type = ParameterType.PARAMETER_BOOL
    elif isinstance(default, int):
        descriptor.type = ParameterType.PARAMETER_INTEGER
    elif isinstance(default, float):
        descriptor.type = ParameterType.PARAMETER_DOUBLE
    elif isinstance(default, str):
        descriptor.type = ParameterType.PARAMETER_STRING
    else:
        descriptor.type = ParameterType.PARAMETER_DOUBLE_ARRAY
    if spec.float_range is not None:
        low, high, step = spec.float_range
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=low, to_value=high, step=step)
        ]
    if spec.integer_range is not None:
        low, high, step = spec.integer_range
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=step)]
    return descriptor


def declare_node_parameters(node: Node, defaults: NodeParams | None = None) -> NodeParams:
    """Declare every parameter of `PARAMETER_SPECS` on `node` and return the validated values.

    Values given as overrides (YAML file, command line) replace the defaults. Also installs
    `validate_parameter_update` as an on-set-parameters callback.

    Raises:
        ValueError: when the initial values are invalid (the reason says which).
    """
    defaults = defaults if defaults is not None else NodeParams()
    default_values = defaults.to_dict()
    for spec in PARAMETER_SPECS:
        default = default_values[spec.name]
        node.declare_parameter(spec.name, default, _descriptor(spec, default))
    node.add_on_set_parameters_callback(
        lambda parameters: validate_parameter_update(node, parameters)
    )
    return read_node_params(node)


_ARRAYS = ("scales", "cameras", "camera_transports")


def _current_values(node: Node) -> dict[str, Any]:
    values = {}
    for spec in PARAMETER_SPECS:
        value = node.get_parameter(spec.name).value
        values[spec.name] = tuple(value) if spec.name in _ARRAYS else value
    return values


def read_node_params(node: Node) -> NodeParams:
    """The node's current parameter values, validated.

    Raises:
        ValueError: with the reason when they are invalid.
    """
    return NodeParams.from_mapping(_current_values(node))


def validate_parameter_update(
    node: Node, parameters: Iterable[Parameter]
) -> SetParametersResult:
    """on-set-parameters callback: accept the change only if the resulting NodeParams is valid."""
    values = _current_values(node)
    names = {spec.name for spec in PARAMETER_SPECS}
    for parameter in parameters:
        if parameter.name not in names:
            continue  # e.g. qos_overrides.*, use_sim_time: not ours
        value = parameter.value
        values[parameter.name] = tuple(value) if parameter.name in _ARRAYS else value
    try:
        NodeParams.from_mapping(values)
    except (ValueError, TypeError) as error:
        return SetParametersResult(successful=False, reason=str(error))
    return SetParametersResult(successful=True)
