"""Tests of the synthetic world (pose_core.data.synthetic and the pose-synth CLI)."""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from xtcocotools import coco as xtcoco
from xtcocotools import cocoeval as xtcocoeval

from pose_core.data.synthetic import (
    MAX_PEOPLE_LIMIT,
    SyntheticSceneConfig,
    SyntheticVideo,
    crop_person,
    crowd_index,
    difficulty_config,
    mirror_layout,
    render_layout,
    render_scene,
    sample_layout,
    top_down_crops,
    write_crop_dataset,
    write_dataset,
    write_video_dataset,
)
from pose_core.data.synthetic import cli as synthetic_cli
from pose_core.keypoint_specs import COCO_17, CROWDPOSE_14

T = TypeVar("T")


def _self_results(gt_path: pathlib.Path) -> list[dict]:
    anns = json.loads(gt_path.read_text())["annotations"]
    return [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
             "score": 1.0} for a in anns]


def _quiet(fn: Callable[..., T], *args: object) -> T:
    """Call fn(*args) without the COCO API's prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def test_coco_dataset_loads_and_ground_truth_scores_ap_one(tmp_path: pathlib.Path) -> None:
    path = write_dataset(tmp_path, num_images=8, seed=3, size_wh=(128, 112), keypoints="coco")
    data = json.loads(path.read_text())
    assert [c["keypoints"] for c in data["categories"]] == [list(COCO_17.names)]
    assert data["categories"][0]["skeleton"] == COCO_17.skeleton_1based
    assert len(data["images"]) == 8 and len(data["annotations"]) >= 8
    for image in data["images"]:
        assert (tmp_path / "images" / image["file_name"]).is_file()
        assert (image["width"], image["height"]) == (128, 112)
    for ann in data["annotations"]:
        kps = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        assert ann["num_keypoints"] == int((kps[:, 2] > 0).sum())
        assert ann["iscrowd"] == 0 and ann["category_id"] == 1
        assert np.all(kps[kps[:, 2] == 0] == 0)
        inside = kps[kps[:, 2] > 0]
        assert np.all((inside[:, 0] > -0.5) & (inside[:, 0] < 127.5))
        assert np.all((inside[:, 1] > -0.5) & (inside[:, 1] < 111.5))
        assert ann["area"] <= ann["bbox"][2] * ann["bbox"][3] + 1e-6

    gt = _quiet(COCO, str(path))
    evaluator = COCOeval(gt, _quiet(gt.loadRes, _self_results(path)), "keypoints")
    _quiet(evaluator.evaluate)
    _quiet(evaluator.accumulate)
    _quiet(evaluator.summarize)
    assert evaluator.stats[0] == pytest.approx(1.0, abs=1e-9)

    xt_gt = _quiet(xtcoco.COCO, str(path))
    xt_eval = xtcocoeval.COCOeval(xt_gt, _quiet(xt_gt.loadRes, _self_results(path)), "keypoints",
                         np.asarray(COCO_17.sigmas))
    _quiet(xt_eval.evaluate)
    _quiet(xt_eval.accumulate)
    _quiet(xt_eval.summarize)
    assert xt_eval.stats[0] == pytest.approx(1.0, abs=1e-9)


def test_crowdpose_dataset_loads_with_crowd_index(tmp_path: pathlib.Path) -> None:
    path = write_dataset(tmp_path, num_images=6, seed=5, size_wh=(128, 128),
                         keypoints="crowdpose", difficulty="crowd")
    data = json.loads(path.read_text())
    assert data["categories"][0]["keypoints"] == list(CROWDPOSE_14.names)
    assert all("crowdIndex" in image for image in data["images"])
    assert max(image["crowdIndex"] for image in data["images"]) > 0.0
    for ann in data["annotations"]:
        kps = np.asarray(ann["keypoints"], np.float64).reshape(14, 3)
        head, neck = kps[12], kps[13]
        if head[2] > 0 and neck[2] > 0:  # head top sits above the neck base (people upright)
            assert head[1] < neck[1] + 1.0
    gt = _quiet(xtcoco.COCO, str(path))
    evaluator = xtcocoeval.COCOeval(gt, _quiet(gt.loadRes, _self_results(path)), "keypoints_crowd",
                           np.asarray(CROWDPOSE_14.sigmas), use_area=False)
    _quiet(evaluator.evaluate)
    _quiet(evaluator.accumulate)
    _quiet(evaluator.summarize)
    assert evaluator.stats[0] == pytest.approx(1.0, abs=1e-9)


def test_crowd_index_matches_hand_count() -> None:
    # person 0: box [0, 10]^2 holds its 2 joints and 1 joint of person 1 -> 1/2
    # person 1: box [5, 30]^2 holds its 2 joints and 1 of person 0 -> 1/2; mean 0.5
    keypoints = np.array([
        [[2, 2, 2], [8, 8, 1]],
        [[6, 6, 2], [25, 25, 2]],
    ], np.float32)
    boxes = np.array([[0, 0, 10, 10], [5, 5, 25, 25]], np.float32)
    assert crowd_index(keypoints, boxes) == pytest.approx(0.5, abs=1e-9)
    keypoints[0, 1, 2] = 0  # an unlabelled joint does not count
    assert crowd_index(keypoints, boxes) == pytest.approx((1 / 1 + 0 / 2) / 2, abs=1e-9)


def test_same_seed_gives_byte_identical_files(tmp_path: pathlib.Path) -> None:
    for name in ("a", "b", "c"):
        write_dataset(tmp_path / name, num_images=4, seed=11 if name != "c" else 12,
                      size_wh=(96, 80))
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*")
                     if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
                     if p.is_file())
    assert files_a == files_b and len(files_a) == 5
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    assert (tmp_path / "a" / "images" / "000000.jpg").read_bytes() != (
        tmp_path / "c" / "images" / "000000.jpg").read_bytes()


def test_visibility_flags_match_rendered_occlusions() -> None:
    """Render every person alone: a joint seen in the crowd is seen alone, and a joint hidden
    only in the crowd is covered there by another person or an occluder."""
    config = difficulty_config("crowd", 160, 160, max_people=8)
    occluded_by_others = 0
    checked = 0
    for seed in range(4):
        layout = sample_layout(config, seed)
        scene = render_layout(layout)
        assert scene.keypoints.shape == (len(layout.people), 17, 3)
        for p in range(scene.num_people):
            alone = render_layout(layout, only=[p], distractors=False)
            v_scene, v_alone = scene.keypoints[p, :, 2], alone.keypoints[0, :, 2]
            np.testing.assert_allclose(scene.keypoints[p, :, :2], alone.keypoints[0, :, :2],
                                       atol=1e-4)
            assert np.array_equal(v_scene == 0, v_alone == 0)  # outside is intrinsic
            assert np.all(v_alone[v_scene == 2] == 2)  # visible in the crowd -> visible alone
            assert alone.areas[0] >= scene.areas[p]
            for j in np.flatnonzero((v_scene == 1) & (v_alone == 2)):
                x, y = (int(round(float(c))) for c in scene.keypoints[p, j, :2])
                assert alone.mask[y, x] == 0
                assert scene.mask[y, x] != p  # someone or something in front
                occluded_by_others += 1
            for j in np.flatnonzero(v_alone == 2):  # the joint's pixel shows the person
                x, y = (int(round(float(c))) for c in alone.keypoints[0, j, :2])
                assert alone.mask[y, x] == 0
            checked += 1
        # areas are the visible silhouettes
        for p in range(scene.num_people):
            assert scene.areas[p] == pytest.approx(float((scene.mask == p).sum()))
    assert checked >= 8 and occluded_by_others >= 5


def test_face_points_hidden_when_facing_away() -> None:
    config = replace(difficulty_config("easy", 160, 160), back_facing_prob=1.0, max_people=1,
                     min_people=1, max_distractors=0, truncation=0.0)
    scene = render_scene(config, 1)
    kps = scene.keypoints[0]
    assert np.all(kps[:3, 2] == 1)  # nose and eyes: labelled, not visible
    front = render_scene(replace(config, back_facing_prob=0.0), 2).keypoints[0]
    assert np.any(front[:3, 2] == 2)


def test_mirrored_layout_renders_the_flipped_sample() -> None:
    config = difficulty_config("default", 192, 160)
    flip = np.asarray(COCO_17.flip_index)
    for seed in range(3):
        layout = sample_layout(config, seed)
        scene, mirrored = render_layout(layout), render_layout(mirror_layout(layout))
        expected = scene.keypoints[:, flip].copy()
        labelled = expected[..., 2] > 0
        expected[..., 0][labelled] = 191.0 - expected[..., 0][labelled]
        np.testing.assert_allclose(mirrored.keypoints[..., :2], expected[..., :2], atol=1e-3)
        agree = float(np.mean(mirrored.keypoints[..., 2] == expected[..., 2]))
        assert agree >= 0.97
        diff = np.abs(scene.image_bgr[:, ::-1].astype(np.int16)
                      - mirrored.image_bgr.astype(np.int16)).max(axis=2)
        assert float(diff.mean()) < 2.0
        assert float(np.mean(diff > 40)) < 0.02  # only rasterisation edges differ
        assert float(np.mean(scene.mask[:, ::-1] == mirrored.mask)) > 0.99


def test_people_count_and_scale_follow_config() -> None:
    config = SyntheticSceneConfig(width=256, height=256, min_people=3, max_people=5,
                                  overlap=0.0, min_height_px=40, max_height_frac=0.5)
    for seed in range(5):
        layout = sample_layout(config, seed)
        assert 1 <= len(layout.people) <= 5
        for person in layout.people:
            assert 40 - 1e-6 <= person.pose.height_px <= 128 + 1e-6
    hard = render_scene(difficulty_config("hard", 128, 128), 0)
    assert hard.image_bgr.shape == (128, 128, 3) and hard.image_bgr.dtype == np.uint8


def test_top_down_crops_map_keypoints() -> None:
    scene = render_scene(difficulty_config("easy", 200, 200), 4)
    crops = top_down_crops(scene, output_wh=(48, 64))
    assert crops and all(c.image_bgr.shape == (64, 48, 3) for c in crops)
    crop = crop_person(scene, 0, output_wh=(48, 64))
    src = scene.keypoints[0]
    for j in range(src.shape[0]):
        if crop.keypoints[j, 2] > 0:
            x, y = crop.affine @ np.array([src[j, 0], src[j, 1], 1.0])
            assert crop.keypoints[j, 0] == pytest.approx(x, abs=1e-3)
            assert crop.keypoints[j, 1] == pytest.approx(y, abs=1e-3)
            assert crop.keypoints[j, 2] == src[j, 2]


def test_crop_dataset_scores_ap_one(tmp_path: pathlib.Path) -> None:
    path = write_crop_dataset(tmp_path, num_images=3, seed=2, size_wh=(160, 160),
                              crop_wh=(48, 64))
    data = json.loads(path.read_text())
    assert len(data["images"]) == len(data["annotations"]) >= 3
    for image, ann in zip(data["images"], data["annotations"], strict=True):
        assert ann["image_id"] == image["id"] and (image["width"], image["height"]) == (48, 64)
        x, y, bw, bh = ann["bbox"]
        assert -0.5 <= x and -0.5 <= y and x + bw <= 48.5 and y + bh <= 64.5
    gt = _quiet(COCO, str(path))
    evaluator = COCOeval(gt, _quiet(gt.loadRes, _self_results(path)), "keypoints")
    _quiet(evaluator.evaluate)
    _quiet(evaluator.accumulate)
    _quiet(evaluator.summarize)
    assert evaluator.stats[0] == pytest.approx(1.0, abs=1e-9)


def test_video_ids_persist_and_motion_is_smooth() -> None:
    video = SyntheticVideo(width=160, height=120, num_people=3, fps=30.0, seed=2)
    again = SyntheticVideo(width=160, height=120, num_people=3, fps=30.0, seed=2)
    assert np.array_equal(video.frame(37).image_bgr, again.frame(37).image_bgr)
    seen_ids: set[int] = set()
    previous = video.frame(0)
    for index in range(1, 240, 3):
        frame = video.frame(index)
        step = video.frame(index - 1) if index > 1 else previous
        seen_ids.update(int(i) for i in frame.ids)
        for k, person_id in enumerate(frame.ids):
            match = np.flatnonzero(step.ids == person_id)
            if len(match) == 0:
                continue
            a, b = frame.keypoints[k], step.keypoints[match[0]]
            both = (a[:, 2] > 0) & (b[:, 2] > 0)
            if both.any():  # one frame apart: joints move a few pixels at most
                assert np.abs(a[both, :2] - b[both, :2]).max() < 12.0
        previous = frame
    assert len(seen_ids) > 3  # people left and new ones entered


def test_geometric_people_distribution_prefers_few_people() -> None:
    base = SyntheticSceneConfig(width=256, height=256, min_people=1, max_people=12,
                                overlap=0.0, min_height_px=32, max_height_frac=0.3)
    geometric = replace(base, people_distribution="geometric")
    uniform = [len(sample_layout(base, s).people) for s in range(40)]
    few = [len(sample_layout(geometric, s).people) for s in range(40)]
    assert np.mean(few) < np.mean(uniform) - 2.0


def test_crowdpose_video_frame() -> None:
    frame = SyntheticVideo(160, 120, num_people=2, seed=4, keypoints="crowdpose").frame(10)
    assert frame.keypoints.shape[1:] == (14, 3) and frame.keypoints_name == "crowdpose"


def test_video_dataset_has_track_ids(tmp_path: pathlib.Path) -> None:
    path = write_video_dataset(tmp_path, num_frames=3, seed=1, size_wh=(96, 72), num_people=2)
    data = json.loads(path.read_text())
    assert [image["frame_id"] for image in data["images"]] == [0, 1, 2]
    assert all("track_id" in ann for ann in data["annotations"])


def test_bad_arguments_fail_before_any_work(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="size"):
        SyntheticSceneConfig(width=0, height=64)
    with pytest.raises(ValueError, match="max_people"):
        SyntheticSceneConfig(max_people=MAX_PEOPLE_LIMIT + 1)
    with pytest.raises(ValueError, match="num_images"):
        write_dataset(tmp_path / "neg", num_images=-1, seed=0)
    with pytest.raises(ValueError, match="size"):
        write_dataset(tmp_path / "zero", num_images=1, seed=0, size_wh=(0, 64))
    with pytest.raises(ValueError, match="keypoint"):
        write_dataset(tmp_path / "kp", num_images=1, seed=0, keypoints="mpii")
    with pytest.raises(ValueError, match="num_people"):
        SyntheticVideo(num_people=-1)
    with pytest.raises(ValueError, match="difficulty"):
        difficulty_config("impossible")
    with pytest.raises(ValueError, match="overlap"):
        SyntheticSceneConfig(overlap=1.5)
    for argv, message in (
        (["--size", "0", "64"], "--size"),
        (["--num-images", "-3"], "--num-images"),
        (["--max-people", "31"], "--max-people"),
        (["--video"], "--frames"),
        (["--video", "--frames", "-1"], "--frames"),
        (["--crops", "8", "64"], "--crops"),
        (["--overlap", "1.5"], "overlap"),
        (["--min-people", "5", "--max-people", "3"], "min_people"),
    ):
        out = tmp_path / "cli"
        stderr = io.StringIO()
        with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(stderr):
            synthetic_cli.main(["--out", str(out), *argv])
        assert exit_info.value.code == 2
        assert message in stderr.getvalue()
        assert not out.exists()
    assert not (tmp_path / "neg").exists() and not (tmp_path / "zero").exists()


def test_cli_writes_dataset(tmp_path: pathlib.Path) -> None:
    code = synthetic_cli.main(["--out", str(tmp_path), "--num-images", "2", "--seed", "1",
                               "--size", "64", "48", "--keypoints", "crowdpose",
                               "--max-people", "3", "--no-progress"])
    assert code == 0
    data = json.loads((tmp_path / "annotations.json").read_text())
    assert len(data["images"]) == 2
    assert all(len(a["keypoints"]) == 14 * 3 for a in data["annotations"])
