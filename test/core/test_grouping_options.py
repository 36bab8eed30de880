"""`pose_core.grouping.options`: `GroupingParams` as the one record of the grouping options, its
command-line form (pose-infer, pose-eval) and the validation config built from it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import torch

from pose_core.engine.config import ValidationConfig, load_config
from pose_core.grouping import GroupingParams
from pose_core.grouping.options import (
    GROUPING_DEFAULTS,
    add_grouping_arguments,
    grouping_params_from,
    grouping_params_from_args,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--detection-threshold", "0.25", "--tag-threshold", "2", "--max-people", "7",
         "--no-refine"]
FROM_FLAGS = GroupingParams(detection_threshold=0.25, tag_threshold=2.0, max_people=7,
                            refine=False)


def _parsers() -> dict[str, argparse.ArgumentParser]:
    from pose_core.evaluation.cli import build_parser as eval_parser
    from pose_core.inference.cli import build_parser as infer_parser

    return {"pose-infer": infer_parser(), "pose-eval": eval_parser()}


def test_defaults_are_the_record_defaults() -> None:
    assert GROUPING_DEFAULTS == GroupingParams()
    assert ValidationConfig().grouping_params() == GroupingParams()
    assert grouping_params_from(object()) == GroupingParams()


def test_grouping_params_from_takes_matching_attributes_then_overrides() -> None:
    source = argparse.Namespace(detection_threshold=0.3, nms_kernel=3, unrelated="x")
    assert grouping_params_from(source) == GroupingParams(detection_threshold=0.3, nms_kernel=3)
    assert grouping_params_from(source, nms_kernel=7).nms_kernel == 7


def test_helper_flags_defaults_and_record() -> None:
    parser = add_grouping_arguments(argparse.ArgumentParser())
    assert grouping_params_from_args(parser.parse_args([])) == GroupingParams()
    assert grouping_params_from_args(parser.parse_args(FLAGS)) == FROM_FLAGS


@pytest.mark.parametrize("prog", ["pose-infer", "pose-eval"])
def test_both_clis_share_the_flags(prog: str) -> None:
    parser = _parsers()[prog]
    required = {"pose-infer": ["img.jpg"],
                "pose-eval": ["--dataset", "coco", "--annotations", "gt.json", "--results",
                              "res.json"]}[prog]
    assert grouping_params_from_args(parser.parse_args(required)) == GroupingParams()
    assert grouping_params_from_args(parser.parse_args(required + FLAGS)) == FROM_FLAGS


def test_validation_config_yaml_keys_build_the_record() -> None:
    config = load_config(REPO_ROOT / "config/train/hrnet_w32_256x192_coco.yaml",
                         ["validation.refine=false", "validation.max_people=5"])
    assert config.validation.grouping_params() == GroupingParams(
        detection_threshold=0.0, max_people=5, refine=False
    )


def test_validation_estimator_gets_the_record_as_keywords(monkeypatch: pytest.MonkeyPatch) -> None:
    import pose_core.inference
    from pose_core.engine.tasks import build_validation_estimator

    calls: list[dict[str, Any]] = []

    def fake_estimator(name: str, **kwargs: Any) -> str:
        calls.append({"name": name, **kwargs})
        return "estimator"

    monkeypatch.setattr(pose_core.inference, "PoseEstimator", fake_estimator)
    options = ValidationConfig(flip_test=False, tag_threshold=0.5, adjust=False)
    estimator = build_validation_estimator(
        torch.nn.Identity(), "some_model", options, torch.device("cpu")
    )
    assert estimator == "estimator"
    (call,) = calls
    assert call["name"] == "some_model" and call["flip_test"] is False
    grouping = {k: v for k, v in call.items() if k in GroupingParams.__dataclass_fields__}
    assert GroupingParams(**grouping) == GroupingParams(tag_threshold=0.5, adjust=False)
