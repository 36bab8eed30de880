"""Coupled Embedding networks: key manifests, official checkpoint layouts, golden outputs.

Fixtures: shared/reference/keys_ce_*.json and parity/ce_*_forward_seed*.npz (parity README §4.1,
§4.2), made with the official CR320/CoupledEmbedding code.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from official_weights import PARITY_DIR, REFERENCE_DIR, key_manifest, official_state_dict

from pose_core.keypoint_specs import COCO_17, CROWDPOSE_14
from pose_core.models import MODELS, build_model, model_info
from pose_core.models.checkpoint import CheckpointError, load_checkpoint
from pose_core.models.summary import count_parameters

PARITY_TOLERANCE = 1e-4

# package name -> official keys file (fixture names use the official ce_hrhrnet_* spelling)
KEYS = {
    "ce_higherhrnet_w32_512_coco": "keys_ce_hrhrnet_w32_512_coco.json",
    "ce_higherhrnet_w48_640_crowdpose": "keys_ce_hrhrnet_w48_640_crowdpose.json",
    "ce_hrnet_w32_512_coco": "keys_ce_hrnet_w32_512_coco.json",
}
# parity README §4.1: parameter counts of the official models
OFFICIAL_PARAMETERS = {
    "ce_higherhrnet_w32_512_coco": 28_640_554,
    "ce_higherhrnet_w48_640_crowdpose": 63_816_140,
    "ce_hrnet_w32_512_coco": 28_540_601,
}
REGISTERED = tuple(
    f"ce_{net}_{size}_{data}"
    for net in ("hrnet", "higherhrnet")
    for size in ("w32_512", "w48_640")
    for data in ("coco", "crowdpose")
)


def _keys(name: str) -> OrderedDict:
    with open(os.path.join(REFERENCE_DIR, KEYS[name]), encoding="utf-8") as handle:
        return json.load(handle, object_pairs_hook=OrderedDict)


def _weights(name: str, seed: int) -> OrderedDict:
    return official_state_dict(os.path.join(REFERENCE_DIR, KEYS[name]), seed)


def _strip(key: str) -> str:
    return key.split(".", 1)[1]


def test_registry_entries() -> None:
    for name in REGISTERED:
        info = model_info(name)
        assert info.decoder == "coupled_embedding"
        assert info.head_layout.tag_dim == 8
        assert info.keypoints is (CROWDPOSE_14 if name.endswith("crowdpose") else COCO_17)
        assert len(info.head_layout.heatmaps) == (2 if "higherhrnet" in name else 1)
        assert info.input_size == ((640, 640) if "_640_" in name else (512, 512))
    assert model_info("ce_higherhrnet_lite_w16_256_coco_tag1").head_layout.tag_dim == 1
    assert all(MODELS[n].family == "higherhrnet" for n in REGISTERED)  # bottom-up, /64 inputs


@pytest.mark.parametrize("name", sorted(KEYS))
def test_state_dict_manifest_equals_official(name: str) -> None:
    official = _keys(name)
    with torch.device("meta"):
        model = build_model(name)
    ours = key_manifest(model)
    assert list(ours) == [_strip(k) for k in official]  # names and official order
    assert list(ours.values()) == list(official.values())  # shapes and dtypes
    assert count_parameters(model) == OFFICIAL_PARAMETERS[name]


@pytest.mark.parametrize(
    ("name", "fixture", "seed"),
    [
        ("ce_higherhrnet_w32_512_coco", "ce_hrhrnet_w32_512_coco_forward_seed0.npz", 0),
        ("ce_higherhrnet_w48_640_crowdpose", "ce_hrhrnet_w48_640_crowdpose_forward_seed1.npz", 1),
        ("ce_hrnet_w32_512_coco", "ce_hrnet_w32_512_coco_forward_seed0.npz", 0),
    ],
)
def test_forward_matches_official(name: str, fixture: str, seed: int) -> None:
    data = np.load(os.path.join(PARITY_DIR, fixture))
    model = build_model(name)
    report = load_checkpoint(model, {"model": _weights(name, seed)})  # the best.pth layout
    assert report.format == "coupled_embedding" and report.container == "model"
    assert report.loaded == len(_keys(name))
    model.eval()
    with torch.no_grad():
        outputs = model(torch.from_numpy(data["input"]))
    head = model_info(name).head_layout
    expected_tags = torch.from_numpy(data["tags"])  # (N, J, h, w, 8)
    tags = head.tag_maps(outputs).permute(0, 1, 3, 4, 2)  # (N, J, D, h, w) -> official layout
    assert tags.shape == expected_tags.shape
    assert (tags - expected_tags).abs().max().item() <= PARITY_TOLERANCE
    keys = ("heatmaps_s4", "heatmaps_s2")[: len(head.heatmaps)]
    for resolution, key in enumerate(keys):
        heatmaps = head.heatmap_maps(outputs, resolution)
        expected = torch.from_numpy(data[key])
        assert heatmaps.shape == expected.shape
        assert (heatmaps - expected).abs().max().item() <= PARITY_TOLERANCE


def test_official_training_checkpoint_layout(tmp_path: Path) -> None:
    name = "ce_hrnet_w32_512_coco"
    weights = _weights(name, 3)
    wrapped = OrderedDict(("net." + k, v) for k, v in weights.items())
    wrapped["ae_criterion.scale_dist"] = torch.arange(0.5 / 8, 1.0, 1 / 8)
    path = tmp_path / "checkpoint.pth"
    torch.save(
        {
            "model": wrapped,
            "optimizer": {"state": {}, "param_groups": [{"lr": 1.5e-3, "params": [0]}]},
            "lr_scheduler": {"last_epoch": 7},
            "meta": {"epoch": 2, "iter": 700},
        },
        path,
    )
    model = build_model(name)
    report = load_checkpoint(model, path)
    assert report.stripped_prefix == "net." and report.format == "coupled_embedding"
    assert report.skipped == ("ae_criterion.scale_dist",)
    own = model.state_dict()
    for key, value in weights.items():
        assert torch.equal(own[_strip(key)], value), key

    best = tmp_path / "best.pth"
    torch.save({"model": weights}, best)
    again = build_model(name)
    assert load_checkpoint(again, best).container == "model"
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), own.values()))


def test_ce_file_and_non_ce_model_refuse_each_other() -> None:
    ce_weights = _weights("ce_hrnet_w32_512_coco", 0)
    with pytest.raises(CheckpointError, match="unexpected keys: .*tms_pred_layers"):
        load_checkpoint(build_model("higherhrnet_w32_512_coco"), {"model": ce_weights})
    higher = official_state_dict(
        os.path.join(REFERENCE_DIR, "keys_higherhrnet_w32_512_coco.json"), 0
    )
    with pytest.raises(CheckpointError, match="missing keys: .*hms_pred_layers"):
        load_checkpoint(build_model("ce_higherhrnet_w32_512_coco"), higher)
    # the two CE heads are not interchangeable either
    with pytest.raises(CheckpointError, match="hms_pred_layers"):
        load_checkpoint(build_model("ce_higherhrnet_w32_512_coco"), {"model": ce_weights})


def test_lite_variants_and_tag_dims() -> None:
    model = build_model("ce_higherhrnet_lite_w16_256_coco").eval()
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 128, 192))
    assert [tuple(o.shape) for o in outputs] == [(1, 17 * 9, 32, 48), (1, 17, 64, 96)]
    one = build_model("ce_higherhrnet_lite_w16_256_coco_tag1").eval()
    with torch.no_grad():
        outputs = one(torch.zeros(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outputs] == [(1, 34, 16, 16), (1, 17, 32, 32)]
