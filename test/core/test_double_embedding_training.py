"""Double Embedding training through `pose-train`: the dataset's centre channel and offsets, a
tiny run that trains, resumes and validates (DEM decoder), the shipped configs, and the DEM model
through `pose-infer`."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch

from pose_core.codecs.double_embedding_targets import encode_offsets
from pose_core.data.synthetic import write_dataset
from pose_core.engine.cli import main as train_main
from pose_core.engine.config import load_config
from pose_core.engine.tasks import build_task
from pose_core.models import build_model

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config" / "train"
SMOKE = CONFIG_DIR / "dem_synthetic_smoke.yaml"


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("dem_synthetic")
    write_dataset(root / "train", 4, seed=1, size_wh=(128, 128), max_people=3)
    write_dataset(root / "val", 2, seed=2, size_wh=(128, 128), max_people=3)
    return root


def _overrides(root: pathlib.Path) -> list[str]:
    return [
        f"data.train_annotations={root / 'train' / 'annotations.json'}",
        f"data.train_images={root / 'train' / 'images'}",
        f"data.val_annotations={root / 'val' / 'annotations.json'}",
        f"data.val_images={root / 'val' / 'images'}",
    ]


def test_official_configs_load() -> None:
    factors = {"dem_higherhrnet_w32_512_coco": 2.0, "dem_higherhrnet_w32_640_coco": 1.0,
               "dem_higherhrnet_w48_640_coco": 1.0, "dem_higherhrnet_w32_512_crowdpose": 1.0,
               "dem_higherhrnet_w32_640_crowdpose": 1.0, "dem_higherhrnet_w48_640_crowdpose": 1.0}
    for name, factor in factors.items():
        config = load_config(CONFIG_DIR / f"{name}.yaml")
        assert config.task == "double_embedding" and config.model.name == name
        assert config.loss.offset_factors == (factor, factor)
        assert config.loss.centre_weight == 5.0 and config.epochs == 300
    assert load_config(SMOKE).task == "double_embedding"


def test_dataset_adds_centre_and_offsets(synthetic_data: pathlib.Path) -> None:
    task = build_task(load_config(SMOKE, _overrides(synthetic_data)))
    dataset = task.train_dataset()
    record, image, masks, joints_list = dataset.augmented(0)
    sample = dataset.sample(record, image, masks, joints_list)
    assert [tuple(h.shape) for h in sample["heatmaps"]] == [(18, 32, 32), (18, 64, 64)]
    assert tuple(sample["joints"].shape) == (30, 18, 2)
    assert [tuple(o.shape) for o in sample["offsets"]] == [(42, 32, 32), (42, 64, 64)]
    joints = joints_list[1]
    assert joints.shape[1] == 18
    labelled = joints[:, :17, 2] > 0
    people = np.nonzero(labelled.any(axis=1))[0]
    assert len(people) >= 1
    for p in people:  # paper centre: mean of the labelled joints, warped with them
        centre = joints[p, :17][labelled[p], :2].mean(axis=0)
        np.testing.assert_allclose(joints[p, 17, :2], centre, atol=1e-6)
    np.testing.assert_array_equal(
        sample["offsets"][1].numpy(),
        encode_offsets(joints, 64, dataset.partition, release=False),
    )
    assert float(sample["heatmaps"][1][17].max()) > 0.5  # a centre peak


def test_pose_train_trains_resumes_and_validates(
    synthetic_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    run = tmp_path / "run"
    args = ["--config", str(SMOKE), "--output-dir", str(run), *_overrides(synthetic_data)]
    assert train_main(args) == 0
    header = (run / "train_log.csv").read_text().splitlines()[0].split(",")
    for term in ("heatmaps_0", "offsets_1", "push", "pull"):
        assert any(term in column for column in header), header
    assert (run / "last.pt").is_file() and (run / "val_log.csv").is_file()
    assert train_main([*args, "epochs=2"]) == 0  # resumes from last.pt and validates again
    assert len((run / "val_log.csv").read_text().splitlines()) == 3
    checkpoint = torch.load(run / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 2
    from pose_core.models.checkpoint import load_checkpoint

    model = build_model("dem_higherhrnet_lite_w16_256_coco")
    assert load_checkpoint(model, run / "last.pt").loaded > 0


def test_pose_infer_selects_the_dem_codec(tmp_path: pathlib.Path) -> None:
    from pose_core.inference.cli import main as infer_main

    write_dataset(tmp_path, 1, seed=3, size_wh=(96, 80), max_people=2)
    model = build_model("dem_higherhrnet_lite_w16_256_coco")
    weights = tmp_path / "dem.pt"
    torch.save({"model": model.state_dict()}, weights)
    for mode in ("release", "paper"):
        out = tmp_path / f"results_{mode}.json"
        status = infer_main([str(tmp_path / "images"), "--out", str(out), "--model",
                             "dem_higherhrnet_lite_w16_256_coco", "--checkpoint", str(weights),
                             "--dem-mode", mode])
        assert status in (0, None)
        results = json.loads(out.read_text())
        assert all(np.asarray(r["keypoints"]).size == 51 for r in results)


def test_init_scope_backbone_starts_dem_from_an_associative_embedding_model(
    tmp_path: pathlib.Path,
) -> None:
    """`model.init_scope: backbone` copies the HRNet backbone of an AE checkpoint into a DEM
    network and leaves its heads at their random init; the strict default refuses the file."""
    from pose_core.engine.config import ModelConfig
    from pose_core.engine.tasks import build_model_from_config
    from pose_core.models.checkpoint import BACKBONE_ROOTS, CheckpointError

    torch.manual_seed(3)
    source = build_model("higherhrnet_lite_w16_256_coco")
    path = tmp_path / "ae.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(4)
    reference = build_model("dem_higherhrnet_lite_w16_256_coco").state_dict()
    torch.manual_seed(4)
    model = build_model_from_config(ModelConfig(
        "dem_higherhrnet_lite_w16_256_coco", init_checkpoint=str(path), init_scope="backbone"))
    own, ae = model.state_dict(), source.state_dict()
    backbone = [k for k in own if k.split(".", 1)[0] in BACKBONE_ROOTS]
    heads = [k for k in own if k not in backbone and own[k].is_floating_point()]
    assert len(backbone) > 100 and heads
    for key in backbone:
        torch.testing.assert_close(own[key], ae[key], rtol=0, atol=0, msg=key)
    for key in heads:
        torch.testing.assert_close(own[key], reference[key], rtol=0, atol=0, msg=key)
    with pytest.raises(CheckpointError):
        build_model_from_config(ModelConfig(
            "dem_higherhrnet_lite_w16_256_coco", init_checkpoint=str(path)))
