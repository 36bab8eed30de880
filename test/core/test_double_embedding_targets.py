"""Double Embedding targets and losses against the released generators / loss (fixture), and the
paper-mode target fixes on hand-made people."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pose_core.codecs.associative_embedding import encode_joint_indices
from pose_core.codecs.double_embedding_targets import encode_offsets, joints_with_centre
from pose_core.codecs.heatmap import HeatmapGenerator
from pose_core.losses.ae_loss import ae_loss
from pose_core.losses.double_embedding import DoubleEmbeddingLoss
from pose_core.models import model_info
from pose_core.models.double_embedding import DEM_PARTITIONS

COCO = DEM_PARTITIONS["coco"]


@pytest.fixture(scope="module")
def fixture(parity_dir: Path) -> tuple[dict, dict]:
    data = dict(np.load(parity_dir / "dem_targets_coco_w32_512.npz"))
    meta = json.loads((parity_dir / "dem_targets_coco_w32_512.json").read_text())
    return data, meta["losses"]


def test_targets_equal_release(fixture: tuple[dict, dict]) -> None:
    data, _ = fixture
    np.testing.assert_allclose(joints_with_centre(data["annotations_keypoints"]),
                               data["joints_128"], atol=1e-9)
    for r in (128, 256):
        joints = data[f"joints_{r}"]
        np.testing.assert_allclose(HeatmapGenerator(r, 18, 2.0)(joints), data[f"heatmap_{r}"],
                                   atol=1e-6)
        np.testing.assert_allclose(encode_offsets(joints, r, COCO), data[f"offsets_{r}"],
                                   atol=1e-6)
        np.testing.assert_array_equal(encode_joint_indices(joints, r, 30),
                                      data[f"joints_idx_{r}"])


def test_losses_equal_release(fixture: tuple[dict, dict]) -> None:
    data, expected = fixture
    loss = DoubleEmbeddingLoss(model_info("dem_higherhrnet_w32_512_coco").head_layout)

    def tensor(key: str) -> torch.Tensor:
        return torch.from_numpy(data[key])

    outputs = [tensor(f"loss_pred{i}") for i in range(4)]
    terms = loss.terms(
        outputs, [tensor("loss_heatmaps0"), tensor("loss_heatmaps1")],
        [tensor("loss_masks0"), tensor("loss_masks1")], tensor("loss_joints_idx0").long(),
        [tensor("loss_offsets0"), tensor("loss_offsets1")],
    )
    for stage in range(2):
        np.testing.assert_allclose(terms[f"heatmaps_{stage}"].numpy(),
                                   expected["heatmaps_per_image"][stage], rtol=1e-5)
        np.testing.assert_allclose(float(terms[f"offsets_{stage}"]), expected["offsets"][stage],
                                   rtol=1e-5)
    np.testing.assert_allclose(terms["push"].numpy(), expected["push_per_image"], rtol=1e-5)
    np.testing.assert_allclose(terms["pull"].numpy(), expected["pull_per_image"], rtol=1e-5)
    total = sum(float(v.mean()) for v in terms.values())
    assert total == pytest.approx(expected["total"], rel=1e-5)


def test_one_person_push_is_zero_not_nan(fixture: tuple[dict, dict]) -> None:
    """The release divides 0 by 0 (NaN); HigherHRNet and we return 0. The pull is the same."""
    data, expected = fixture
    one_person = torch.from_numpy(data["loss_joints_idx0"][1:2, :1]).long()
    tags = torch.from_numpy(data["loss_pred2"][0:1, 18:]).reshape(1, -1)
    push, pull = ae_loss(tags, one_person)
    assert math.isnan(expected["ae_one_person"]["push"]) and float(push) == 0.0
    assert float(pull) == pytest.approx(expected["ae_one_person"]["pull"], rel=1e-5)


def _person(points: dict[int, tuple[float, float, float]]) -> np.ndarray:
    person = np.zeros((17, 3))
    for joint, row in points.items():
        person[joint] = row
    return person


def test_paper_centre_ignores_unlabelled_coordinates() -> None:
    person = _person({5: (10, 10, 2), 6: (20, 10, 2), 0: (99, 99, 0)})
    np.testing.assert_allclose(joints_with_centre(person[None], release=False)[0, -1],
                               [15, 10, 1])
    np.testing.assert_allclose(joints_with_centre(person[None], release=True)[0, -1],
                               [(10 + 20 + 99) / 2, (10 + 10 + 99) / 2, 1])


def test_paper_checks_parent_visibility() -> None:
    """An unlabelled left shoulder at (0, 0): the release regresses the elbow towards (0, 0)."""
    person = _person({7: (20, 20, 2), 11: (20, 40, 2)})
    joints = joints_with_centre(person[None], release=False)
    release = encode_offsets(joints, 64, COCO, release=True)
    paper = encode_offsets(joints, 64, COCO, release=False)
    z = math.sqrt(2) * 64
    assert release[10, 20, 20] == pytest.approx(-20 / z)  # dy to (0, 0)
    assert paper[10, 20, 20] == 0.0
    np.testing.assert_allclose(paper[12:14, 20, 20], release[12:14, 20, 20])  # centre: same


def test_paper_averages_overlapping_limb_offsets() -> None:
    """Two people whose left-elbow squares overlap: the release keeps the second person's
    offset divided by 2; paper keeps the mean of the two."""
    a = _person({5: (20, 10, 2), 7: (20, 20, 2)})
    b = _person({5: (24, 10, 2), 7: (22, 20, 2)})
    joints = joints_with_centre(np.stack([a, b]), release=False)
    z = math.sqrt(2) * 64
    release = encode_offsets(joints, 64, COCO, release=True)
    paper = encode_offsets(joints, 64, COCO, release=False)
    pixel = (20, 21)  # (y, x) inside both squares
    dx_a, dx_b = (20 - 21) / z, (24 - 21) / z
    assert release[11][pixel] == pytest.approx(dx_b / 2, rel=1e-5)
    assert paper[11][pixel] == pytest.approx((dx_a + dx_b) / 2, rel=1e-5)
