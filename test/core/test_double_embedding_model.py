"""Double Embedding network: official key layout, forward parity with the released code, the
released checkpoint layouts, and the bilinear fuse option leaving HRNet's default alone."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from official_weights import (
    fp16_round,
    fp16_wrapper_state_dict,
    key_manifest,
    official_state_dict,
    state_dict_sha256,
    training_checkpoint,
)

from pose_core.models import build_model, model_info
from pose_core.models.checkpoint import load_checkpoint
from pose_core.models.double_embedding import DEM_PARTITIONS, DoubleEmbeddingNet
from pose_core.models.hrnet import HRNET_W32, HRNet

DEM_NAMES = (
    "dem_higherhrnet_w32_512_coco",
    "dem_higherhrnet_w32_640_coco",
    "dem_higherhrnet_w48_640_coco",
    "dem_higherhrnet_w32_512_crowdpose",
    "dem_higherhrnet_w32_640_crowdpose",
    "dem_higherhrnet_w48_640_crowdpose",
)


@pytest.fixture(scope="module")
def coco_keys(reference_dir: Path) -> OrderedDict:
    with open(reference_dir / "keys_dem_coco_w32_512.json", encoding="utf-8") as handle:
        return json.load(handle, object_pairs_hook=OrderedDict)


@pytest.mark.parametrize(
    ("name", "keys_file"),
    [("dem_higherhrnet_w32_512_coco", "keys_dem_coco_w32_512.json"),
     ("dem_higherhrnet_w32_512_crowdpose", "keys_dem_crowdpose_w32_512.json")],
)
def test_state_dict_manifest_equals_official(name: str, keys_file: str, reference_dir: Path):
    with open(reference_dir / keys_file, encoding="utf-8") as handle:
        official = json.load(handle, object_pairs_hook=OrderedDict)
    ours = key_manifest(build_model(name))
    assert list(ours) == list(official)  # same names, same order
    assert ours == official


def test_registry_heads_and_decoder() -> None:
    for name in DEM_NAMES:
        info = model_info(name)
        assert info.decoder == "double_embedding"
        head = info.head_layout
        joints = info.num_joints
        assert head.num_joints == joints + 1 and head.tag_dim == 1
        assert head.extra("offsets_s2").count == DEM_PARTITIONS[info.keypoints.name].num_offsets
    assert DEM_PARTITIONS["coco"].num_offsets == 42
    assert DEM_PARTITIONS["crowdpose"].num_offsets == 36


def test_offset_flip_index_matches_release() -> None:
    """The released `get_multi_stage_outputs` permutes offset blocks by the joint order
    [0,2,1,4,3,8,7,10,9,14,13,16,15] (COCO) / [3,2,5,4,9,8,11,10,12,13] (CrowdPose)."""
    from pose_core.keypoint_specs import COCO_17, CROWDPOSE_14

    coco = []
    for idx in (0, 2, 1, 4, 3, 8, 7, 10, 9, 14, 13, 16, 15):
        coco += ([idx * 2 + d for d in range(2)] if idx < 5 else
                 [10 + (idx - 7) * 4 + d for d in range(4)] if idx <= 10 else
                 [26 + (idx - 13) * 4 + d for d in range(4)])
    assert DEM_PARTITIONS["coco"].offset_flip_index(COCO_17.flip_index) == tuple(coco)
    crowd = []
    for idx in (3, 2, 5, 4, 9, 8, 11, 10, 12, 13):
        crowd += ([(idx - 2) * 4 + d for d in range(4)] if idx < 6 else
                  [16 + (idx - 8) * 4 + d for d in range(4)] if idx <= 11 else
                  [32 + (idx - 12) * 2 + d for d in range(2)])
    assert DEM_PARTITIONS["crowdpose"].offset_flip_index(CROWDPOSE_14.flip_index) == tuple(crowd)


def test_forward_parity_with_release(coco_keys: OrderedDict, parity_dir: Path) -> None:
    weights = official_state_dict(coco_keys, 0)
    assert state_dict_sha256(weights) == (
        "dec2cc74b2d54a7d9321c9497d194fd1ad20641a04a6ef67ba9e5c298c5b662a"
    )
    model = build_model("dem_higherhrnet_w32_512_coco").eval()
    load_checkpoint(model, weights)
    reference = np.load(parity_dir / "dem_coco_w32_512_forward_seed0.npz")
    generator = torch.Generator().manual_seed(0)
    image = torch.randn((1, 3, 256, 256), generator=generator)
    with torch.no_grad():
        outputs = model(image)
    names = ("offsets_s4", "offsets_s2", "hm_tags_s4", "heatmaps_s2")
    for name, output in zip(names, outputs):
        expected = reference[name]
        assert output.shape == expected.shape, name
        assert np.abs(output.numpy() - expected).max() <= 1e-4, name


def test_released_checkpoint_layouts_load_strictly(coco_keys: OrderedDict, tmp_path: Path):
    """Plain, the fp16 wrapper (`1.`, float16 non-BN tensors) and the training checkpoint
    (`module.1.` in `state_dict`, `model` a string) give the same numbers."""
    weights = official_state_dict(coco_keys, 3)
    expected = fp16_round(weights)
    wrapped = fp16_wrapper_state_dict(weights)
    training = training_checkpoint(wrapped)
    training["model"] = "pose_higher_hrnet_de_head"
    for layout, prefix in ((wrapped, "1."), (training, "module.1.")):
        path = tmp_path / f"{prefix}pth"
        torch.save(layout, path)
        model = build_model("dem_higherhrnet_w32_512_coco")
        report = load_checkpoint(model, path)
        assert report.stripped_prefix == prefix and report.fp16_tensors > 0
        for key, value in model.state_dict().items():
            assert torch.equal(value, expected[key]), key
    plain = build_model("dem_higherhrnet_w32_512_coco")
    torch.save(weights, tmp_path / "plain.pth")
    assert load_checkpoint(plain, tmp_path / "plain.pth").stripped_prefix is None
    for key, value in plain.state_dict().items():
        assert torch.equal(value, weights[key]), key


def test_bilinear_fuse_is_an_option_nearest_stays_default() -> None:
    assert HRNET_W32.fuse_upsample == "nearest"
    nearest = HRNet(HRNET_W32)
    assert any(isinstance(m, torch.nn.Upsample) for m in nearest.modules())
    dem = build_model("dem_higherhrnet_w32_512_coco")
    assert isinstance(dem, DoubleEmbeddingNet)
    assert not any(isinstance(m, torch.nn.Upsample) for m in dem.modules())
    # same backbone keys: a DEM backbone loads HRNet weights strictly
    backbone = {k: v for k, v in dem.state_dict().items() if not k.startswith(
        ("stem", "final_layers", "deconv_layers"))}
    assert set(backbone) == set(nearest.state_dict())
