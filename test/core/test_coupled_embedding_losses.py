"""Coupled Embedding targets and losses: official fixture (parity README §4.5) and hand-made
cases with known answers."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from official_weights import PARITY_DIR

from pose_core.codecs.associative_embedding import encode_joint_indices
from pose_core.codecs.coupled_embedding_targets import (
    box_corners,
    encode_ce_targets,
    instance_scales,
    scale_codes,
)
from pose_core.codecs.heatmap import HeatmapGenerator
from pose_core.losses.coupled_embedding import (
    CoupledEmbeddingLoss,
    CoupledEmbeddingLossConfig,
    multi_dim_ae_losses,
    read_scales,
    scale_wise_heatmap_loss,
)
from pose_core.models.heads import HeadLayout

RELATIVE = 1e-5
STEM = "ce_targets_hrhrnet_w32_coco"


@pytest.fixture(scope="module")
def fixture() -> tuple[dict, dict]:
    data = dict(np.load(os.path.join(PARITY_DIR, STEM + ".npz")))
    with open(os.path.join(PARITY_DIR, STEM + ".json"), encoding="utf-8") as handle:
        return data, json.load(handle)


def _outputs(data: dict) -> tuple[list[torch.Tensor], torch.Tensor]:
    tags = torch.from_numpy(data["pred_tags"].astype(np.float32)).permute(0, 1, 4, 2, 3)
    low = torch.from_numpy(data["pred_hms_0"].astype(np.float32))
    high = torch.from_numpy(data["pred_hms_1"].astype(np.float32))
    return [torch.cat((low, tags.flatten(1, 2)), 1), high], tags


def _batch(data: dict) -> dict:
    return {
        "heatmaps": [torch.from_numpy(data[f"target_hms_{i}"]) for i in (0, 1)],
        "masks": [torch.from_numpy(data[f"masks_{i}"]) for i in (0, 1)],
        "joints": torch.from_numpy(data["joints_0"].astype(np.int64)),
        "box_scales": torch.from_numpy(data["box_scales"]),
    }


def test_targets_match_official(fixture: tuple[dict, dict]) -> None:
    data, meta = fixture
    size = meta["image_size"]
    for n in (0, 1):
        for i, side in enumerate(meta["heatmap_size"]):
            joints = data[f"b{n}_joints_aug_{i}"]
            heatmaps = HeatmapGenerator(side, 17, 2.0)(joints)
            np.testing.assert_allclose(heatmaps, data[f"target_hms_{i}"][n], atol=1e-6)
            indices = encode_joint_indices(joints, side, 30)
            np.testing.assert_array_equal(indices, data[f"joints_{i}"][n])
        scales = instance_scales(data[f"b{n}_boxes_aug"], size, 30)
        np.testing.assert_allclose(scales, data["box_scales"][n], rtol=1e-6, atol=0)
    np.testing.assert_allclose(scale_codes(data["box_scales"], 8), data["scale_code"], rtol=1e-6)


def test_scale_read_out_matches_official(fixture: tuple[dict, dict]) -> None:
    data, _ = fixture
    _, tags = _outputs(data)
    np.testing.assert_allclose(read_scales(tags).numpy(), data["s_hat_0"], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("guard", ["fixed_sigma", "release"])
def test_losses_match_official(fixture: tuple[dict, dict], guard: str) -> None:
    data, meta = fixture
    expected = meta["losses"]
    outputs, _ = _outputs(data)
    batch = _batch(data)
    head = HeadLayout.associative_embedding(17, 2, tag_dim=8)
    loss = CoupledEmbeddingLoss(head, CoupledEmbeddingLossConfig(zero_tag_guard=guard))
    terms = loss(outputs, batch["heatmaps"], batch["masks"], batch["joints"], batch["box_scales"])
    for ours, theirs in (("heatmaps", "hms_loss"), ("pull", "pull_loss"),
                         ("push", "push_loss"), ("scale", "scale_loss")):
        assert terms[ours].item() == pytest.approx(expected[theirs], rel=RELATIVE)
    total = sum(t.item() for t in terms.values())
    assert total == pytest.approx(expected["total"], rel=RELATIVE)
    per_resolution = loss.heatmap_terms(outputs, batch["heatmaps"], batch["masks"],
                                        head.tag_maps(outputs))
    for ours_r, theirs_r in zip(per_resolution, expected["hms_loss_per_resolution"]):
        assert ours_r.item() == pytest.approx(theirs_r, rel=RELATIVE)
    tags = head.tag_maps(outputs)
    for n, image in enumerate(expected["per_image_ae"]):
        pull, push, coupling = multi_dim_ae_losses(
            tags[n : n + 1], batch["joints"][n : n + 1], batch["box_scales"][n : n + 1]
        )
        assert pull.item() == pytest.approx(image["pull"], rel=RELATIVE)
        assert push.item() == pytest.approx(image["push"], rel=RELATIVE)
        assert coupling.item() == pytest.approx(image["scale"], rel=RELATIVE)


def test_zero_tag_block_release_and_guard(fixture: tuple[dict, dict]) -> None:
    data, meta = fixture
    block = meta["zero_tag_block"]
    expected = meta["losses_zero_tag_block"]
    zeroed = dict(data)
    tags = data["pred_tags"].copy()
    (r0, r1), (c0, c1) = block["rows"], block["cols"]
    tags[block["image"], block["joint"], r0:r1, c0:c1, :] = 0
    zeroed["pred_tags"] = tags
    outputs, _ = _outputs(zeroed)
    batch = _batch(data)
    head = HeadLayout.associative_embedding(17, 2, tag_dim=8)
    args = (outputs, batch["heatmaps"], batch["masks"], batch["joints"], batch["box_scales"])
    release = CoupledEmbeddingLoss(head, CoupledEmbeddingLossConfig(zero_tag_guard="release"))
    terms = release(*args)
    for ours, theirs in (("heatmaps", "hms_loss"), ("pull", "pull_loss"),
                         ("push", "push_loss"), ("scale", "scale_loss")):
        assert terms[ours].item() == pytest.approx(expected[theirs], rel=RELATIVE)
    guarded = CoupledEmbeddingLoss(head)(*args)  # default guard: fixed sigma on zero tags
    for key in ("pull", "push", "scale"):
        assert guarded[key].item() == pytest.approx(expected[f"{key}_loss"], rel=RELATIVE)
    assert math.isfinite(guarded["heatmaps"].item())
    assert guarded["heatmaps"].item() != pytest.approx(expected["hms_loss"], rel=1e-7)


# ----------------------------------------------------------------- hand-made known answers
def test_instance_scale_and_code_by_hand() -> None:
    corners = box_corners(np.array([[10.0, 20.0, 64.0, 256.0]]))
    np.testing.assert_array_equal(corners[0], [[10, 20], [10, 276], [74, 20], [74, 276]])
    assert instance_scales(corners, 256)[0] == pytest.approx(math.sqrt(64 * 256) / 256)  # 0.5
    code = scale_codes(np.array([0.3]), 8)[0]
    assert np.linalg.norm(code) == pytest.approx(1.0)
    assert int(np.argmax(code)) == 2 and code.max() == pytest.approx(0.986, abs=1e-3)
    exact = scale_codes(np.array([0.0625]), 8)[0]  # on a bin centre: one-hot
    assert exact[0] == pytest.approx(1.0) and exact[1:].max() < 1e-9
    padded = instance_scales(corners, 256, max_people=3)
    assert padded.shape == (3,) and padded[1] == padded[2] == 0


def test_encode_ce_targets_shapes_and_scales() -> None:
    keypoints = np.zeros((1, 17, 3))
    keypoints[0, 0] = (100.0, 60.0, 2)
    corners = box_corners(np.array([[0.0, 0.0, 128.0, 128.0]]))
    targets = encode_ce_targets(keypoints, corners, 256, 2, 17, 8)
    assert targets["heatmaps_0"].shape == (17, 64, 64)
    assert targets["heatmaps_1"].shape == (17, 128, 128)
    assert targets["heatmaps_0"][0, 15, 25] == 1.0
    assert targets["joints"][0, 0].tolist() == [15 * 64 + 25, 1]
    assert targets["box_scales"][0] == pytest.approx(0.5)
    assert targets["scale_codes"].shape == (30, 8)


def test_read_out_by_hand_and_guard() -> None:
    tags = torch.zeros(1, 1, 8, 1, 2)
    tags[0, 0, 2, 0, 0] = -3.0  # all mass on bin 2 (sign ignored): centre 0.3125
    assert read_scales(tags)[0, 0, 0, 0].item() == pytest.approx(0.3125)
    assert read_scales(tags)[0, 0, 0, 1].item() == 0.0  # all-zero tag: release reads 0
    assert read_scales(tags, guard_value=0.4)[0, 0, 0, 1].item() == pytest.approx(0.4)


def test_heatmap_loss_by_hand() -> None:
    target = torch.tensor([[[[1.0, 0.5, 0.0]]]])
    prediction = torch.tensor([[[[0.5, 0.5, 0.2]]]])
    # fixed sigma, no focal: mean of (0.25, 0, 0.04)
    plain = scale_wise_heatmap_loss(prediction, target, None, None, focal=False)
    assert plain.item() == pytest.approx(0.29 / 3)
    # s_hat = beta: T' = T; doubling s_hat squares nothing away: T' = T ** 0.25
    half = scale_wise_heatmap_loss(prediction, target, torch.full((1, 1, 1, 3), 0.8), None,
                                   beta=0.4, focal=False)
    assert half.item() == pytest.approx(((0.5 - 1) ** 2 + (0.5 - 0.5**0.25) ** 2 + 0.04) / 3)
    # focal weight: |1 - P| where T' > 0, |P| where T' = 0
    focal = scale_wise_heatmap_loss(prediction, target, None, None, gamma=0.01)
    positive = (1 - math.log(0.5)) ** -0.01
    expected = (0.25 * 0.5 + 0 + 0.04 * 0.2) / 3
    assert focal.item() == pytest.approx(expected)
    assert positive < 1  # the 0.5 pixel's weight mixes both sides (its error is 0 here)
    mask = torch.tensor([[[1.0, 1.0, 0.0]]])
    masked = scale_wise_heatmap_loss(prediction, target, None, mask, focal=False)
    assert masked.item() == pytest.approx(0.25 / 3)


def test_ae_losses_by_hand() -> None:
    # 2 joint types on a 1 x 2 map, D = 2: person 0 has joints at (j0, x0) and (j1, x1)
    tags = torch.zeros(1, 2, 2, 1, 2)
    tags[0, 0, :, 0, 0] = torch.tensor([1.0, 0.0])  # flat index 0
    tags[0, 1, :, 0, 1] = torch.tensor([3.0, 0.0])  # flat index 3
    tags[0, 0, :, 0, 1] = torch.tensor([0.0, 2.0])  # flat index 1: person 1 alone
    joints = torch.zeros(1, 3, 2, 2, dtype=torch.int64)
    joints[0, 0, 0] = torch.tensor([0, 1])
    joints[0, 0, 1] = torch.tensor([3, 1])
    joints[0, 1, 0] = torch.tensor([1, 1])
    scales = torch.tensor([[0.25, 0.75, 0.0]], dtype=torch.float64)
    pull, push, coupling = multi_dim_ae_losses(tags, joints, scales)
    # person 0: mean (2, 0), pull 1; person 1: mean (0, 2), pull 0 -> 1 / 2
    assert pull.item() == pytest.approx(0.5)
    # one distance^2 of 8 each way: 0.5 * exp(-8)
    assert push.item() == pytest.approx(0.5 * math.exp(-8))
    # D = 2 bins (0.25, 0.75): codes are one-hot; |mean| directions are too -> cos 1
    assert coupling.item() == pytest.approx(0.0, abs=1e-9)
    swapped = torch.tensor([[0.75, 0.25, 0.0]], dtype=torch.float64)
    assert multi_dim_ae_losses(tags, joints, swapped)[2].item() == pytest.approx(1.0)
    # scale 0 for person 1: code (4, 4/3) normalised, direction (0, 1): 1 - 1/sqrt(10), / 2
    zero = torch.tensor([[0.25, 0.0, 0.0]], dtype=torch.float64)
    expected = (1 - 1 / math.sqrt(10)) / 2
    assert multi_dim_ae_losses(tags, joints, zero)[2].item() == pytest.approx(expected)
    none = multi_dim_ae_losses(tags, torch.zeros_like(joints), scales)
    assert all(t.item() == 0 for t in none)
