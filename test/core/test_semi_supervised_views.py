"""Hard views and losses of the semi-supervised study against the official fixtures, plus the
geometric properties the method relies on.

Fixtures (shared/reference/parity, README §6): `semi_joint_cutout` (bit-exact), `semi_losses`
(1e-6), `semi_posecons_step_seed0` / `semi_posedual_step_seed0` (theta exact, warps and hard
images 1e-5, losses relative 1e-4).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from official_weights import PARITY_DIR, REFERENCE_DIR, official_state_dict

from pose_core.data.hard_views import (
    CutoutDraws,
    HardAffineDraws,
    HardViewRandom,
    apply_joint_cutout,
    argmax_joints,
    draw_hard_affine,
    hard_affine_theta,
    hard_point_map,
    joint_cutout,
    warp_with_theta,
)
from pose_core.engine.config import SemiSupervisedConfig
from pose_core.engine.semi_supervised import semi_supervised_step
from pose_core.keypoint_specs import COCO_17_TO_UNION_24
from pose_core.losses.consistency import consistency_losses, supervised_loss
from pose_core.losses.heatmap_loss import joints_mse
from pose_core.models.checkpoint import load_strict
from pose_core.models.simple_baseline import semi_supervised_state_dict, simple_baseline_resnet18


def _fixture(name: str) -> dict[str, np.ndarray]:
    return dict(np.load(os.path.join(PARITY_DIR, name)))


def test_joint_cutout_release_matches_official_bit_for_bit() -> None:
    fx = _fixture("semi_joint_cutout.npz")
    image, joints = torch.from_numpy(fx["image"]), torch.from_numpy(fx["joints"])
    draws = CutoutDraws(torch.from_numpy(fx["draw_jitter"]),
                        torch.from_numpy(fx["draw_half_size"]).long(),
                        torch.from_numpy(fx["draw_channels"]))
    expected = torch.from_numpy(fx["output"])
    assert torch.equal(apply_joint_cutout(image, joints, draws, release=True), expected)
    # the same draws come out of the seeded streams (official: torch / numpy seeded 0)
    seeded = joint_cutout(image, joints, 5, HardViewRandom.from_seed(0), release=True)
    assert torch.equal(seeded, expected)
    # paper behaviour differs only where the swapped clamp mattered
    corrected = apply_joint_cutout(image, joints, draws, release=False)
    assert (corrected == 0).sum() >= (expected == 0).sum()


def test_cutout_rectangles_land_on_the_joints_with_the_paper_sizes() -> None:
    height, width = 256, 192
    joints = torch.tensor([[[100.0, 240.0], [20.0, 30.0], [150.0, 128.0]]])
    zero_jitter = torch.zeros(1, 3, 2)
    half = torch.tensor([[[10, 19], [12, 15], [19, 10]]])
    for channel in range(3):
        draws = CutoutDraws(zero_jitter, half, torch.tensor([[channel]]))
        out = apply_joint_cutout(torch.ones(1, 1, height, width), joints, draws)
        ys, xs = torch.nonzero(out[0, 0] == 0, as_tuple=True)
        cx, cy = (int(v) for v in joints[0, channel])
        hx, hy = (int(v) for v in half[0, channel])
        assert int(xs.min()) == max(cx - hx, 0) and int(xs.max()) == min(cx + hx, width) - 1
        assert int(ys.min()) == max(cy - hy, 0) and int(ys.max()) == min(cy + hy, height) - 1
    # release clamps y to the width (192): the joint at y = 240 is not occluded at all
    draws = CutoutDraws(zero_jitter, half, torch.tensor([[0]]))
    assert (apply_joint_cutout(torch.ones(1, 1, height, width), joints, draws, release=True)
            == 0).sum() == 0
    # drawn sizes and centres: half-sizes in [10, 19], centres within 5 sigma of the joint,
    # channels among the labelled ones (paper) or any channel (release)
    rng = HardViewRandom.from_seed(3)
    from pose_core.data.hard_views import draw_joint_cutout

    draws = draw_joint_cutout(200, 24, 5, rng, candidate_channels=COCO_17_TO_UNION_24)
    assert int(draws.half_size.min()) == 10 and int(draws.half_size.max()) == 19
    assert set(draws.channels.flatten().tolist()) <= set(COCO_17_TO_UNION_24)
    assert float(draws.jitter.abs().max()) * 10 < 50
    release = draw_joint_cutout(200, 24, 5, rng)
    assert set(release.channels.flatten().tolist()) - set(COCO_17_TO_UNION_24)


def test_cutout_size_scale_shrinks_jitter_and_half_sizes_for_small_crops() -> None:
    joints = torch.tensor([[[24.0, 32.0]]])  # centre of a 64x48 crop
    jitter = torch.tensor([[[1.0, -2.0]]])  # 10 px and -20 px at scale 1
    draws = CutoutDraws(jitter, torch.tensor([[[10, 19]]]), torch.tensor([[0]]))
    out = apply_joint_cutout(torch.ones(1, 1, 64, 48), joints, draws, size_scale=0.25)
    ys, xs = torch.nonzero(out[0, 0] == 0, as_tuple=True)
    # centre (24 + 2.5, 32 - 5) truncated to (26, 27); half-sizes round(2.5) = 2, round(4.75) = 5
    assert (int(xs.min()), int(xs.max()) + 1) == (26 - 2, 26 + 2)
    assert (int(ys.min()), int(ys.max()) + 1) == (27 - 5, 27 + 5)
    full = apply_joint_cutout(torch.ones(1, 1, 64, 48), joints, draws, size_scale=1.0)
    assert torch.equal(full, apply_joint_cutout(torch.ones(1, 1, 64, 48), joints, draws))
    assert int((full == 0).sum()) > 4 * int((out == 0).sum())


def _blob(size_hw: tuple[int, int], centre_xy: tuple[float, float], sigma: float) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size_hw[0], dtype=torch.float64),
                            torch.arange(size_hw[1], dtype=torch.float64), indexing="ij")
    d2 = (xs - centre_xy[0]) ** 2 + (ys - centre_xy[1]) ** 2
    return torch.exp(-d2 / (2 * sigma**2)).float()


def _centroid(values: torch.Tensor) -> np.ndarray:
    values = values.double().clamp_min(0)
    values = torch.where(values > 0.5 * values.max(), values, torch.zeros_like(values))
    ys, xs = torch.meshgrid(torch.arange(values.shape[0], dtype=torch.float64),
                            torch.arange(values.shape[1], dtype=torch.float64), indexing="ij")
    total = values.sum()
    return np.array([float((xs * values).sum() / total), float((ys * values).sum() / total)])


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_hard_warp_moves_teacher_heatmaps_exactly_with_the_image(seed: int) -> None:
    rng = np.random.default_rng(seed)
    image_hw, stride = (256, 192), 4
    heatmap_hw = (64, 48)
    joint = rng.uniform([60, 70], [130, 190])  # image pixels (x, y)
    on_heatmap = (joint + 0.5) / stride - 0.5  # same normalised point (align_corners False)
    image = _blob(image_hw, tuple(joint), 8.0)[None, None]
    heatmap = _blob(heatmap_hw, tuple(on_heatmap), 2.0)[None, None]
    theta = hard_affine_theta(HardAffineDraws(np.array([rng.uniform(0.75, 1.25)]),
                                              np.array([rng.uniform(-60, 60)])))
    warped_image = warp_with_theta(image, theta)[0, 0]
    warped_heatmap = warp_with_theta(heatmap, theta)[0, 0]
    image_peak = _centroid(warped_image)
    heatmap_peak = _centroid(warped_heatmap)
    assert np.abs((image_peak + 0.5) / stride - 0.5 - heatmap_peak).max() <= 0.5
    predicted = hard_point_map(on_heatmap[None], theta[0].numpy(), heatmap_hw[::-1])[0]
    assert np.abs(predicted - heatmap_peak).max() <= 0.5


def test_hard_affine_draws_follow_the_official_stream() -> None:
    for name in ("semi_posecons_step_seed0", "semi_posedual_step_seed0"):
        with open(os.path.join(PARITY_DIR, name + ".json"), encoding="utf-8") as handle:
            recorded = json.load(handle)["affine_draws"]
        theta = hard_affine_theta(HardAffineDraws(np.array([d["s"] for d in recorded]),
                                                  np.array([d["r_deg"] for d in recorded])))
        assert torch.equal(theta, torch.from_numpy(_fixture(name + ".npz")["theta"]))
    draws = draw_hard_affine(2000, HardViewRandom.from_seed(1))
    assert draws.scale.min() >= 0.75 and draws.scale.max() <= 1.25
    assert np.abs(draws.rotation_deg).max() <= 60
    assert 0.75 < float((draws.rotation_deg != 0).mean()) < 0.85


def test_argmax_joints_are_official_integer_peaks_times_stride() -> None:
    heatmaps = torch.zeros(1, 2, 8, 6)
    heatmaps[0, 0, 5, 3] = 1.0
    heatmaps[0, 1, 0, 0] = 1.0
    assert argmax_joints(heatmaps, 4).tolist() == [[[12.0, 20.0], [0.0, 0.0]]]


def test_losses_match_official_criteria() -> None:
    fx = {k: torch.from_numpy(v) for k, v in _fixture("semi_losses.npz").items()}
    assert abs(float(joints_mse(fx["sup_ht1"], fx["sup_target"], fx["sup_weight"]))
               - float(fx["jointsmse_sup_ht1"])) <= 1e-6
    assert abs(float(joints_mse(fx["sup_ht1"], fx["sup_target"]))
               - float(fx["jointsmse_sup_ht1_no_weight"])) <= 1e-6
    dual_pose = supervised_loss([fx["sup_ht1"], fx["sup_ht2"]], fx["sup_target"],
                                fx["sup_weight"])
    dual_cons = sum(consistency_losses([fx["cons_ht1"], fx["cons_ht2"]],
                                       [fx["unsup_ht_trans2"], fx["unsup_ht_trans1"]],
                                       fx["unsup_weight"]))
    cons_pose = supervised_loss([fx["sup_ht1"]], fx["sup_target"], fx["sup_weight"])
    cons_cons = consistency_losses([fx["cons_ht1"]], [fx["unsup_ht_trans1"]],
                                   fx["unsup_weight"])[0]
    for value, key in ((dual_pose, "posedual_loss_pose"), (dual_cons, "posedual_loss_cons"),
                       (dual_pose + dual_cons, "posedual_loss"),
                       (cons_pose, "posecons_loss_pose"), (cons_cons, "posecons_loss_cons"),
                       (cons_pose + cons_cons, "posecons_loss")):
        assert abs(float(value) - float(fx[key])) <= 1e-6, key


@pytest.fixture(scope="module")
def official_networks() -> list[torch.nn.Module]:
    state = official_state_dict(
        os.path.join(REFERENCE_DIR, "keys_semi_posedual_res18_256x192.json"), 0)
    networks = []
    for network in (1, 2):
        model = simple_baseline_resnet18().eval()
        load_strict(model, semi_supervised_state_dict(state, network))
        networks.append(model)
    return networks


@pytest.mark.parametrize("method", ["posecons", "posedual"])
def test_training_step_matches_the_official_forward(method, official_networks) -> None:
    name = f"semi_{method}_step_seed0"
    fx = _fixture(name + ".npz")
    with open(os.path.join(PARITY_DIR, name + ".json"), encoding="utf-8") as handle:
        expected = json.load(handle)["losses_float32"]
    inputs = torch.from_numpy(_fixture("semi_res18_256x192_forward_seed0.npz")["input"])
    batch = {"image": inputs, "target": torch.from_numpy(fx["sup_target"]),
             "target_weight": torch.from_numpy(fx["sup_weight"]), "unlabeled_image": inputs,
             "unlabeled_weight": torch.from_numpy(fx["unsup_weight"])}
    options = SemiSupervisedConfig(method=method, joint_cutout=5, release=True)
    networks = official_networks[:1] if method == "posecons" else official_networks
    with torch.no_grad():
        step = semi_supervised_step(networks, batch, options, COCO_17_TO_UNION_24,
                                    HardViewRandom.from_seed(0), lambda net, x: net(x))
    assert torch.equal(step.theta, torch.from_numpy(fx["theta"]))
    if method == "posecons":
        pairs = [(step.hard_images[0], "hard_image"), (step.teacher_targets[0], "unsup_ht_trans")]
    else:
        pairs = [(step.hard_images[0], "hard_image_net1"),
                 (step.hard_images[1], "hard_image_net2"),
                 (step.teacher_targets[0], "unsup_ht_trans2"),
                 (step.teacher_targets[1], "unsup_ht_trans1")]
    for value, key in pairs:
        assert float((value - torch.from_numpy(fx[key])).abs().max()) <= 1e-5, key
    pose = sum(float(v) for k, v in step.losses.items() if k.startswith("sup_"))
    cons = sum(float(v) for k, v in step.losses.items() if k.startswith("cons_"))
    for value, key in ((pose, "loss_pose"), (cons, "loss_cons"), (pose + cons, "loss")):
        assert abs(value - expected[key]) <= 1e-4 * abs(expected[key]), key
