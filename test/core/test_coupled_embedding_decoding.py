"""Coupled Embedding decoding against the official CE test path (parity README §4.3, §4.4).

- grouping from the stored NMS candidates must give `grouped` exactly (real COCO / CrowdPose);
- the whole post-processing on the synthetic two-pass maps (candidates, grouping, adjust,
  refine, scores, back-projection; refine on and off);
- the whole test path on the real COCO and CrowdPose images through `PoseEstimator` (rebuilt
  weights): same people in the same order, keypoints within 1e-3 px, scores within 1e-5.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from official_weights import PARITY_DIR, REFERENCE_DIR, official_state_dict

import pose_core
from pose_core.codecs.coupled_embedding import (
    PassMaps,
    ce_aggregate,
    ce_back_project,
    ce_resize_align,
)
from pose_core.grouping.coupled_embedding import ce_joint_order, ce_match, parse_coupled_embedding
from pose_core.keypoint_specs import COCO_17

PIXEL_TOLERANCE = 1e-3
SCORE_TOLERANCE = 1e-5

PIPELINES = {
    "coco": (
        "ce_higherhrnet_w32_512_coco", "keys_ce_hrhrnet_w32_512_coco.json", 0,
        "ce_hrhrnet_w32_512_coco_pipeline_000000196141",
    ),
    "crowdpose": (
        "ce_higherhrnet_w48_640_crowdpose", "keys_ce_hrhrnet_w48_640_crowdpose.json", 1,
        "ce_hrhrnet_w48_640_crowdpose_pipeline_103319",
    ),
}


def _load(stem: str) -> tuple[dict, dict]:
    data = dict(np.load(os.path.join(PARITY_DIR, stem + ".npz")))
    with open(os.path.join(PARITY_DIR, stem + ".json"), encoding="utf-8") as handle:
        return data, json.load(handle)


@pytest.mark.parametrize("dataset", sorted(PIPELINES))
def test_matching_from_official_candidates_is_exact(dataset: str) -> None:
    data, meta = _load(PIPELINES[dataset][3])
    cfg = meta["eval_cfg"]
    assert tuple(cfg["inference_channel"]) == ce_joint_order(data["cand_val"].shape[0])
    people = ce_match(
        torch.from_numpy(data["cand_val"]), torch.from_numpy(data["cand_loc"]),
        torch.from_numpy(data["cand_tag"]), cfg["val_th"], cfg["tag_th"],
        cfg["inference_channel"],
    )
    grouped = torch.stack(people).numpy()
    assert grouped.shape == data["grouped"].shape
    np.testing.assert_array_equal(grouped, data["grouped"])


def _synthetic_passes() -> tuple[dict, list[PassMaps]]:
    data, _ = _load("ce_group_synthetic_coco_6people")
    heatmaps = torch.from_numpy(data["heatmaps"].astype(np.float32))
    tags = torch.from_numpy(data["tags"].astype(np.float32)).permute(0, 1, 4, 2, 3)
    return data, [PassMaps(heatmaps[:1], tags[:1], heatmaps[1:], tags[1:])]


@pytest.mark.parametrize("refine", [True, False])
def test_synthetic_post_processing(refine: bool) -> None:
    data, passes = _synthetic_passes()
    base = tuple(int(v) for v in data["base_size"])
    heatmaps, tags_of_joint = ce_aggregate(passes, 0, base, COCO_17.flip_index)
    result = parse_coupled_embedding(heatmaps, tags_of_joint, refine=refine)
    np.testing.assert_array_equal(result.val_k, data["cand_val"])
    np.testing.assert_array_equal(result.loc_k, data["cand_loc"])
    np.testing.assert_allclose(result.tag_k, data["cand_tag"], atol=1e-6)
    np.testing.assert_array_equal(result.grouped, data["grouped"])
    np.testing.assert_allclose(result.adjusted, data["adjusted"], atol=PIXEL_TOLERANCE)
    np.testing.assert_allclose(result.scores, data["scores"], atol=SCORE_TOLERANCE)
    expected = data["refined"] if refine else data["adjusted"]
    np.testing.assert_allclose(result.refined[..., :3], expected[..., :3], atol=PIXEL_TOLERANCE)
    final = ce_back_project(result.refined, data["center"], data["scale"], base)
    expected_final = data["final"] if refine else data["final_no_refine"]
    np.testing.assert_allclose(final, expected_final, atol=PIXEL_TOLERANCE)


def test_group_bottom_up_contract_on_synthetic_maps() -> None:
    data, passes = _synthetic_passes()
    base = tuple(int(v) for v in data["base_size"])
    heatmaps, tags_of_joint = ce_aggregate(passes, 0, base, COCO_17.flip_index)
    dense = torch.stack([tags_of_joint(j) for j in range(17)])  # (J, H, W, 16)
    poses = pose_core.group_bottom_up(
        heatmaps, dense, method="coupled_embedding", detection_threshold=0.1,
        tag_threshold=1.0, max_people=30, nms_kernel=5, refine=True,
        joint_order=tuple(range(17)),
    )
    np.testing.assert_allclose(poses.keypoints, data["refined"][..., :3], atol=PIXEL_TOLERANCE)
    np.testing.assert_allclose(poses.scores, data["scores"], atol=SCORE_TOLERANCE)
    # 8-D tags (no flip) are accepted as well
    eight = pose_core.group_bottom_up(heatmaps.numpy(), dense[..., :8].numpy(),
                                      method="coupled_embedding")
    assert eight.keypoints.shape[1:] == (17, 3) and len(eight) >= 1


def test_resize_align_rounds_the_centre_half_to_even() -> None:
    base, center, scale = ce_resize_align((429, 640), 512)
    assert base == (768, 512) and center == (320.0, 214.0)
    assert scale == pytest.approx((3.2175, 2.145))
    base, center, _ = ce_resize_align((640, 479), 640)  # portrait, odd width
    assert base == (640, 896) and center == (240.0, 320.0)


@pytest.mark.parametrize("dataset", sorted(PIPELINES))
def test_full_test_path_matches_official(dataset: str) -> None:
    name, keys, seed, stem = PIPELINES[dataset]
    data, meta = _load(stem)
    cfg = meta["eval_cfg"]
    weights = official_state_dict(os.path.join(REFERENCE_DIR, keys), seed)
    model = pose_core.build_model(name)
    pose_core.load_checkpoint(model, {"model": weights})
    from pose_core.inference.backends import TorchBackend

    estimator = pose_core.PoseEstimator(
        name, backend=TorchBackend(model.eval(), "cpu"), flip_test=True, scales=(1.0,),
        detection_threshold=cfg["val_th"], tag_threshold=cfg["tag_th"],
        max_people=cfg["max_num_people"], nms_kernel=cfg["nms_kernel_size"], refine=True,
    )
    prepared = estimator.codec.prepare(data["image_bgr"], None)
    assert prepared.frame.base_size_wh == tuple(int(v) for v in data["base_size"])
    np.testing.assert_allclose(prepared.frame.center, data["center"])
    np.testing.assert_allclose(prepared.frame.scale, data["scale"])
    if "s0_input" in data:
        np.testing.assert_array_equal(prepared.inputs[0].numpy(), data["s0_input"])
    poses = estimator(data["image_bgr"])
    assert poses.keypoints.shape == data["final"].shape
    np.testing.assert_allclose(poses.keypoints[..., :2], data["final"][..., :2],
                               atol=PIXEL_TOLERANCE)
    np.testing.assert_allclose(poses.keypoints[..., 2], data["final"][..., 2],
                               atol=SCORE_TOLERANCE)
    np.testing.assert_allclose(poses.scores, data["scores"], atol=SCORE_TOLERANCE)


def test_multi_scale_averages_heatmaps_and_keeps_scale_one_tags() -> None:
    torch.manual_seed(0)
    from pose_core.codecs import build_decoder
    from pose_core.codecs.base import TestOptions
    from pose_core.models import model_info

    info = model_info("ce_higherhrnet_lite_w16_256_coco")
    codec = build_decoder(info, None, TestOptions(scales=(0.5, 1.0)))
    assert codec.pass_scales == (1.0, 0.5)  # the official list starts with 1.0
    image = np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8)
    prepared = codec.prepare(image, None)
    assert [tuple(t.shape[-2:]) for t in prepared.inputs] == [(256, 384), (128, 192)]
    model = pose_core.build_model(info.name).eval()
    passes = []
    with torch.no_grad():
        for batch in prepared.inputs:
            outputs = model(batch)
            flipped = model(torch.flip(batch, [3]))
            passes.append(codec.merge(outputs, flipped, 0, None))
    heatmaps, tags_of_joint = ce_aggregate(passes, 0, (384, 256), COCO_17.flip_index)
    single, single_tags = ce_aggregate(passes[:1], 0, (384, 256), COCO_17.flip_index)
    low, _ = ce_aggregate(passes[1:], 0, (384, 256), COCO_17.flip_index)
    torch.testing.assert_close(heatmaps, (single + low) / 2)
    torch.testing.assert_close(tags_of_joint(3), single_tags(3))
    assert tags_of_joint(3).shape == (256, 384, 16)
    poses = codec.decode(passes, prepared, slice(0, 1), None)
    assert poses.keypoints.shape[1:] == (17, 3)


def test_refine_min_score_refines_only_the_people_scoring_that_much() -> None:
    data, passes = _synthetic_passes()
    base = tuple(int(v) for v in data["base_size"])
    heatmaps, tags_of_joint = ce_aggregate(passes, 0, base, COCO_17.flip_index)
    everyone = parse_coupled_embedding(heatmaps, tags_of_joint)
    threshold = float(np.median(everyone.scores))
    some = parse_coupled_embedding(heatmaps, tags_of_joint, refine_min_score=threshold)
    chosen = everyone.scores >= threshold
    assert chosen.any() and (~chosen).any()
    assert (everyone.refined[~chosen] != everyone.adjusted[~chosen]).any()
    np.testing.assert_array_equal(some.scores, everyone.scores)
    np.testing.assert_array_equal(some.refined[chosen], everyone.refined[chosen])
    np.testing.assert_array_equal(some.refined[~chosen], everyone.adjusted[~chosen])
