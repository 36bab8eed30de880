"""Smoke run of the whole bottom-up pipeline on the 4 COCO fixture images.

pose-train (the CLI, config/train/synthetic_smoke.yaml pointed at the fixtures) trains a few
iterations of the lite HigherHRNet and validates; the checkpoint it writes is then loaded by
`PoseEstimator`, which predicts on the fixture images, and `KeypointEvaluator` scores them.
"""

from __future__ import annotations

import json
import math
import pathlib

import cv2
import pytest
import torch

from pose_core.engine.checkpointing import load_training_checkpoint
from pose_core.engine.cli import main as pose_train
from pose_core.evaluation.coco_evaluator import KeypointEvaluator
from pose_core.inference import PoseEstimator

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_predict_evaluate_on_coco_fixtures(
    fixtures_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    coco = fixtures_dir / "coco"
    annotations = coco / "test_coco.json"
    run_dir = tmp_path / "run"
    status = pose_train([
        "--config", str(REPO / "config" / "train" / "synthetic_smoke.yaml"),
        f"data.train_annotations={annotations}", f"data.train_images={coco}",
        f"data.val_annotations={annotations}", f"data.val_images={coco}",
        "epochs=2", "max_steps_per_epoch=2", "batch_size=2",
        "--output-dir", str(run_dir),
    ])
    assert status == 0
    payload = load_training_checkpoint(run_dir / "last.pt")
    assert payload["epoch"] == 2 and payload["step"] == 4
    assert payload["config"]["data"]["train_annotations"] == str(annotations)
    rows = (run_dir / "train_log.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    assert {"loss", "heatmaps_0", "heatmaps_1", "push", "pull", "lr"} <= set(header)
    losses = [float(r.split(",")[header.index("loss")]) for r in rows[1:]]
    assert len(losses) == 4 and all(math.isfinite(v) and v > 0 for v in losses)
    assert (run_dir / "config.yaml").is_file() and (run_dir / "val_log.csv").is_file()
    assert any((run_dir / "tb").iterdir())

    estimator = PoseEstimator(
        "higherhrnet_lite_w16_256_coco", checkpoint=run_dir / "last.pt", input_size=128
    )
    images = json.loads(annotations.read_text())["images"]
    evaluator = KeypointEvaluator(annotations, dataset="coco")
    evaluator.reset()
    for image in images:
        poses = estimator(cv2.imread(str(coco / image["file_name"])))
        assert poses.num_keypoints == 17
        evaluator.process([image["id"]], [poses])
    metrics = evaluator.evaluate()
    assert {"AP", "AP50", "AP75", "APm", "APl", "AR"} <= set(metrics)
    assert all(-1.0 <= v <= 1.0 for v in metrics.values())
    # the estimator really runs the trained weights
    weights = estimator.backend.model.state_dict()
    torch.testing.assert_close(weights["final_layers.0.weight"],
                               payload["model"]["final_layers.0.weight"])


@pytest.mark.slow
def test_top_down_hrnet_config_trains_and_validates(
    fixtures_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The official HRNet-W32 DARK config, pointed at the fixtures: one iteration of the
    top-down task (crops, DARK targets, joints MSE) and a validation pass on GT boxes."""
    coco = fixtures_dir / "coco"
    annotations = coco / "test_coco.json"
    status = pose_train([
        "--config", str(REPO / "config" / "train" / "hrnet_w32_256x192_coco_dark.yaml"),
        f"data.train_annotations={annotations}", f"data.train_images={coco}",
        f"data.val_annotations={annotations}", f"data.val_images={coco}",
        "data.person_boxes=gt", "data.num_workers=0", "data.val_max_images=1",
        "validation.flip_test=false", "epochs=1", "max_steps_per_epoch=1", "batch_size=2",
        "device=cpu", "keep_checkpoints=0", "num_threads=1", "log_every=1",
        "--output-dir", str(tmp_path / "run"),
    ])
    assert status == 0
    payload = load_training_checkpoint(tmp_path / "run" / "last.pt")
    assert payload["step"] == 1 and payload["config"]["codec"]["encoding"] == "dark"
    header, row = (tmp_path / "run" / "train_log.csv").read_text().strip().splitlines()[:2]
    loss = float(row.split(",")[header.split(",").index("heatmaps")])
    assert math.isfinite(loss) and loss > 0
    val = (tmp_path / "run" / "val_log.csv").read_text().strip().splitlines()
    assert val[0].split(",")[2] == "AP" and len(val) == 2
