"""`node_benchmark --checkpoints` entries: weights with node parameters after '@'."""

from __future__ import annotations

import pytest

from pose_ros.node_benchmark import checkpoint_entry, split_entry_values


def test_plain_path_has_no_parameters() -> None:
    assert checkpoint_entry("/w/new.pt") == ("/w/new.pt", {})
    assert checkpoint_entry("") == ("", {})


def test_parameters_after_at_are_typed_yaml_scalars() -> None:
    path, params = checkpoint_entry("/w/new.pt@refine=false,person_min_score=0.3,max_people=5")
    assert path == "/w/new.pt"
    assert params == {"refine": False, "person_min_score": 0.3, "max_people": 5}
    assert checkpoint_entry("@refine=true") == ("", {"refine": True})


@pytest.mark.parametrize("entry", ["/w/new.pt@refine", "/w/new.pt@=1"])
def test_a_parameter_without_name_or_value_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="name=value"):
        checkpoint_entry(entry)


def test_grouping_fields_without_a_node_parameter_go_to_the_estimator() -> None:
    _, values = checkpoint_entry("/w/old.pt@refine_min_score=0,refine=false,nms_kernel=3")
    node_params, grouping = split_entry_values(values)
    assert node_params == {"refine": False}
    assert grouping == {"refine_min_score": 0, "nms_kernel": 3}
