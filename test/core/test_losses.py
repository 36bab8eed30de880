"""Losses against the official values (parity fixture) and against a plain per-person loop.

Fixture: `parity_dir` / targets_higherhrnet_w32_512_coco.{npz,json}.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch

from pose_core.losses import BottomUpLoss, JointsMSELoss, ae_loss, joints_mse, masked_heatmap_mse

PARITY = "targets_higherhrnet_w32_512_coco"  # .npz and .json in parity_dir
RTOL = 1e-5  # float32 reductions in a different order than the official loops


@pytest.fixture(scope="module")
def ref(parity_dir: pathlib.Path) -> tuple[dict[str, torch.Tensor], dict]:
    with np.load(parity_dir / f"{PARITY}.npz") as data:
        arrays = {key: torch.from_numpy(data[key]) for key in data.files}
    losses = json.loads((parity_dir / f"{PARITY}.json").read_text())["losses"]
    return arrays, losses


def _inputs(arrays: dict[str, torch.Tensor]) -> tuple[list, list, list, torch.Tensor]:
    outputs = [arrays["pred_128"], arrays["pred_256"]]
    heatmaps = [arrays["heatmap_128"][None], arrays["heatmap_256"][None]]
    masks = [arrays["mask_128"], arrays["mask_256"]]
    joints = arrays["joints_idx_128"].long()[None]
    return outputs, heatmaps, masks, joints


def test_bottom_up_loss_equals_official(ref: tuple[dict[str, torch.Tensor], dict]) -> None:
    arrays, losses = ref
    terms = BottomUpLoss(17)(*_inputs(arrays))
    assert set(terms) == {"heatmaps_0", "heatmaps_1", "push", "pull"}
    for i in range(2):
        assert float(terms[f"heatmaps_{i}"]) == pytest.approx(losses["heatmaps"][i], rel=RTOL)
    assert float(terms["push"]) == pytest.approx(losses["push"][0], rel=RTOL)
    assert float(terms["pull"]) == pytest.approx(losses["pull"][0], rel=RTOL)


def test_ae_max_variant_equals_official(ref: tuple[dict[str, torch.Tensor], dict]) -> None:
    arrays, losses = ref
    outputs, _, _, joints = _inputs(arrays)
    push, pull = ae_loss(outputs[0][:, 17:].reshape(1, -1), joints, "max")
    assert float(push[0]) == pytest.approx(losses["push_max_type_unscaled"], rel=RTOL)
    assert float(pull[0]) == pytest.approx(losses["pull_max_type_unscaled"], rel=RTOL)


def _loop_ae(tags: torch.Tensor, joints: np.ndarray, loss_type: str) -> tuple:
    """Plain per-person reference written from HigherHRNet `lib/core/loss.py::AELoss.singleTagLoss`."""
    refs, pull = [], tags.new_zeros(())
    for person in joints:
        values = [tags[int(i)] for i, flag in person if flag > 0]
        if not values:
            continue
        stacked = torch.stack(values)
        refs.append(stacked.mean())
        pull = pull + ((stacked - refs[-1]) ** 2).mean()
    n = len(refs)
    if n == 0:
        return tags.new_zeros(()), tags.new_zeros(())
    if n == 1:
        return tags.new_zeros(()), pull / n
    r = torch.stack(refs)
    diff = r[None, :] - r[:, None]
    sim = torch.exp(-(diff**2)) if loss_type == "exp" else torch.clamp(1 - diff.abs(), min=0)
    return (sim.sum() - n) / (n * (n - 1)) * 0.5, pull / n


@pytest.mark.parametrize("loss_type", ["exp", "max"])
def test_ae_loss_values_and_gradients_match_loop(loss_type: str) -> None:
    gen = torch.Generator().manual_seed(0)
    length = 3 * 8 * 8
    joints = np.zeros((3, 5, 3, 2), dtype=np.int64)  # batch 3, 5 slots, 3 joints
    joints[0, 0, :2] = [[3, 1], [70, 1]]
    joints[0, 1, :3] = [[5, 1], [100, 1], [150, 1]]
    joints[0, 3, :1] = [[9, 1]]  # a non-contiguous slot is still a person
    joints[1, 2, :2] = [[11, 1], [80, 1]]  # one person: push 0
    # image 2: nobody
    tags = torch.randn(3, length, generator=gen, dtype=torch.float64, requires_grad=True)
    push, pull = ae_loss(tags, torch.from_numpy(joints), loss_type)
    (push.sum() + 2 * pull.sum()).backward()
    grad = tags.grad.clone()
    tags.grad = None
    total = tags.new_zeros(())
    for b in range(3):
        p, q = _loop_ae(tags[b], joints[b], loss_type)
        torch.testing.assert_close(push[b], p, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(pull[b], q, rtol=1e-12, atol=1e-12)
        total = total + p + 2 * q
    total.backward()
    torch.testing.assert_close(grad, tags.grad, rtol=1e-10, atol=1e-12)
    push, pull = push.detach(), pull.detach()
    assert float(push[1]) == 0.0 and float(push[2]) == 0.0 and float(pull[2]) == 0.0


def test_masked_heatmap_mse_counts_masked_pixels_in_denominator() -> None:
    pred = torch.ones(2, 3, 4, 4)
    gt = torch.zeros(2, 3, 4, 4)
    mask = torch.ones(2, 4, 4)
    mask[0, :2] = 0  # half the pixels masked in sample 0
    loss = masked_heatmap_mse(pred, gt, mask)
    torch.testing.assert_close(loss, torch.tensor([0.5, 1.0]), rtol=0, atol=1e-7)


def test_joints_mse_with_target_weight() -> None:
    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(2, 4, 8, 6, generator=gen)
    gt = torch.randn(2, 4, 8, 6, generator=gen)
    weight = torch.tensor([[[1.0], [0.0], [1.0], [0.5]], [[0.0], [1.0], [1.0], [1.0]]])
    # HRNet's form: per joint 0.5 * MSE(pred * w, gt * w), averaged over joints
    expected = sum(
        0.5 * torch.nn.functional.mse_loss(pred[:, j] * weight[:, j, :, None],
                                           gt[:, j] * weight[:, j, :, None])
        for j in range(4)
    ) / 4
    torch.testing.assert_close(joints_mse(pred, gt, weight), expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(JointsMSELoss(False)(pred, gt, weight), joints_mse(pred, gt))


def test_bottom_up_loss_rejects_wrong_resolution_count() -> None:
    with pytest.raises(ValueError, match="resolutions"):
        BottomUpLoss(17)(
            [torch.zeros(1, 34, 8, 8)], [torch.zeros(1, 17, 8, 8)], [], torch.zeros(1, 30, 17, 2)
        )


def test_ae_loss_with_vector_tags_matches_the_multi_dim_loss_and_reduces_to_1d() -> None:
    """D-dim AE tags (the tag2 experiment): the 'exp' loss equals Coupled Embedding's D-dim
    AE terms without the scale coupling; D = 1 and zero extra dimensions change nothing."""
    from pose_core.losses.ae_loss import ae_loss
    from pose_core.losses.coupled_embedding import multi_dim_ae_losses

    generator = torch.Generator().manual_seed(3)
    batch, joints_n, dim, height, width, people = 2, 5, 3, 6, 7, 4
    tags = torch.randn(batch, joints_n, dim, height, width, generator=generator,
                       dtype=torch.float64)
    index = torch.randint(0, height * width, (batch, people, joints_n), generator=generator)
    index = index + torch.arange(joints_n) * height * width  # joint j's map
    flag = (torch.rand(batch, people, joints_n, generator=generator) > 0.3).long()
    flag[1, 3] = 0  # an empty person slot
    joints = torch.stack([index, flag], dim=-1)
    flat = tags.permute(0, 1, 3, 4, 2).reshape(batch, -1, dim)
    push, pull = ae_loss(flat, joints, "exp")
    expected_pull, expected_push, _ = multi_dim_ae_losses(tags, joints, None)
    assert torch.allclose(pull.mean(), expected_pull) and torch.allclose(push.mean(), expected_push)
    one = flat[:, :, :1]
    padded = torch.cat([one, torch.zeros_like(flat[:, :, :2])], dim=2)
    for loss_type in ("exp", "max"):
        reference = ae_loss(one[:, :, 0], joints, loss_type)
        for variant in (one, padded):
            for got, want in zip(ae_loss(variant, joints, loss_type), reference):
                assert torch.allclose(got, want)
    # the 'max' type keeps a finite gradient with vector tags (the diagonal's zero distance)
    flat.requires_grad_(True)
    sum(ae_loss(flat, joints, "max")).sum().backward()
    assert torch.isfinite(flat.grad).all()


def test_bottom_up_loss_reads_joint_major_vector_tags() -> None:
    from pose_core.losses.bottom_up_loss import BottomUpLoss
    from pose_core.models.heads import HeadLayout

    head = HeadLayout.associative_embedding(3, 2, tag_dim=2)
    loss = BottomUpLoss(head, ae_loss_type="exp")
    tags = torch.arange(2 * 3 * 2 * 4 * 4, dtype=torch.float32).reshape(2, 6, 4, 4)
    flat = loss._flat_tags(tags)
    # joint 1, pixel (y=2, x=3), second value = channel 1 * 2 + 1
    assert flat[0, 1 * 16 + 2 * 4 + 3, 1] == tags[0, 3, 2, 3]
    assert flat.shape == (2, 3 * 16, 2)
