"""Parameters: descriptors, YAML defaults, validation at set time with a reason (real node)."""

from __future__ import annotations

from pathlib import Path

import pytest
import rclpy
from rclpy.node import Node
from rclpy.parameter import (
    Parameter,
    parameter_dict_from_yaml_file,
    parameter_value_to_python,
)

from pose_ros.params import (
    PARAMETER_SPECS,
    NodeParams,
    declare_node_parameters,
    read_node_params,
)

pytestmark = pytest.mark.ros

REPO_ROOT = Path(__file__).resolve().parents[2]


def _node(context: rclpy.Context, overrides: list[Parameter] | None = None) -> Node:
    return Node("pose_node", context=context, parameter_overrides=overrides or [])


def test_every_parameter_is_declared_with_a_description(ros_context: rclpy.Context) -> None:
    node = _node(ros_context)
    params = declare_node_parameters(node)
    assert params == NodeParams()
    for spec in PARAMETER_SPECS:
        descriptor = node.describe_parameter(spec.name)
        assert descriptor.description, spec.name
        assert descriptor.read_only == spec.read_only
    assert node.describe_parameter("detection_threshold").floating_point_range[0].to_value == 1.0
    assert node.describe_parameter("max_people").integer_range[0].from_value == 1
    node.destroy_node()


def test_yaml_file_holds_every_parameter_with_the_defaults() -> None:
    messages = parameter_dict_from_yaml_file(
        str(REPO_ROOT / "config" / "pose_node.yaml"), target_nodes=["/pose_node"]
    )
    values = {name: parameter_value_to_python(m.value) for name, m in messages.items()}
    names = {spec.name for spec in PARAMETER_SPECS}
    assert set(values) == names
    from_yaml = NodeParams.from_mapping(
        {name: tuple(v) if name == "scales" else v for name, v in values.items()}
    )
    assert from_yaml == NodeParams()


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("detection_threshold", 1.5, ""),  # out of the descriptor's range (rclpy's own reason)
        ("max_people", 0, ""),
        ("person_min_score", -0.1, ""),
        ("max_input_size", 100, ""),  # not a multiple of 32 (range step)
        ("scales", [1.0, 8.0], "scales must lie in [0.25, 4.0]"),
        ("scales", [0.5, 2.0], "needs 1.0 among the scales"),
        ("scales", [1.0, 1.5, 2.0, 0.5, 0.75], "scales must have 1 to 4 entries"),
        ("flip_test", "yes", ""),  # wrong type
        ("flip_scale", 0.1, ""),  # out of the descriptor's range
        ("precision", "int8", "read-only"),
        ("device", "cuda", "read-only"),  # read-only: needs a reconfigure
    ],
)
def test_invalid_values_are_rejected_at_set_time_with_a_reason(
    ros_context: rclpy.Context, name: str, value: object, reason: str
) -> None:
    node = _node(ros_context)
    declare_node_parameters(node)
    before = node.get_parameter(name).value
    results = node.set_parameters([Parameter(name, value=value)])
    assert not results[0].successful
    assert results[0].reason
    assert reason.lower() in results[0].reason.lower(), results[0].reason
    assert node.get_parameter(name).value == before
    node.destroy_node()


def test_valid_runtime_changes_are_accepted(ros_context: rclpy.Context) -> None:
    node = _node(ros_context)
    declare_node_parameters(node)
    results = node.set_parameters(
        [Parameter("detection_threshold", value=0.3), Parameter("scales", value=[1.0, 0.5])]
    )
    assert all(r.successful for r in results)
    params = read_node_params(node)
    assert params.detection_threshold == 0.3 and params.scales == (1.0, 0.5)
    node.destroy_node()


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ([Parameter("backend", value="tensorrt"), Parameter("device", value="cpu")],
         "tensorrt needs a CUDA device"),
        ([Parameter("backend", value="openvino")], "backend 'openvino' must be one of"),
        ([Parameter("device", value="tpu")], "device 'tpu' must be one of"),
        ([Parameter("model", value="resnet")], "model 'resnet' is unknown"),
        ([Parameter("checkpoint", value="/nonexistent/w.pt")], "is not a file"),
        ([Parameter("device", value="cpu"), Parameter("fp16", value=True)], "fp16 needs"),
        ([Parameter("precision", value="int4")], "precision 'int4' must be one of"),
        ([Parameter("backend", value="torch"), Parameter("precision", value="int8")],
         "int8 is an onnxruntime graph"),
    ],
)
def test_invalid_start_values_are_refused_with_a_reason(
    ros_context: rclpy.Context, overrides: list[Parameter], reason: str
) -> None:
    node = _node(ros_context, overrides)
    with pytest.raises(ValueError, match=reason.replace("(", r"\(")):
        declare_node_parameters(node)
    node.destroy_node()


def test_cuda_index_and_file_checkpoint_are_valid(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    params = NodeParams(device="cuda:1", checkpoint=str(weights), fp16=True)
    assert params.device == "cuda:1" and params.to_dict()["scales"] == [1.0]
    with pytest.raises(ValueError, match="unknown parameters: colour"):
        NodeParams.from_mapping({"colour": 1})


def test_grouping_parameters_build_the_grouping_record(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defaults come from `GroupingParams`; `build_estimator` passes the record as keywords."""
    import pose_core
    from pose_core.grouping import GroupingParams
    from pose_ros.pose_node import build_estimator

    # refine skips the people the node drops anyway
    assert NodeParams().grouping_params() == GroupingParams(
        refine_min_score=NodeParams().person_min_score)
    params = NodeParams(detection_threshold=0.3, tag_threshold=2.0, max_people=4, refine=False,
                        device="cpu", person_min_score=0.4)
    expected = GroupingParams(detection_threshold=0.3, tag_threshold=2.0, max_people=4,
                              refine=False, refine_min_score=0.4)
    assert params.grouping_params() == expected
    calls: list[dict] = []

    def fake_estimator(name: str, **kwargs: object) -> str:
        calls.append(kwargs)
        return "estimator"

    monkeypatch.setattr(pose_core, "PoseEstimator", fake_estimator, raising=False)
    assert build_estimator(params) == "estimator"
    grouping = {k: v for k, v in calls[0].items() if k in GroupingParams.__dataclass_fields__}
    assert GroupingParams(**grouping) == expected
    # fields the node has no parameter for can be overridden (the tuning scripts do)
    build_estimator(params, {"adjust": False, "nms_kernel": 3})
    grouping = {k: v for k, v in calls[1].items() if k in GroupingParams.__dataclass_fields__}
    assert GroupingParams(**grouping) == GroupingParams(
        detection_threshold=0.3, tag_threshold=2.0, max_people=4, refine=False, adjust=False,
        nms_kernel=3, refine_min_score=0.4)


def test_top_down_models_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="top-down: it needs a box per person"):
        NodeParams(model="hrnet_w32_256x192_coco", checkpoint=__file__)


def test_node_runs_a_single_scale_whatever_the_models_default_test_scales() -> None:
    """The shipped model's offline default is two test scales; the node keeps one (its frame
    rate is what the real-time budget was measured with)."""
    from pose_core.models import model_info

    params = NodeParams()
    assert params.scales == (1.0,)
    assert len(model_info(params.model).test_scales) > 1


def test_network_precision_is_int8_only_for_the_shipped_weights_on_the_cpu(
    tmp_path: Path,
) -> None:
    from pose_ros.estimator_factory import network_precision

    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    assert NodeParams().precision == "auto"
    assert network_precision(NodeParams(), "cpu") == "int8"
    assert network_precision(NodeParams(backend="onnxruntime"), "cpu") == "int8"
    assert network_precision(NodeParams(), "cuda") == "fp32"  # auto is torch there
    assert network_precision(NodeParams(backend="torch"), "cpu") == "fp32"
    assert network_precision(NodeParams(checkpoint=str(weights)), "cpu") == "fp32"
    assert network_precision(NodeParams(precision="fp32"), "cpu") == "fp32"
    assert network_precision(NodeParams(checkpoint=str(weights), precision="int8"), "cpu") == "int8"


def test_flip_defaults_and_the_models_that_run_a_full_size_flip(tmp_path: Path) -> None:
    """The node's default is the reduced flip test; a model with offset outputs (Double
    Embedding) runs the full-size one whatever `flip_scale` says, instead of refusing."""
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    params = NodeParams()
    assert params.flip_test and params.flip_scale == 0.625
    assert params.effective_flip_scale() == 0.625
    dem = NodeParams(model="dem_higherhrnet_lite_w16_256_coco", checkpoint=str(weights))
    assert dem.effective_flip_scale() == 1.0
    ce = NodeParams(model="ce_higherhrnet_lite_w16_256_coco", checkpoint=str(weights))
    assert ce.effective_flip_scale() == 0.625
    with pytest.raises(ValueError, match="flip_scale must lie in"):
        NodeParams(flip_scale=1.5)
