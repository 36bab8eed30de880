"""Coupled Embedding training through `pose-train`: dataset box scales, a tiny run that trains,
resumes and validates (CE codec), the shipped CE configs, and the CE model through
`pose-infer`."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch

from pose_core.data.synthetic import write_dataset
from pose_core.engine.cli import main as train_main
from pose_core.engine.config import load_config
from pose_core.engine.tasks import build_task
from pose_core.models import build_model

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config" / "train"


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("ce_synthetic")
    write_dataset(root / "train", 6, seed=1, size_wh=(128, 128), max_people=4)
    write_dataset(root / "val", 2, seed=2, size_wh=(128, 128), max_people=4)
    return root


def _overrides(root: pathlib.Path) -> list[str]:
    return [
        f"data.train_annotations={root / 'train' / 'annotations.json'}",
        f"data.train_images={root / 'train' / 'images'}",
        f"data.val_annotations={root / 'val' / 'annotations.json'}",
        f"data.val_images={root / 'val' / 'images'}",
    ]


def test_official_and_synthetic_configs_load() -> None:
    for name in ("ce_higherhrnet_w32_512_coco", "ce_higherhrnet_w48_640_coco",
                 "ce_hrnet_w32_512_coco", "ce_higherhrnet_w32_512_crowdpose",
                 "ce_higherhrnet_w48_640_crowdpose", "ce_synthetic_smoke", "ce_synthetic_full",
                 "ce_synthetic_ae8d", "ce_synthetic_ae1d"):
        config = load_config(CONFIG_DIR / f"{name}.yaml")
        assert config.task == "coupled_embedding"
    official = load_config(CONFIG_DIR / "ce_higherhrnet_w48_640_crowdpose.yaml")
    assert official.optim.lr == 0.0015 and official.optim.warmup_iters == 500
    assert official.optim.lr_milestones == (200, 260) and official.epochs == 300
    assert official.loss.scale_beta == 0.55 and official.loss.scale_factor == 1e-4
    ae8 = load_config(CONFIG_DIR / "ce_synthetic_ae8d.yaml")
    assert ae8.loss.scale_factor == 0 and not ae8.loss.scale_adaptive


def test_dataset_adds_instance_scales(synthetic_data: pathlib.Path) -> None:
    config = load_config(CONFIG_DIR / "ce_synthetic_smoke.yaml", _overrides(synthetic_data))
    task = build_task(config)
    dataset = task.train_dataset()
    sample = dataset[0]
    scales = sample["box_scales"]
    assert scales.shape == (30,) and scales.dtype == torch.float64
    people = int((sample["joints"][..., 1].sum(-1) > 0).sum())
    assert people >= 1 and bool((scales[:people] > 0).all())
    assert bool((scales[8:] == 0).all())
    dataset.set_epoch(1)
    again = dataset[0]
    assert not torch.equal(again["image"], sample["image"])  # another augmentation draw


def test_pose_train_trains_resumes_and_validates(
    synthetic_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    run = tmp_path / "run"
    config = str(CONFIG_DIR / "ce_synthetic_smoke.yaml")
    args = ["--config", config, "--output-dir", str(run), *_overrides(synthetic_data)]
    assert train_main(args) == 0
    log = (run / "train_log.csv").read_text().splitlines()
    header = log[0].split(",")
    for term in ("heatmaps", "pull", "push", "scale"):
        assert any(term in column for column in header), header
    assert (run / "last.pt").is_file() and (run / "val_log.csv").is_file()
    # one more epoch: resumes from last.pt (epoch 1 done) and validates again
    assert train_main([*args, "epochs=2"]) == 0
    val_rows = (run / "val_log.csv").read_text().splitlines()
    assert len(val_rows) == 3  # header + one validation per epoch
    checkpoint = torch.load(run / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 2
    model = build_model("ce_higherhrnet_lite_w16_256_coco")
    from pose_core.models.checkpoint import load_checkpoint

    assert load_checkpoint(model, run / "last.pt").loaded > 0


def test_pose_infer_selects_the_ce_codec(tmp_path: pathlib.Path) -> None:
    from pose_core.inference.cli import main as infer_main

    images = tmp_path / "images"
    write_dataset(tmp_path, 1, seed=3, size_wh=(96, 80), max_people=2)
    model = build_model("ce_higherhrnet_lite_w16_256_coco")
    weights = tmp_path / "ce.pt"
    torch.save({"model": model.state_dict()}, weights)
    out = tmp_path / "results.json"
    status = infer_main([str(images), "--out", str(out), "--model",
                         "ce_higherhrnet_lite_w16_256_coco", "--checkpoint", str(weights),
                         "--detection-threshold", "0.0"])
    assert status in (0, None)
    results = json.loads(out.read_text())
    assert isinstance(results, list)
    assert all(np.asarray(r["keypoints"]).size == 51 for r in results)


def _analysis_module():  # training/ is a scripts folder, not a package
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "ce_embedding_analysis", REPO / "training" / "ce_embedding_analysis.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_embedding_statistics_known_answers() -> None:
    analysis = _analysis_module()
    rng = np.random.default_rng(0)
    line = rng.normal(size=(200, 1)) * np.arange(1, 9)  # every dimension a multiple of one
    images = [line[i : i + 4] for i in range(0, 200, 4)]
    joints = [[m[None].repeat(2, 0) for m in means] for means in images]
    stats = analysis.embedding_statistics(images, joints)
    assert stats["pearson_abs_mean"] == pytest.approx(1.0)
    assert stats["effective_rank"] == pytest.approx(1.0, abs=1e-6)
    assert stats["gt_grouping_accuracy"] == 1.0  # joint tags equal their person's mean
    spread = rng.normal(size=(4000, 8))
    stats = analysis.embedding_statistics([spread[i : i + 4] for i in range(0, 4000, 4)],
                                          [[] for _ in range(1000)])
    assert stats["pearson_abs_mean"] < 0.05
    assert stats["effective_rank"] > 7.5 and stats["participation_ratio"] > 7.0
    # tags read at truncated stride-4 positions of the input
    tags = np.zeros((2, 3, 4, 4))
    tags[1, :, 2, 3] = (1.0, 2.0, 3.0)
    keypoints = np.array([[[0.0, 0.0, 0.0], [13.9, 9.0, 2.0]]])
    means, joint_tags = analysis.person_mean_tags(tags, keypoints, 0.25)
    np.testing.assert_array_equal(means, [[1.0, 2.0, 3.0]])
