"""Evaluators give the numbers of calling pycocotools / xtcocotools directly; CLI round trip.

Fixtures (`fixtures_dir`, ../shared/fixtures): coco (test_coco.json, test_coco_det_AP_H_56.json)
and crowdpose (test_crowdpose.json, test_crowdpose_det_AP_40.json).
Exact equality is required: the same tool runs on the same records.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib

import numpy as np
import pytest

from pose_core.evaluation import (
    KeypointEvaluator,
    evaluate_keypoint_results,
    load_results_json,
    poses_to_coco_results,
    write_results_json,
)
from pose_core.evaluation.cli import main
from pose_core.evaluation.coco_evaluator import COCO_METRICS, CROWDPOSE_METRICS
from pose_core.keypoint_specs import CROWDPOSE_14
from pose_core.structures import Poses


@pytest.fixture(scope="module")
def coco_json(fixtures_dir: pathlib.Path) -> pathlib.Path:
    return fixtures_dir / "coco" / "test_coco.json"


@pytest.fixture(scope="module")
def coco_dets(fixtures_dir: pathlib.Path) -> pathlib.Path:
    return fixtures_dir / "coco" / "test_coco_det_AP_H_56.json"


@pytest.fixture(scope="module")
def crowd_json(fixtures_dir: pathlib.Path) -> pathlib.Path:
    return fixtures_dir / "crowdpose" / "test_crowdpose.json"


@pytest.fixture(scope="module")
def crowd_dets(fixtures_dir: pathlib.Path) -> pathlib.Path:
    return fixtures_dir / "crowdpose" / "test_crowdpose_det_AP_40.json"


def _perturbed_poses(gt_json: pathlib.Path, seed: int, noise_px: float) -> dict[int, Poses]:
    """GT people (with keypoints) moved by Gaussian noise; joint scores 1, person scores random."""
    content = json.loads(gt_json.read_text())
    num_joints = len(content["categories"][0]["keypoints"])
    rng = np.random.default_rng(seed)
    people: dict[int, list[np.ndarray]] = {image["id"]: [] for image in content["images"]}
    for ann in content["annotations"]:
        if ann["num_keypoints"] == 0:
            continue
        kpts = np.asarray(ann["keypoints"], np.float32).reshape(num_joints, 3)
        kpts[:, :2] += rng.normal(0, noise_px, (num_joints, 2)).astype(np.float32)
        kpts[:, 2] = 1.0
        people[ann["image_id"]].append(kpts)
    return {
        image_id: Poses(
            np.stack(k) if k else np.zeros((0, num_joints, 3), np.float32),
            rng.uniform(0.5, 1.0, len(k)).astype(np.float32),
        )
        for image_id, k in people.items()
    }


def _detection_poses(
    gt_json: pathlib.Path, dets_json: pathlib.Path, seed: int
) -> dict[int, Poses]:
    """One person per shared detection: the best-overlapping GT pose, jittered, det score."""
    content = json.loads(gt_json.read_text())
    num_joints = len(content["categories"][0]["keypoints"])
    rng = np.random.default_rng(seed)
    anns: dict[int, list[dict]] = {}
    for ann in content["annotations"]:
        if ann["num_keypoints"] > 0:
            anns.setdefault(ann["image_id"], []).append(ann)
    people: dict[int, tuple[list, list]] = {image["id"]: ([], []) for image in content["images"]}
    for det in json.loads(dets_json.read_text()):
        x, y, w, h = det["bbox"]
        best, best_iou = None, 0.0
        for ann in anns.get(det["image_id"], []):
            gx, gy, gw, gh = ann["bbox"]
            ix = max(0.0, min(x + w, gx + gw) - max(x, gx))
            iy = max(0.0, min(y + h, gy + gh) - max(y, gy))
            iou = ix * iy / (w * h + gw * gh - ix * iy)
            if iou > best_iou:
                best, best_iou = ann, iou
        if best is None:  # a detection without a GT person: joints spread over the box
            kpts = np.column_stack([rng.uniform(x, x + w, num_joints),
                                    rng.uniform(y, y + h, num_joints), np.ones(num_joints)])
        else:
            kpts = np.asarray(best["keypoints"], np.float64).reshape(num_joints, 3).copy()
            kpts[:, :2] += rng.normal(0, 0.03 * max(w, h), (num_joints, 2))
            kpts[:, 2] = rng.uniform(0.1, 1.0, num_joints)
        people[det["image_id"]][0].append(kpts.astype(np.float32))
        people[det["image_id"]][1].append(det["score"])
    return {
        image_id: Poses(np.stack(k) if k else np.zeros((0, num_joints, 3), np.float32), s)
        for image_id, (k, s) in people.items()
    }


def _direct_coco(gt_json: pathlib.Path, results_json: pathlib.Path) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        evaluator = COCOeval(gt, gt.loadRes(str(results_json)), "keypoints")
        evaluator.params.useSegm = None
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats)


def _direct_crowdpose(gt_json: pathlib.Path, results_json: pathlib.Path) -> np.ndarray:
    from xtcocotools.coco import COCO
    from xtcocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        sigmas = np.array(CROWDPOSE_14.sigmas)
        evaluator = COCOeval(gt, gt.loadRes(str(results_json)), "keypoints_crowd", sigmas,
                             use_area=False)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return np.asarray(evaluator.stats)


def _run(gt_json: pathlib.Path, dataset: str, poses: dict[int, Poses], tmp_path: pathlib.Path):
    evaluator = KeypointEvaluator(gt_json, dataset)
    ids = list(poses)
    evaluator.process(ids[:1], [poses[ids[0]]])
    evaluator.process(ids[1:], [poses[i] for i in ids[1:]])
    metrics = evaluator.evaluate()
    results_json = write_results_json(tmp_path / "results.json", evaluator.results)
    return metrics, results_json


@pytest.mark.parametrize("source", ["perturbed", "detections"])
def test_coco_evaluator_equals_pycocotools(
    tmp_path: pathlib.Path, source: str, coco_json: pathlib.Path, coco_dets: pathlib.Path
) -> None:
    if source == "perturbed":
        poses = _perturbed_poses(coco_json, seed=0, noise_px=4.0)
    else:
        poses = _detection_poses(coco_json, coco_dets, seed=0)
    metrics, results_json = _run(coco_json, "coco", poses, tmp_path)
    direct = _direct_coco(coco_json, results_json)
    assert list(metrics) == list(COCO_METRICS)
    np.testing.assert_array_equal(np.array(list(metrics.values())), direct)
    assert 0.2 < metrics["AP"] < 1.0  # a non-trivial case


@pytest.mark.parametrize("source", ["perturbed", "detections"])
def test_crowdpose_evaluator_equals_xtcocotools(
    tmp_path: pathlib.Path, source: str, crowd_json: pathlib.Path, crowd_dets: pathlib.Path
) -> None:
    if source == "perturbed":
        poses = _perturbed_poses(crowd_json, seed=1, noise_px=6.0)
    else:
        poses = _detection_poses(crowd_json, crowd_dets, seed=1)
    metrics, results_json = _run(crowd_json, "crowdpose", poses, tmp_path)
    direct = _direct_crowdpose(crowd_json, results_json)
    assert list(metrics) == list(CROWDPOSE_METRICS)
    np.testing.assert_array_equal(np.array(list(metrics.values())), direct)
    # both fixture images have crowd index in [0.2, 0.8): easy and hard have no GT -> -1
    assert metrics["APe"] == -1 and metrics["APh"] == -1 and metrics["APm"] > 0


def test_no_gt_in_range_is_minus_one_and_empty_results_are_zero(
    coco_json: pathlib.Path, crowd_json: pathlib.Path
) -> None:
    poses = _perturbed_poses(coco_json, seed=0, noise_px=2.0)
    evaluator = KeypointEvaluator(coco_json, "coco", only_processed_images=True)
    evaluator.process([785], [poses[785]])  # one large person only
    metrics = evaluator.evaluate()
    assert metrics["APm"] == -1 and metrics["ARm"] == -1 and metrics["APl"] > 0.5
    evaluator.reset()
    assert evaluator.evaluate()["AP"] == -1  # no processed image: no GT at all
    empty = KeypointEvaluator(coco_json, "coco", only_processed_images=False).evaluate()
    assert empty["AP"] == 0.0 and empty["APm"] == 0.0
    assert KeypointEvaluator(crowd_json, "crowdpose", False).evaluate()["AP"] == 0.0
    # a subset: only the processed image counts, unlike the all-GT-images mode
    subset = KeypointEvaluator(coco_json, "coco")
    subset.process([785, 40083], [poses[785], Poses.empty(17)])
    everything = KeypointEvaluator(coco_json, "coco", only_processed_images=False)
    everything.process([785, 40083], [poses[785], Poses.empty(17)])
    assert subset.evaluate()["AR"] == pytest.approx(1 / 3, abs=0.05)  # 1 of 3 people found
    assert everything.evaluate()["AR"] < 0.1  # 1 of 12


def test_poses_to_coco_results_record_layout() -> None:
    keypoints = np.array([[[10, 20, 0.9], [30, 5, 0.0], [15, 40, 0.5]]], np.float32)
    records = poses_to_coco_results(7, Poses(keypoints, np.array([0.8])))
    assert records == [
        {
            "image_id": 7,
            "category_id": 1,
            "keypoints": [10.0, 20.0, 0.8999999761581421, 30.0, 5.0, 0.0, 15.0, 40.0, 0.5],
            "score": pytest.approx(0.8),
            "bbox": [10.0, 5.0, 20.0, 35.0],  # all joints, also the one with score 0
        }
    ]
    assert poses_to_coco_results(7, Poses.empty(3)) == []


def test_process_rejects_unknown_image_and_wrong_joint_count(coco_json: pathlib.Path) -> None:
    evaluator = KeypointEvaluator(coco_json)
    with pytest.raises(ValueError, match="image id 1 is not in"):
        evaluator.process([1], [Poses.empty(17)])
    with pytest.raises(ValueError, match="14 keypoints.*17"):
        evaluator.process([785], [Poses(np.zeros((1, 14, 3)), np.ones(1))])


def test_cli_round_trip(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], coco_json: pathlib.Path
) -> None:
    poses = _perturbed_poses(coco_json, seed=2, noise_px=3.0)
    records = [r for image_id, p in poses.items() for r in poses_to_coco_results(image_id, p)]
    results_json = write_results_json(tmp_path / "res.json", records)
    assert load_results_json(results_json) == json.loads(results_json.read_text())
    out_json = tmp_path / "out" / "metrics.json"
    code = main(["--dataset", "coco", "--annotations", str(coco_json),
                 "--results", str(results_json), "--json", str(out_json)])
    assert code == 0
    printed = capsys.readouterr().out
    written = json.loads(out_json.read_text())
    assert list(written) == list(COCO_METRICS)
    np.testing.assert_array_equal(list(written.values()), _direct_coco(coco_json, results_json))
    assert "AP50" in printed and f"{written['AP']:.3f}" in printed
    assert written == evaluate_keypoint_results(coco_json, results_json, "coco")


def test_cli_errors(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], coco_json: pathlib.Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 785, "category_id": 1, "score": 1.0}]))
    code = main(["--dataset", "coco", "--annotations", str(coco_json), "--results", str(bad)])
    assert code == 2
    assert "bad.json: [0]: missing field 'keypoints'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--dataset", "coco", "--annotations", str(coco_json), "--images", str(tmp_path)])


def test_cli_end_to_end_runs_the_estimator(
    tmp_path: pathlib.Path, coco_json: pathlib.Path
) -> None:
    """`--images/--model`: PoseEstimator over the 4 COCO fixture images, then the same numbers
    as pycocotools on the records it wrote (random seed-0 weights of the small default model)."""
    import torch

    from pose_core.default_model import DEFAULT_MODEL
    from pose_core.models import build_model

    torch.manual_seed(0)
    checkpoint = tmp_path / "random.pt"
    torch.save(build_model(DEFAULT_MODEL).state_dict(), checkpoint)
    results_json, metrics_json = tmp_path / "res.json", tmp_path / "metrics.json"
    code = main([
        "--dataset", "coco", "--annotations", str(coco_json), "--images", str(coco_json.parent),
        "--model", DEFAULT_MODEL, "--checkpoint", str(checkpoint), "--no-flip",
        "--detection-threshold", "-10",  # random weights: accept any peak
        "--save-results", str(results_json), "--json", str(metrics_json),
    ])
    assert code == 0
    records = json.loads(results_json.read_text())
    assert records and {r["image_id"] for r in records} <= {785, 40083, 196141, 197388}
    assert all(len(r["keypoints"]) == 51 for r in records)
    metrics = json.loads(metrics_json.read_text())
    np.testing.assert_array_equal(list(metrics.values()), _direct_coco(coco_json, results_json))
