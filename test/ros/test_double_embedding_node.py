"""The pose node selects the Double Embedding decoder by model name, with `dem_mode`."""

from __future__ import annotations

import pathlib

import pytest
import torch

from pose_core.models import build_model
from pose_ros.params import NodeParams
from pose_ros.pose_node import build_estimator

pytestmark = pytest.mark.ros

MODEL = "dem_higherhrnet_lite_w16_256_coco"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("dem_node") / "dem.pt"
    torch.save({"model": build_model(MODEL).state_dict()}, path)
    return path


@pytest.mark.parametrize("mode", ["paper", "release"])
def test_node_estimator_uses_dem_mode(checkpoint: pathlib.Path, mode: str) -> None:
    params = NodeParams(model=MODEL, checkpoint=str(checkpoint), device="cpu", backend="torch",
                        dem_mode=mode)
    estimator = build_estimator(params)
    assert type(estimator.codec).__name__ == "DoubleEmbeddingDecoder"
    assert estimator.codec.mode.name == mode


def test_dem_mode_is_validated_and_ignored_by_other_models() -> None:
    with pytest.raises(ValueError, match="dem_mode"):
        NodeParams(dem_mode="official")
    estimator = build_estimator(NodeParams(device="cpu", backend="torch", dem_mode="release"))
    assert type(estimator.codec).__name__ == "AssociativeEmbeddingDecoder"
