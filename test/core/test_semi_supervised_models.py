"""SimpleBaseline / union-24 networks of the semi-supervised study and their official files.

Parity: `semi_res18_256x192_forward_seed0.npz` (official `PoseCons` / `PoseCotrain` forward,
weights by the README §1 fill rule on the official key orders), max abs diff <= 1e-4.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from official_weights import PARITY_DIR, REFERENCE_DIR, official_state_dict, state_dict_sha256

from pose_core.keypoint_specs import COCO_17, COCO_17_TO_UNION_24, UNION_24
from pose_core.models import build_model, model_info
from pose_core.models.checkpoint import load_checkpoint, load_strict
from pose_core.models.simple_baseline import (
    build_simple_baseline,
    semi_supervised_state_dict,
    simple_baseline_resnet18,
)

POSEDUAL_KEYS = os.path.join(REFERENCE_DIR, "keys_semi_posedual_res18_256x192.json")
POSECONS_KEYS = os.path.join(REFERENCE_DIR, "keys_semi_posecons_res18_256x192.json")
FORWARD = os.path.join(PARITY_DIR, "semi_res18_256x192_forward_seed0.npz")


@pytest.fixture(scope="module")
def posedual_seed0() -> dict[str, torch.Tensor]:
    return official_state_dict(POSEDUAL_KEYS, 0)


def test_union_mapping_matches_the_official_get_mapping() -> None:
    official = {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 0, 14: 5, 15: 7, 16: 9, 17: 6,
                18: 8, 19: 10, 20: 2, 21: 1, 22: 4, 23: 3}
    assert {u: c for c, u in enumerate(COCO_17_TO_UNION_24)} == official
    for coco, union in enumerate(COCO_17_TO_UNION_24):
        assert COCO_17.names[coco] == UNION_24.names[union]
        assert COCO_17_TO_UNION_24[COCO_17.flip_index[coco]] == UNION_24.flip_index[union]


def test_fill_rule_rebuild_matches_the_published_hashes(posedual_seed0) -> None:
    assert state_dict_sha256(posedual_seed0) == (
        "7b9ac5f2b7eac82fb1a20ee2af3ad16acc586204a3764a366ae9e475b07bd251")
    net1 = semi_supervised_state_dict(posedual_seed0, 1)
    cons = semi_supervised_state_dict(official_state_dict(POSECONS_KEYS, 0), 1)
    assert list(net1) == list(cons)
    assert all(torch.equal(net1[k], cons[k]) for k in net1)


def test_forward_parity_with_official_posedual_both_networks(posedual_seed0) -> None:
    fixture = np.load(FORWARD)
    inputs = torch.from_numpy(fixture["input"])
    for network, key in ((1, "heatmaps"), (2, "heatmaps_posedual_net2")):
        model = simple_baseline_resnet18().eval()
        load_strict(model, semi_supervised_state_dict(posedual_seed0, network))
        with torch.no_grad():
            heatmaps = model(inputs)
        assert heatmaps.shape == (2, 24, 64, 48)
        assert float((heatmaps - torch.from_numpy(fixture[key])).abs().max()) <= 1e-4


def test_official_training_checkpoint_loads_network_1(tmp_path, posedual_seed0) -> None:
    """The official `checkpoint.pth.tar` layout (epoch, model tuple, state_dict, perf,
    optimizer) and the bare `model_best.pth.tar` load through `load_checkpoint` as net1."""
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"epoch": 3, "model": ("pose_dual_18", "256x192_pose_dual_18_d256d256d256"),
                "state_dict": posedual_seed0, "perf": 0.1, "optimizer": {}}, path)
    bare = tmp_path / "model_best.pth.tar"
    torch.save(posedual_seed0, bare)
    for source in (path, bare):
        model = build_model("simple_baseline_res18_256x192_union24")
        report = load_checkpoint(model, source)
        assert report.format == "semi_supervised"
        expected = semi_supervised_state_dict(posedual_seed0, 1)
        assert torch.equal(model.state_dict()["final_layer.weight"],
                           expected["final_layer.weight"])


def test_registered_networks_shapes() -> None:
    for depth in (18, 50):
        model = build_simple_baseline(depth, UNION_24).eval()
        with torch.no_grad():
            assert model(torch.zeros(1, 3, 96, 64)).shape == (1, 24, 24, 16)
    info = model_info("hrnet_w48_384x288_union24")
    assert info.keypoints is UNION_24 and info.input_size == (288, 384)
    assert model_info("simple_baseline_res152_256x192_union24").num_joints == 24
    with pytest.raises(ValueError, match="depth"):
        build_simple_baseline(20, UNION_24)
    with pytest.raises(ValueError, match="resnet2"):
        semi_supervised_state_dict({"resnet.conv1.weight": torch.zeros(1)}, 2)
