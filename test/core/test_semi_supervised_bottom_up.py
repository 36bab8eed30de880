"""The bottom-up (HigherHRNet) semi-supervised extension: both resolutions' teacher maps move with
the image, cutout boxes sit on every person's peaks, no tag loss on unlabeled images, image label
subsets, bad configs, and a short run through the trainer that checkpoints and resumes."""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pose_core.data.coco import load_coco_keypoints
from pose_core.data.hard_views import HardViewRandom
from pose_core.data.semi_supervised_bottom_up import (
    image_label_subset,
    peak_cutout,
    teacher_peaks,
)
from pose_core.engine.checkpointing import load_training_checkpoint
from pose_core.engine.config import (
    ConfigError,
    SemiSupervisedBottomUpConfig,
    SemiSupervisedConfig,
    from_dict,
)
from pose_core.engine.semi_supervised import SECOND_NETWORK
from pose_core.engine.semi_supervised_bottom_up import semi_supervised_bottom_up_step
from pose_core.engine.tasks import build_task
from pose_core.engine.trainer import Trainer
from pose_core.keypoint_specs import COCO_17
from pose_core.losses import BottomUpLoss
from pose_core.models.heads import HeadLayout
from test_trainer import CPU

J = 3  # joints of the hand-made networks
HEAD = HeadLayout.associative_embedding(J)


class PoolNet(nn.Module):
    """A hand-made equivariant 'HigherHRNet': every heatmap channel is the image's first
    channel average-pooled to 1/4 and 1/2; tags come from a 1x1 conv at 1/4, and the 1/2 output
    does not depend on them (so a tag gradient can only come from a tag loss)."""

    def __init__(self) -> None:
        super().__init__()
        self.heat_scale = nn.Parameter(torch.ones(()))
        self.tag_conv = nn.Conv2d(3, J, 1)

    def forward(self, x: Tensor) -> list[Tensor]:
        quarter = F.avg_pool2d(x, 4)
        half = F.avg_pool2d(x, 2)
        heat4 = (quarter[:, :1] * self.heat_scale).expand(-1, J, -1, -1)
        heat2 = (half[:, :1] * self.heat_scale).expand(-1, J, -1, -1)
        return [torch.cat([heat4, self.tag_conv(quarter)], 1), heat2]


def _blob(hw: tuple[int, int], xy: tuple[float, float], sigma: float) -> Tensor:
    ys, xs = torch.meshgrid(torch.arange(hw[0], dtype=torch.float32),
                            torch.arange(hw[1], dtype=torch.float32), indexing="ij")
    return torch.exp(-((xs - xy[0]) ** 2 + (ys - xy[1]) ** 2) / (2 * sigma**2))


def _centroid(heatmap: Tensor) -> np.ndarray:
    """(x, y) weighted centre of the pixels above half the maximum."""
    h = heatmap.detach().double()
    h = torch.where(h >= 0.5 * h.max(), h, torch.zeros_like(h))
    ys, xs = torch.meshgrid(torch.arange(h.shape[0], dtype=torch.float64),
                            torch.arange(h.shape[1], dtype=torch.float64), indexing="ij")
    return np.array([float((h * xs).sum() / h.sum()), float((h * ys).sum() / h.sum())])


def _batch(unlabeled: Tensor, side: int = 64) -> dict:
    n = unlabeled.shape[0]
    generator = torch.Generator().manual_seed(3)
    cells = (side // 4) ** 2
    joints = torch.zeros(n, 2, J, 2, dtype=torch.int64)  # AE (flat index into (J, h, w), flag)
    for person, cell in enumerate((3 * side // 4 + 3, 10 * side // 4 + 9)):
        joints[:, person, :, 0] = torch.arange(J) * cells + cell
        joints[:, person, :, 1] = 1
    return {
        "image": torch.randn(n, 3, side, side, generator=generator),
        "heatmaps": [torch.rand(n, J, side // 4, side // 4, generator=generator),
                     torch.rand(n, J, side // 2, side // 2, generator=generator)],
        "masks": [torch.ones(n, side // 4, side // 4), torch.ones(n, side // 2, side // 2)],
        "joints": joints,
        "unlabeled_image": unlabeled,
    }


def _step(networks, batch, method="posecons", cutout=0, seed=0, record=None):
    def forward(net: nn.Module, x: Tensor) -> list[Tensor]:
        outputs = net(x)
        if record is not None:
            record.append((x, outputs))
            for o in outputs:
                if o.requires_grad:
                    o.retain_grad()
        return outputs

    return semi_supervised_bottom_up_step(
        networks, batch, SemiSupervisedConfig(method=method, joint_cutout=cutout),
        SemiSupervisedBottomUpConfig(), HEAD, BottomUpLoss(HEAD), (1.0, 1.0),
        HardViewRandom.from_seed(seed), forward)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_warp_moves_both_resolutions_teacher_maps_with_the_image(seed: int) -> None:
    rng = np.random.default_rng(seed)
    side = 128
    # input pixels (x, y), 25-40 px from the centre: far enough that a wrong theta at either
    # resolution moves the peak, close enough to stay inside after any hard affine
    angle, radius = rng.uniform(0, 2 * np.pi), rng.uniform(25, 40)
    joint = side / 2 - 0.5 + radius * np.array([np.cos(angle), np.sin(angle)])
    image = _blob((side, side), tuple(joint), 4.0).expand(1, 3, side, side).contiguous()
    step = _step([PoolNet()], _batch(image, side), seed=seed)
    identity = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    assert step.theta is not None and (step.theta - identity).abs().max() > 0.05
    hard_peak = _centroid(step.hard_images[0][0, 0])
    for resolution, stride in enumerate((4, 2)):
        target = step.teacher_targets[0][resolution][0, 0]
        assert target.shape[-1] == side // stride
        expected = (hard_peak + 0.5) / stride - 0.5  # same normalised point at this stride
        assert np.abs(_centroid(target) - expected).max() <= 0.5


def _two_people_maps(side: int = 32) -> tuple[Tensor, np.ndarray]:
    rng = np.random.default_rng(7)
    people = np.stack([rng.uniform(3, 13, size=(17, 2)), rng.uniform(19, 29, size=(17, 2))])
    people = np.round(people)
    maps = torch.zeros(1, 17, side, side)
    for person in people:
        for j, (x, y) in enumerate(person):
            maps[0, j] = torch.maximum(maps[0, j], _blob((side, side), (x, y), 1.0))
    maps[0, 4] = torch.maximum(maps[0, 4], 0.05 * _blob((side, side), (16, 2), 1.0))  # weak
    return maps, people


def test_cutout_boxes_land_on_all_peoples_peaks() -> None:
    maps, people = _two_people_maps()
    stride = 4
    peaks = teacher_peaks(maps, 5, 0.1)
    found = {tuple(p[:2].tolist()) for p in peaks[0].reshape(-1, 3) if torch.isfinite(p[2])}
    assert found == {tuple(p) for p in people.reshape(-1, 2).tolist()}  # both, not the weak one
    images = torch.ones(1, 3, 32 * stride, 32 * stride)
    cut = peak_cutout(images, maps, 5, HardViewRandom.from_seed(0))
    candidates = cut.candidates[0].numpy()
    assert {tuple(c) for c in (candidates / stride).tolist()} == found
    assert len(cut.rectangles[0]) == 5 * 2  # 5 per estimated person, two people
    rebuilt = torch.ones_like(images)
    for pick, centre, (x0, y0, x1, y1) in zip(cut.picks[0], cut.centres[0], cut.rectangles[0]):
        offset = centre.numpy() - candidates[int(pick)]  # the N(0, 10) jitter, truncated
        assert np.abs(offset).max() <= 45
        for low, high, c in ((x0, x1, int(centre[0])), (y0, y1, int(centre[1]))):
            if 0 < low and high < 128:  # unclamped: the paper's half-sizes 10..19
                assert 10 <= c - low <= 19 and high - c == c - low
        rebuilt[0, :, int(y0):int(y1), int(x0):int(x1)] = 0
    assert torch.equal(cut.images, rebuilt)  # exactly the rectangles are zeroed
    many = peak_cutout(images, maps, 200, HardViewRandom.from_seed(1))
    picked = many.candidates[0][many.picks[0]] / stride
    for person in people:  # every person's joints are occluded, not only the strongest
        hits = [(torch.tensor(p, dtype=torch.float32) == picked).all(1).any() for p in person]
        assert sum(bool(h) for h in hits) >= 15


def test_untrained_teacher_proposes_no_cutout() -> None:
    images = torch.ones(2, 3, 64, 64)
    cut = peak_cutout(images, torch.full((2, 17, 16, 16), 0.01), 5, HardViewRandom.from_seed(0))
    assert torch.equal(cut.images, images) and all(len(r) == 0 for r in cut.rectangles)


def test_tag_loss_only_on_labeled_images() -> None:
    torch.manual_seed(0)
    net = PoolNet()
    unlabeled = torch.randn(2, 3, 64, 64)
    record: list = []
    batch = _batch(unlabeled)
    step = _step([net], batch, record=record)
    assert {"sup_net1", "tags_net1", "cons_net1"} <= set(step.losses)
    total = sum(v for k, v in step.losses.items() if not k.startswith("monitor/"))
    total.backward()
    labeled_pass, hard_pass = record[0], record[2]  # labeled, easy (no grad), hard
    assert labeled_pass[0] is batch["image"]
    tag_grad = lambda outputs: outputs[0].grad[:, J:]  # noqa: E731
    assert tag_grad(labeled_pass[1]).abs().sum() > 0
    assert torch.count_nonzero(tag_grad(hard_pass[1])) == 0
    assert hard_pass[1][0].grad[:, :J].abs().sum() > 0  # heatmaps are taught on the hard view
    # the tag term does not see the unlabeled images at all
    other = _step([net], _batch(torch.randn(2, 3, 64, 64)))
    assert float(other.losses["tags_net1"].detach()) == float(step.losses["tags_net1"].detach())
    assert float(other.losses["cons_net1"].detach()) != float(step.losses["cons_net1"].detach())


def test_posedual_cross_teaches_and_cuts_around_the_other_networks_peaks() -> None:
    torch.manual_seed(0)
    nets = [PoolNet(), PoolNet()]
    with torch.no_grad():
        nets[1].heat_scale.fill_(3.0)  # net2's peaks pass the threshold, net1's do not
    image = _blob((64, 64), (30.0, 34.0), 3.0).expand(2, 3, 64, 64).contiguous() * 0.05
    step = _step(nets, _batch(image), method="posedual", cutout=5)
    assert len(step.cutouts[0].rectangles[0]) > 0  # hard_1 cut around net2's peaks
    assert len(step.cutouts[1].rectangles[0]) == 0  # net1's maps stay under 0.1
    assert step.teacher_targets[0][0].max() > step.teacher_targets[1][0].max()  # net2 teaches net1


def test_image_label_subsets_follow_the_images_list(fixtures_dir) -> None:
    records = load_coco_keypoints(fixtures_dir / "coco" / "test_coco.json", COCO_17,
                                  image_dir=fixtures_dir / "coco")
    assert [r.image_id for r in image_label_subset(records, 2, "k")] == [785, 40083]
    assert len(image_label_subset(records, 0, "k")) == 4
    with pytest.raises(ValueError, match="k=5 exceeds the 4 images"):
        image_label_subset(records, 5, "k")


def _config(fixtures_dir: pathlib.Path, tmp: pathlib.Path, **semi: object):
    annotations = str(fixtures_dir / "coco" / "test_coco.json")
    images = str(fixtures_dir / "coco")
    return from_dict({
        "name": "semi_bu_test", "task": "semi_supervised_bottom_up",
        "model": {"name": "higherhrnet_lite_w16_256_coco"},
        "data": {"train_annotations": annotations, "train_images": images,
                 "unlabeled_annotations": annotations, "unlabeled_images": images,
                 "val_annotations": annotations, "val_images": images, "val_max_images": 1,
                 "input_size": [64]},
        "semi_supervised": {"method": "posedual", "joint_cutout": 5, **semi},
        "semi_supervised_bottom_up": {"num_labeled_images": 2, "peak_threshold": 0.0},
        "validation": {"every_epochs": 0, "flip_test": False}, "epochs": 2, "batch_size": 2,
        "max_steps_per_epoch": 2, "num_threads": 1, "device": "cpu", "log_every": 1,
        "keep_checkpoints": 0, "output_dir": str(tmp),
    })


def test_resumed_bottom_up_posedual_run_continues_both_networks(fixtures_dir, tmp_path) -> None:
    config = _config(fixtures_dir, tmp_path)
    whole = Trainer(config, build_task(config), tmp_path / "whole", context=CPU)
    assert set(whole.networks) == {"model", SECOND_NETWORK}
    whole_result = whole.train(resume=False)
    first = Trainer(dataclasses.replace(config, epochs=1), build_task(config),
                    tmp_path / "split", context=CPU)
    first.train(resume=False)
    payload = load_training_checkpoint(tmp_path / "split" / "last.pt")
    assert set(payload["networks"]) == {SECOND_NETWORK}
    assert len(payload["optimizer"]["state"]) == len(list(first._parameters()))
    resumed = Trainer(config, build_task(config), tmp_path / "split", context=CPU)
    assert resumed.resume() and resumed.epoch == 1
    result = resumed.train(resume=False)
    assert result.losses == pytest.approx(whole_result.losses[len(result.losses) * -1:],
                                          rel=1e-5)
    for key in ("model", SECOND_NETWORK):
        for a, b in zip(whole.networks[key].parameters(), resumed.networks[key].parameters()):
            assert torch.allclose(a, b, atol=1e-6)
    header = (tmp_path / "split" / "train_log.csv").read_text().splitlines()[0].split(",")
    for column in ("sup_net1", "tags_net2", "cons_net1", "cons_net2", "monitor/collapse_net1",
                   "monitor/collapse_net2_r1"):
        assert column in header
    scores = build_task(config).validate(whole.networks["model"], torch.device("cpu"))
    assert scores is not None and "AP" in scores


def test_bad_bottom_up_configs_fail_before_training_naming_the_key(
    fixtures_dir, tmp_path
) -> None:
    config = _config(fixtures_dir, tmp_path)
    with pytest.raises(ConfigError, match="semi_supervised.num_labels"):
        build_task(dataclasses.replace(config, semi_supervised=dataclasses.replace(
            config.semi_supervised, num_labels=4)))
    missing = dataclasses.replace(config, data=dataclasses.replace(
        config.data, unlabeled_annotations=""))
    with pytest.raises(ConfigError, match="data.unlabeled_annotations"):
        build_task(missing)
    too_many = dataclasses.replace(config, semi_supervised_bottom_up=dataclasses.replace(
        config.semi_supervised_bottom_up, num_labeled_images=5))
    with pytest.raises(ConfigError, match="semi_supervised_bottom_up.num_labeled_images=5"):
        Trainer(too_many, build_task(too_many), tmp_path / "b", context=CPU)
    assert not (tmp_path / "b" / "last.pt").exists()
