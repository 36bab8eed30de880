"""Networks: key manifests, parameter / MAC counts and golden outputs against the official code.

Fixtures: shared/reference/keys_*.json and parity/*_forward_seed0.npz (README §1-2).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict

import numpy as np
import pytest
import torch
from official_weights import PARITY_DIR, REFERENCE_DIR, key_manifest, official_state_dict

from pose_core.keypoint_specs import COCO_17, CROWDPOSE_14
from pose_core.models import MODEL_NAMES, MODELS, build_model, model_info
from pose_core.models.checkpoint import load_checkpoint
from pose_core.models.fusion import fold_batchnorm
from pose_core.models.higher_hrnet import (
    HIGHER_HRNET_LITE_W16,
    HigherHRNetSpec,
    build_higher_hrnet,
)
from pose_core.models.hrnet import HRNET_W32, HRNetSpec, StageSpec
from pose_core.models.summary import count_macs, count_parameters, main, summarize

PARITY_TOLERANCE = 1e-4

REQUIRED_NAMES = (
    "higherhrnet_w32_512_coco",
    "higherhrnet_w32_640_coco",
    "higherhrnet_w48_640_coco",
    "higherhrnet_w32_512_crowdpose",
    "higherhrnet_w48_640_crowdpose",
    "hrnet_w32_256x192_coco",
    "hrnet_w32_384x288_coco",
    "hrnet_w48_256x192_coco",
    "hrnet_w48_384x288_coco",
    "higherhrnet_lite_w16_256_coco",
)

# ../shared/reference (official model zoo tables): exact official parameter counts and "true MACs" (x 1e9).
REFERENCE_COUNTS = {
    "higherhrnet_w32_512_coco": (28_645_331, 46.203),
    "higherhrnet_w32_640_coco": (28_645_331, 72.19),
    "higherhrnet_w48_640_coco": (63_827_139, 149.469),
    "higherhrnet_w32_512_crowdpose": (28_641_962, 46.144),
    "higherhrnet_w48_640_crowdpose": (63_822_090, 149.33),
    "hrnet_w32_256x192_coco": (28_536_113, 7.645),
    "hrnet_w32_384x288_coco": (28_536_113, 17.20),
    "hrnet_w48_256x192_coco": (63_595_745, 15.69),
    "hrnet_w48_384x288_coco": (63_595_745, 35.307),
}


def _meta_model(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(name)


def _reference_manifest(name: str) -> OrderedDict:
    with open(os.path.join(REFERENCE_DIR, f"keys_{name}.json"), encoding="utf-8") as handle:
        return json.load(handle, object_pairs_hook=OrderedDict)


def test_registry_holds_required_names_with_metadata() -> None:
    for name in REQUIRED_NAMES:
        assert name in MODEL_NAMES
        info = model_info(name)
        assert info.name == name
        assert info.mean == (0.485, 0.456, 0.406) and info.std == (0.229, 0.224, 0.225)
        assert info.keypoints is (CROWDPOSE_14 if name.endswith("crowdpose") else COCO_17)
        assert info.family == ("higherhrnet" if name.startswith("higherhrnet") else "hrnet")
    assert model_info("hrnet_w48_384x288_coco").input_size == (288, 384)
    assert model_info("higherhrnet_w48_640_coco").width == 48
    assert model_info("higherhrnet_w32_512_crowdpose").num_joints == 14
    assert MODEL_NAMES == tuple(MODELS)
    with pytest.raises(KeyError, match="higherhrnet_w32_512_coco"):
        model_info("no_such_model")


@pytest.mark.parametrize("name", ["higherhrnet_w32_512_coco", "hrnet_w32_256x192_coco"])
def test_state_dict_manifest_equals_official(name: str) -> None:
    reference = _reference_manifest(name)
    ours = key_manifest(_meta_model(name))
    assert list(ours) == list(reference)  # names and order
    assert ours == reference  # shapes and dtypes


@pytest.mark.parametrize("name", sorted(REFERENCE_COUNTS))
def test_parameters_exact_and_macs_within_one_percent(name: str) -> None:
    params, gmacs = REFERENCE_COUNTS[name]
    model = _meta_model(name)
    assert count_parameters(model) == params
    macs = count_macs(model, model_info(name).input_size)
    assert abs(macs / 1e9 - gmacs) <= 0.01 * gmacs


def test_higher_hrnet_w32_matches_official_forward() -> None:
    data = np.load(os.path.join(PARITY_DIR, "higherhrnet_w32_512_coco_forward_seed0.npz"))
    weights = official_state_dict(
        os.path.join(REFERENCE_DIR, "keys_higherhrnet_w32_512_coco.json"), seed=0
    )
    model = build_model("higherhrnet_w32_512_coco")
    report = load_checkpoint(model, weights)
    assert report.loaded == 1810 and report.format == "official"
    model.eval()
    with torch.no_grad():
        outputs = model(torch.from_numpy(data["input"]))
    assert isinstance(outputs, list) and len(outputs) == 2
    for output, key in zip(outputs, ("out0", "out1")):
        expected = torch.from_numpy(data[key])
        assert output.shape == expected.shape
        assert (output - expected).abs().max().item() <= PARITY_TOLERANCE


def test_top_down_hrnet_w32_matches_official_forward() -> None:
    data = np.load(os.path.join(PARITY_DIR, "hrnet_w32_256x192_coco_forward_seed0.npz"))
    weights = official_state_dict(
        os.path.join(REFERENCE_DIR, "keys_hrnet_w32_256x192_coco.json"), seed=0
    )
    model = build_model("hrnet_w32_256x192_coco")
    load_checkpoint(model, weights)
    model.eval()
    with torch.no_grad():
        output = model(torch.from_numpy(data["input"]))
    expected = torch.from_numpy(data["out0"])
    assert output.shape == expected.shape == (1, 17, 64, 48)
    assert (output - expected).abs().max().item() <= PARITY_TOLERANCE


def test_lite_model_shapes_and_budget() -> None:
    info = model_info("higherhrnet_lite_w16_256_coco")
    assert info.input_size == (256, 256) and info.width == 16
    summary = summarize(info.name)
    assert summary.parameters <= 3_000_000
    assert summary.macs <= 0.6e9
    model = build_model(info.name).eval()
    with torch.no_grad():
        out0, out1 = model(torch.randn(2, 3, 256, 256))
    assert out0.shape == (2, 34, 64, 64) and out1.shape == (2, 17, 128, 128)
    # Same naming scheme as the official HigherHRNet.
    keys = list(model.state_dict())
    assert keys[0] == "conv1.weight"
    assert "stage4.0.fuse_layers.0.3.0.weight" in keys
    assert keys.index("final_layers.1.bias") < keys.index("deconv_layers.0.0.0.weight")
    assert "deconv_layers.0.1.0.conv1.weight" in keys


def test_lite_model_trains() -> None:
    torch.manual_seed(0)
    model = build_model("higherhrnet_lite_w16_256_coco").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.randn(2, 3, 128, 128)
    targets = [torch.rand(2, 34, 32, 32), torch.rand(2, 17, 64, 64)]
    losses = []
    for _ in range(3):
        outputs = model(images)
        loss = sum(((o - t) ** 2).mean() for o, t in zip(outputs, targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_crowdpose_and_rectangular_outputs() -> None:
    model = build_higher_hrnet(HIGHER_HRNET_LITE_W16, CROWDPOSE_14).eval()
    with torch.no_grad():
        out0, out1 = model(torch.randn(1, 3, 192, 256))  # h 192, w 256
    assert out0.shape == (1, 28, 48, 64) and out1.shape == (1, 14, 96, 128)
    top_down = build_model("hrnet_w32_256x192_crowdpose").eval()
    with torch.no_grad():
        assert top_down(torch.randn(1, 3, 64, 32)).shape == (1, 14, 16, 8)


def test_custom_spec_builds_and_validates() -> None:
    backbone = HRNetSpec(
        stem_channels=16,
        layer1_planes=8,
        layer1_blocks=1,
        stages=(StageSpec(num_modules=1, num_blocks=(1, 1), num_channels=(8, 16)),),
    )
    spec = HigherHRNetSpec(backbone=backbone, deconv_channels=(8,), num_basic_blocks=1)
    model = build_higher_hrnet(spec, COCO_17).eval()
    with torch.no_grad():
        out0, out1 = model(torch.randn(1, 3, 64, 64))
    assert out0.shape == (1, 34, 16, 16) and out1.shape == (1, 17, 32, 32)
    assert "stage2.0.fuse_layers.0.1.0.weight" in model.state_dict()
    assert HRNET_W32.width == 32
    with pytest.raises(ValueError, match="branches"):
        HRNetSpec(stages=(StageSpec(1, (1, 1, 1), (8, 16, 32)),))
    with pytest.raises(ValueError, match="with_ae"):
        HigherHRNetSpec(backbone=backbone, with_ae=(True,))


def test_summary_cli_prints_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["higherhrnet_lite_w16_256_coco", "hrnet_w32_256x192_coco"]) == 0
    text = capsys.readouterr().out
    assert "28,536,113" in text and "7.645" in text
    assert "higherhrnet_lite_w16_256_coco" in text


def test_folded_batchnorm_matches_unfolded() -> None:
    with torch.device("meta"):
        manifest = key_manifest(build_model("higherhrnet_lite_w16_256_coco"))
    model = build_model("higherhrnet_lite_w16_256_coco")
    load_checkpoint(model, official_state_dict(manifest, seed=3))
    model.eval()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # input untouched
    image = torch.randn(1, 3, 128, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for expected, output in zip(model(image), folded(image)):
            scale = expected.abs().max().item()
            assert (output - expected).abs().max().item() <= 1e-5 * max(scale, 1.0)
