"""Semi-supervised training: label subsets on the real COCO sample, the paired dataset, each
variant's loss on a hand-made batch, a resumed PoseDual run, and configs that must fail early."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil

import pytest
import torch
from torch import nn

from pose_core.data.coco import load_coco_keypoints
from pose_core.data.hard_views import HardViewRandom, warp_with_theta
from pose_core.data.semi_supervised import SemiSupervisedDataset, label_subset
from pose_core.data.top_down_dataset import instances_from_records
from pose_core.engine.checkpointing import load_training_checkpoint
from pose_core.engine.config import ConfigError, SemiSupervisedConfig, from_dict
from pose_core.engine.semi_supervised import SECOND_NETWORK, semi_supervised_step
from pose_core.engine.tasks import build_task
from pose_core.engine.trainer import Trainer
from pose_core.keypoint_specs import COCO_17, COCO_17_TO_UNION_24
from pose_core.losses.heatmap_loss import joints_mse
from test_trainer import CPU

# (image_id, annotation area) of the 12 instances left by the top-down filter, in the order of
# the `images` list then the file: the 0-keypoint annotations 1202706 and 508900 are dropped.
COCO_SAMPLE_ORDER = [
    (785, 27789.11055), (40083, 11025.219), (40083, 10171.9544), (196141, 17123.92955),
    (196141, 2789.0208), (196141, 21608.94075), (196141, 1870.14015), (197388, 14250.29385),
    (197388, 3404.869), (197388, 8913.98475), (197388, 14267.20475), (197388, 8260.75085),
]


def _coco_instances(fixtures_dir: pathlib.Path) -> list:
    records = load_coco_keypoints(fixtures_dir / "coco" / "test_coco.json", COCO_17,
                                  image_dir=fixtures_dir / "coco")
    return instances_from_records(records, 192 / 256)


def test_label_subsets_are_the_first_instances_in_annotation_order(fixtures_dir) -> None:
    instances = _coco_instances(fixtures_dir)
    assert [(i.image_id, round(i.area, 4)) for i in instances] == [
        (a, round(b, 4)) for a, b in COCO_SAMPLE_ORDER]
    for count in (1, 5, 12):
        chosen = label_subset(instances, count)
        assert [(i.image_id, i.area) for i in chosen] == [
            (i.image_id, i.area) for i in instances[:count]]
    assert len(label_subset(instances, 0)) == 12
    with pytest.raises(ValueError, match="semi_supervised.num_labels=13 exceeds the 12"):
        label_subset(instances, 13, "semi_supervised.num_labels")


class _ListDataset:
    def __init__(self, items: list[dict]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def test_pairs_resample_labels_with_replacement_and_scatter_union_channels() -> None:
    labeled = _ListDataset([{"image": torch.full((3, 8, 8), float(i)),
                             "target": torch.full((17, 2, 2), float(i + 1)),
                             "target_weight": torch.ones(17, 1)} for i in range(3)])
    unlabeled = _ListDataset([{"image": torch.zeros(3, 8, 8)} for _ in range(40)])
    dataset = SemiSupervisedDataset(labeled, unlabeled, COCO_17_TO_UNION_24, 24, seed=0)
    assert len(dataset) == 40  # an epoch is the unlabeled pool
    drawn = [dataset.labeled_index(i) for i in range(40)]
    assert set(drawn) == {0, 1, 2}  # with replacement: every item, many times
    dataset.set_epoch(1)
    assert [dataset.labeled_index(i) for i in range(40)] != drawn  # re-drawn each epoch
    sample = dataset[5]
    source = int(sample["image"][0, 0, 0])
    untrained = sorted(set(range(24)) - set(COCO_17_TO_UNION_24))
    assert untrained == [0, 7, 8, 9, 10, 12, 13]
    assert float(sample["target_weight"][untrained].abs().sum()) == 0
    assert float(sample["unlabeled_weight"][untrained].abs().sum()) == 0
    assert float(sample["unlabeled_weight"].sum()) == 17
    assert torch.all(sample["target"][11] == source + 1)  # the nose channel


def test_a_labeled_item_drawn_twice_in_an_epoch_is_augmented_afresh(fixtures_dir) -> None:
    """With one labeled crop every pair holds it; each pair augments it with its own stream
    (the paper's loader augments on every use), deterministically per (epoch, pair)."""
    from pose_core.data.top_down_dataset import TopDownDataset

    instances = _coco_instances(fixtures_dir)
    labeled = TopDownDataset(instances[:1], COCO_17, image_wh=(48, 64), heatmap_wh=(12, 16))
    unlabeled = _ListDataset([{"image": torch.zeros(3, 64, 48)} for _ in range(4)])
    dataset = SemiSupervisedDataset(labeled, unlabeled, COCO_17_TO_UNION_24, 24, seed=0)
    images = [dataset[i]["image"] for i in range(4)]
    assert all(dataset.labeled_index(i) == 0 for i in range(4))
    for i in range(4):
        for j in range(i + 1, 4):
            assert not torch.equal(images[i], images[j]), (i, j)
    assert torch.equal(dataset[2]["image"], images[2])  # same epoch and pair: same draw
    assert torch.equal(labeled[0]["image"], labeled.draw(0)["image"])  # plain indexing unchanged


def _tiny(seed: int) -> nn.Module:
    """A stride-4 heatmap network small enough to reason about: 4x4 average pool + 1x1 conv."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.AvgPool2d(4), nn.Conv2d(3, 3, 1))


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return {
        "image": torch.rand(2, 3, 16, 12, generator=generator),
        "target": torch.rand(2, 3, 4, 3, generator=generator),
        "target_weight": torch.tensor([[[1.0], [0.0], [1.0]], [[1.0], [1.0], [0.0]]]),
        "unlabeled_image": torch.rand(2, 3, 16, 12, generator=generator),
        "unlabeled_weight": torch.tensor([[[1.0], [1.0], [0.0]]] * 2),
    }


def _by_hand(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> float:
    total = 0.0
    for j in range(pred.shape[1]):
        diff = weight[:, j, :, None] * pred[:, j] - weight[:, j, :, None] * target[:, j]
        total += 0.5 * float((diff**2).mean())
    return total / pred.shape[1]


def _forward(network: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    return network(inputs)


@pytest.mark.parametrize("method", ["supervised", "posecons", "posedual", "naive_consistency"])
def test_each_variant_loss_on_a_hand_made_batch(method: str) -> None:
    batch = _batch()
    networks = [_tiny(0), _tiny(1)] if method == "posedual" else [_tiny(0)]
    options = SemiSupervisedConfig(method=method, hard_affine=method != "posecons")
    step = semi_supervised_step(networks, batch, options, (0, 1), HardViewRandom.from_seed(4),
                                _forward)
    losses = {k: float(v.detach()) for k, v in step.losses.items()}
    with torch.no_grad():
        sup = [n(batch["image"]) for n in networks]
        easy = [n(batch["unlabeled_image"]) for n in networks]
    for k, prediction in enumerate(sup, start=1):
        expected = _by_hand(prediction, batch["target"], batch["target_weight"]) / len(networks)
        assert losses[f"sup_net{k}"] == pytest.approx(expected, rel=1e-5)
    weight = batch["unlabeled_weight"]
    if method == "supervised":
        assert set(losses) == {"sup_net1", "monitor/collapse_net1"}
    elif method == "posecons":  # no cutout, no affine: the hard view is the easy view
        assert losses["cons_net1"] == pytest.approx(0.0, abs=1e-12)
    elif method == "posedual":  # no cutout: each network against the other's warped maps
        with torch.no_grad():
            hard = [n(warp_with_theta(batch["unlabeled_image"], step.theta)) for n in networks]
            teach = [warp_with_theta(m, step.theta) for m in easy]
        assert losses["cons_net1"] == pytest.approx(_by_hand(hard[0], teach[1], weight), rel=1e-5)
        assert losses["cons_net2"] == pytest.approx(_by_hand(hard[1], teach[0], weight), rel=1e-5)
    else:  # naive: the hard view's maps, warped back, teach the easy view
        inverse = torch.linalg.inv(torch.cat(
            [step.theta, step.theta.new_tensor([[[0.0, 0.0, 1.0]]]).expand(2, 1, 3)], 1))[:, :2]
        with torch.no_grad():
            back = warp_with_theta(
                networks[0](warp_with_theta(batch["unlabeled_image"], step.theta)), inverse)
        assert losses["cons_net1"] == pytest.approx(_by_hand(easy[0], back, weight), rel=1e-5)
    maxima = easy[0].flatten(2).amax(2)
    assert losses["monitor/collapse_net1"] == pytest.approx(
        float(maxima[:, :2].mean()), rel=1e-5)


def _config(fixtures_dir: pathlib.Path, tmp: pathlib.Path, **semi: object):
    annotations = str(fixtures_dir / "coco" / "test_coco.json")
    images = str(fixtures_dir / "coco")
    return from_dict({
        "name": "semi_test", "task": "semi_supervised",
        "model": {"name": "simple_baseline_res18_256x192_union24"},
        "data": {"train_annotations": annotations, "train_images": images,
                 "unlabeled_annotations": annotations, "unlabeled_images": images,
                 "input_size": [32, 32], "max_scale": 1.25, "max_rotation": 30.0},
        "semi_supervised": {"method": "posedual", "num_labels": 4, "joint_cutout": 5, **semi},
        "validation": {"every_epochs": 0}, "epochs": 2, "batch_size": 2,
        "max_steps_per_epoch": 2, "num_threads": 1, "device": "cpu", "log_every": 1,
        "keep_checkpoints": 0, "output_dir": str(tmp),
    })


def test_resumed_posedual_run_continues_both_networks_and_the_optimiser(
    fixtures_dir, tmp_path
) -> None:
    config = _config(fixtures_dir, tmp_path)
    whole = Trainer(config, build_task(config), tmp_path / "whole", context=CPU)
    assert set(whole.networks) == {"model", SECOND_NETWORK}
    whole_result = whole.train(resume=False)
    first = Trainer(dataclasses.replace(config, epochs=1), build_task(config),
                    tmp_path / "split", context=CPU)
    first.train(resume=False)
    payload = load_training_checkpoint(tmp_path / "split" / "last.pt")
    assert set(payload["networks"]) == {SECOND_NETWORK}
    state = payload["optimizer"]["state"]
    assert len(state) == len(list(first._parameters()))  # Adam moments of both networks
    resumed = Trainer(config, build_task(config), tmp_path / "split", context=CPU)
    assert resumed.resume() and resumed.epoch == 1
    result = resumed.train(resume=False)
    assert result.losses == pytest.approx(whole_result.losses[len(result.losses) * -1:],
                                          rel=1e-5)
    for key in ("model", SECOND_NETWORK):
        for a, b in zip(whole.networks[key].parameters(), resumed.networks[key].parameters()):
            assert torch.allclose(a, b, atol=1e-6)
    header = (tmp_path / "split" / "train_log.csv").read_text().splitlines()[0].split(",")
    for column in ("sup_net1", "sup_net2", "cons_net1", "cons_net2",
                   "monitor/collapse_net1", "monitor/collapse_net2"):
        assert column in header


def test_bad_configs_fail_before_training_naming_the_key(fixtures_dir, tmp_path) -> None:
    config = _config(fixtures_dir, tmp_path)
    missing = dataclasses.replace(config, data=dataclasses.replace(
        config.data, unlabeled_annotations=""))
    with pytest.raises(ConfigError, match="data.unlabeled_annotations"):
        build_task(missing)
    empty = tmp_path / "empty.json"
    source = json.loads((fixtures_dir / "coco" / "test_coco.json").read_text())
    empty.write_text(json.dumps({**source, "annotations": []}))
    no_people = dataclasses.replace(config, data=dataclasses.replace(
        config.data, unlabeled_annotations=str(empty)))
    with pytest.raises(ConfigError, match="data.unlabeled_annotations"):
        Trainer(no_people, build_task(no_people), tmp_path / "a", context=CPU)
    too_many = dataclasses.replace(config, semi_supervised=dataclasses.replace(
        config.semi_supervised, num_labels=13))
    with pytest.raises(ConfigError, match="semi_supervised.num_labels=13"):
        Trainer(too_many, build_task(too_many), tmp_path / "b", context=CPU)
    assert not (tmp_path / "a" / "last.pt").exists()
    shutil.rmtree(tmp_path / "a", ignore_errors=True)


def test_rand_augment_copy_keeps_the_geometry_and_feeds_the_hard_view() -> None:
    import numpy as np

    from pose_core.data.rand_augment import RAND_AUGMENT_OPS, rand_augment

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    for name, (op, low, high) in RAND_AUGMENT_OPS.items():
        out = op(image, 20 / 30 * (high - low) + low, rng)
        assert out.shape == image.shape and out.dtype == np.uint8, name
    assert np.array_equal(RAND_AUGMENT_OPS["Invert"][0](image, 0.0, rng), 255 - image)
    out, names = rand_augment(image, 2, 20, np.random.default_rng(1))
    assert len(names) == 2 and out.shape == image.shape
    with pytest.raises(ValueError, match="magnitude"):
        rand_augment(image, 2, 31, rng)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    pixels = torch.from_numpy(((image.transpose(2, 0, 1) / 255.0
                                - np.reshape(mean, (3, 1, 1))) / np.reshape(std, (3, 1, 1)))
                              .astype(np.float32))
    labeled = _ListDataset([{"image": pixels, "target": torch.zeros(17, 4, 3),
                             "target_weight": torch.ones(17, 1)}])
    unlabeled = _ListDataset([{"image": pixels}])
    dataset = SemiSupervisedDataset(labeled, unlabeled, COCO_17_TO_UNION_24, 24,
                                    rand_augment=(2, 20.0), mean=mean, std=std)
    copy = dataset[0]["unlabeled_rand_image"]
    assert copy.shape == pixels.shape and not torch.equal(copy, pixels)
    plain = SemiSupervisedDataset(labeled, unlabeled, COCO_17_TO_UNION_24, 24)
    assert "unlabeled_rand_image" not in plain[0]
    batch = {**_batch(), "unlabeled_rand_image": torch.rand(2, 3, 16, 12)}
    step = semi_supervised_step([_tiny(0)], batch,
                                SemiSupervisedConfig(method="posecons", hard_affine=False),
                                (0, 1), HardViewRandom.from_seed(0), _forward)
    assert torch.equal(step.hard_images[0], batch["unlabeled_rand_image"])


def test_validation_scores_network_1_on_coco_joints_with_gt_boxes(fixtures_dir, tmp_path) -> None:
    config = _config(fixtures_dir, tmp_path)
    annotations = config.data.train_annotations
    config = dataclasses.replace(config, data=dataclasses.replace(
        config.data, val_annotations=annotations, val_images=config.data.train_images),
        validation=dataclasses.replace(config.validation, flip_test=False))
    task = build_task(config)
    model = task.build_networks()["model"].eval()
    with torch.no_grad():
        metrics = task.validate(model, torch.device("cpu"))
    assert metrics is not None and 0.0 <= metrics["AP"] <= 1.0
    estimator = task.validation_estimator(model, torch.device("cpu"))
    assert estimator.keypoint_spec is COCO_17  # 17 of the 24 union channels are scored


def test_init_checkpoint_imagenet_backbone_and_combined_posedual_file(
    fixtures_dir, tmp_path
) -> None:
    from pose_core.models.simple_baseline import simple_baseline_resnet18

    def backbone(seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed)
        state = {k: v for k, v in simple_baseline_resnet18().state_dict().items()
                 if k.split(".", 1)[0] in ("conv1", "bn1", "layer1", "layer2", "layer3",
                                           "layer4")}
        return {**state, "fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}

    imagenet, second = backbone(1), backbone(2)
    torch.save(imagenet, tmp_path / "resnet18.pth")
    torch.save({**{"resnet." + k: v for k, v in imagenet.items()},
                **{"resnet2." + k: v for k, v in second.items()}}, tmp_path / "dual.pth")
    for name, net2_source in (("resnet18.pth", imagenet), ("dual.pth", second)):
        config = _config(fixtures_dir, tmp_path)
        config = dataclasses.replace(config, model=dataclasses.replace(
            config.model, init_checkpoint=str(tmp_path / name)))
        networks = build_task(config).build_networks()
        key = "layer4.1.conv2.weight"
        assert torch.equal(networks["model"].state_dict()[key], imagenet[key])
        assert torch.equal(networks[SECOND_NETWORK].state_dict()[key], net2_source[key])
        assert not torch.equal(networks["model"].state_dict()["final_layer.weight"],
                               networks[SECOND_NETWORK].state_dict()["final_layer.weight"])


def test_unlabeled_pool_from_an_image_list_and_person_boxes(fixtures_dir, tmp_path) -> None:
    source = json.loads((fixtures_dir / "coco" / "test_coco.json").read_text())
    image_list = tmp_path / "image_info.json"
    image_list.write_text(json.dumps({k: v for k, v in source.items() if k != "annotations"}))
    detections = fixtures_dir / "coco" / "test_coco_det_AP_H_56.json"
    config = _config(fixtures_dir, tmp_path)
    config = dataclasses.replace(config, data=dataclasses.replace(
        config.data, unlabeled_annotations=str(image_list),
        unlabeled_person_boxes=str(detections)))
    task = build_task(config)
    pool = task.detected_instances()
    expected = [d for d in json.loads(detections.read_text()) if d["category_id"] == 1]
    assert len(pool) == len(expected)  # every person box, no score threshold
    dataset = task.train_dataset()
    assert len(dataset) == len(expected)
    bad = dataclasses.replace(config, data=dataclasses.replace(
        config.data, unlabeled_person_boxes=str(tmp_path / "missing.json")))
    with pytest.raises(ConfigError, match="data.unlabeled_person_boxes"):
        build_task(bad).train_dataset()
