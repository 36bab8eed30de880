"""`pose_core.data.detections.read_detections`: the one detection-results reader, and the rule
each of its three callers keeps.

Fixtures: shared/fixtures/coco/test_coco_det_AP_H_56.json (118 person detections on the 4 COCO
images, scores 0.003-1.0) and shared/fixtures/crowdpose/test_crowdpose_det_AP_40.json (6 on the
2 CrowdPose images).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import pytest

from pose_core.data.coco import AnnotationError
from pose_core.data.detections import read_detections

COCO_DETS = "coco/test_coco_det_AP_H_56.json"
CROWD_DETS = "crowdpose/test_crowdpose_det_AP_40.json"
COCO_IMAGE_IDS = (785, 40083, 196141, 197388)


def _write(tmp_path: pathlib.Path, records: Any) -> pathlib.Path:
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(records))
    return path


def _det(image_id: int = 785, score: float = 0.9, **fields: Any) -> dict[str, Any]:
    return {"image_id": image_id, "category_id": 1, "bbox": [1, 2, 3, 4], "score": score,
            **fields}


@pytest.mark.parametrize("name", [COCO_DETS, CROWD_DETS])
def test_fixture_files_read_as_per_image_boxes(fixtures_dir: pathlib.Path, name: str) -> None:
    path = fixtures_dir / name
    raw = json.loads(path.read_text())
    boxes = read_detections(path)
    assert sum(len(b) for b in boxes.values()) == len(raw)
    assert list(boxes) == list(dict.fromkeys(r["image_id"] for r in raw))  # first appearance
    for image_id, rows in boxes.items():
        assert rows.dtype == np.float64 and rows.shape[1] == 5
        expected = [[*r["bbox"], r["score"]] for r in raw if r["image_id"] == image_id]
        np.testing.assert_array_equal(rows, np.asarray(expected))  # file order, exact values


def test_score_threshold_is_inclusive_and_none_keeps_all(
    fixtures_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    path = fixtures_dir / COCO_DETS
    raw = json.loads(path.read_text())
    kept = read_detections(path, min_score=0.5)
    assert sum(len(b) for b in kept.values()) == sum(r["score"] >= 0.5 for r in raw)
    assert all(float(b[:, 4].min()) >= 0.5 for b in kept.values())
    low = _write(tmp_path, [_det(score=0.25), _det(score=-1.0)])
    assert len(read_detections(low, min_score=0.25)[785]) == 1
    assert len(read_detections(low, min_score=None)[785]) == 2
    assert read_detections(low, min_score=0.3) == {}


def test_category_filter_and_missing_category(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, [_det(category_id=2), _det(), _det(score=0.5, category_id=3)])
    assert len(read_detections(path)[785]) == 1
    assert len(read_detections(path, category_id=None)[785]) == 3
    assert read_detections(path, category_id=3)[785][0, 4] == 0.5
    no_category = {"image_id": 785, "bbox": [1, 2, 3, 4], "score": 0.9}
    path = _write(tmp_path, [no_category])
    with pytest.raises(AnnotationError, match=r"dets\.json: \[0\]: missing field 'category_id'"):
        read_detections(path)
    assert len(read_detections(path, default_category_id=1)[785]) == 1
    assert read_detections(path, default_category_id=2) == {}


def test_image_ids_skip_or_error(fixtures_dir: pathlib.Path) -> None:
    path = fixtures_dir / COCO_DETS
    some = read_detections(path, image_ids=[785, 40083])
    assert set(some) == {785, 40083}
    with pytest.raises(AnnotationError, match=r"\[\d+\]\.image_id: \d+ is not in the annotations"):
        read_detections(path, image_ids=[785], unknown_images="error")
    assert set(read_detections(path, image_ids=COCO_IMAGE_IDS, unknown_images="error")) == set(
        COCO_IMAGE_IDS
    )
    # filters come first: a detection dropped by score never reaches the image-id check
    strong = read_detections(path, image_ids=[785], min_score=2.0, unknown_images="error")
    assert strong == {}


def test_missing_file_is_file_not_found(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match="detection results file not found"):
        read_detections(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", r"dets\.json: invalid JSON"),
        ({"image_id": 1}, r"dets\.json: expected a JSON list of detections"),
        ([_det(), 3], r"dets\.json: \[1\]: expected an object, got int"),
        ([{"image_id": 785, "category_id": 1, "score": 0.9}], r"\[0\]: missing field 'bbox'"),
        ([_det(), {"category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}],
         r"\[1\]: missing field 'image_id'"),
        ([_det(image_id="785")], r"\[0\]\.image_id: expected an integer"),
        ([_det(image_id=True)], r"\[0\]\.image_id: expected an integer"),
        ([_det(category_id="1")], r"\[0\]\.category_id: expected an integer"),
        ([_det(bbox=[1, 2, 3])], r"\[0\]\.bbox: expected \[x, y, w, h\]"),
        ([_det(bbox=[1, 2, 3, "4"])], r"\[0\]\.bbox: expected \[x, y, w, h\]"),
        ([_det(bbox=[1, 2, float("nan"), 4])], r"\[0\]\.bbox: expected \[x, y, w, h\]"),
        ([_det(score=None)], r"\[0\]\.score: expected a finite number"),
        ([_det(score=float("inf"))], r"\[0\]\.score: expected a finite number"),
    ],
)
def test_malformed_content_names_file_record_and_field(
    tmp_path: pathlib.Path, content: Any, message: str
) -> None:
    path = tmp_path / "dets.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(AnnotationError, match=message):
        read_detections(path)


def test_malformed_record_is_an_error_even_when_filtered_out(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, [_det(category_id=2, bbox=[1, 2])])
    with pytest.raises(AnnotationError, match=r"\[0\]\.bbox"):
        read_detections(path)


# ---- the callers' rules ----------------------------------------------------------------------


def test_top_down_dataset_rule(fixtures_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """`instances_from_detections`: category 1, score >= min_score, unknown image -> error."""
    from pose_core.data.coco import load_coco_keypoints
    from pose_core.data.top_down_dataset import box_to_center_scale, instances_from_detections
    from pose_core.keypoint_specs import COCO_17

    records = load_coco_keypoints(fixtures_dir / "coco/test_coco.json", COCO_17)
    path = fixtures_dir / COCO_DETS
    raw = json.loads(path.read_text())
    instances = instances_from_detections(path, records, 17, 0.75, min_score=0.5)
    kept = [r for r in raw if r["score"] >= 0.5]
    assert len(instances) == len(kept)
    for instance, record in zip(instances, kept):  # the fixture is grouped by image
        assert instance.image_id == record["image_id"] and instance.score == record["score"]
        assert instance.area == record["bbox"][2] * record["bbox"][3]
        center, scale = box_to_center_scale(record["bbox"], 0.75)
        np.testing.assert_array_equal(instance.center, center)
        np.testing.assert_array_equal(instance.scale, scale)
    unknown = _write(tmp_path, [_det(image_id=1)])
    with pytest.raises(AnnotationError, match=r"image_id: 1 is not in the annotations"):
        instances_from_detections(unknown, records, 17, 0.75)
    assert instances_from_detections(unknown, records, 17, 0.75, min_score=0.95) == []


def test_evaluation_cli_rule(fixtures_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """`pose-eval --detections`: a bad file is reported as `pose-eval: error:` (exit 2)."""
    from pose_core.default_model import DEFAULT_MODEL
    from pose_core.evaluation.cli import main

    bad = _write(tmp_path, [_det(bbox=[1, 2, 3])])
    code = main(["--dataset", "coco", "--annotations", str(fixtures_dir / "coco/test_coco.json"),
                 "--images", str(fixtures_dir / "coco"), "--model", DEFAULT_MODEL,
                 "--detections", str(bad)])
    assert code == 2


def test_top_down_task_rule(fixtures_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """`TopDownTask._boxes`: no score threshold, a record without category_id is a person,
    other images skipped, every record's image present (empty lists included)."""
    from pose_core.data.coco import load_coco_keypoints
    from pose_core.engine.config import (
        CodecConfig,
        DataConfig,
        LossConfig,
        ModelConfig,
        ValidationConfig,
    )
    from pose_core.engine.tasks import TopDownTask
    from pose_core.keypoint_specs import COCO_17

    records = load_coco_keypoints(fixtures_dir / "coco/test_coco.json", COCO_17)
    no_category = {"image_id": 40083, "bbox": [5, 6, 7, 8], "score": 0.001}
    path = _write(tmp_path, [_det(score=0.0), no_category, _det(image_id=1), _det(category_id=2)])
    data = DataConfig(input_size=(192, 256), person_boxes=str(path))
    task = TopDownTask(ModelConfig("hrnet_w32_256x192_coco"), data, CodecConfig(), LossConfig(),
                       ValidationConfig())
    boxes = task._boxes(records)
    assert boxes == {785: [[1.0, 2.0, 3.0, 4.0, 0.0]], 40083: [[5.0, 6.0, 7.0, 8.0, 0.001]],
                     196141: [], 197388: []}
    missing = DataConfig(input_size=(192, 256), person_boxes=str(tmp_path / "absent.json"))
    task = TopDownTask(ModelConfig("hrnet_w32_256x192_coco"), missing, CodecConfig(),
                       LossConfig(), ValidationConfig())
    with pytest.raises(FileNotFoundError, match="data.person_boxes"):
        task._boxes(records)
