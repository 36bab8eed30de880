"""Annotation loading, masks, augmentation and dataset samples on the shared fixture files.

Fixtures (`fixtures_dir`, ../shared/fixtures): coco (4 images, 14 annotations, detections)
and crowdpose (2 images, 5 annotations, detections).
"""

from __future__ import annotations

import json
import pathlib
import shutil

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from pose_core.codecs.heatmap import HeatmapGenerator
from pose_core.data.bottom_up_dataset import BottomUpDataset
from pose_core.data.coco import (
    AnnotationError,
    crowd_loss_mask,
    load_coco_keypoints,
    load_crowdpose_keypoints,
    records_joints,
)
from pose_core.data.top_down_dataset import (
    COCO_UPPER_BODY_IDS,
    TopDownDataset,
    box_to_center_scale,
    instances_from_detections,
    instances_from_records,
)
from pose_core.data.transforms import (
    RandomAffineTransform,
    RandomHorizontalFlip,
    bottom_up_affine_matrix,
)
from pose_core.keypoint_specs import COCO_17, CROWDPOSE_14


@pytest.fixture(scope="module")
def coco_dir(fixtures_dir: pathlib.Path) -> pathlib.Path:
    return fixtures_dir / "coco"


@pytest.fixture(scope="module")
def crowd_dir(fixtures_dir: pathlib.Path) -> pathlib.Path:
    return fixtures_dir / "crowdpose"


@pytest.fixture(scope="module")
def coco_json(coco_dir: pathlib.Path) -> pathlib.Path:
    return coco_dir / "test_coco.json"


@pytest.fixture(scope="module")
def crowd_json(crowd_dir: pathlib.Path) -> pathlib.Path:
    return crowd_dir / "test_crowdpose.json"


def test_load_coco_fixture(coco_json: pathlib.Path) -> None:
    records = load_coco_keypoints(coco_json, COCO_17)
    assert [r.image_id for r in records] == [785, 40083, 196141, 197388]
    assert [len(r.annotations) for r in records] == [1, 3, 5, 5]
    assert all(r.path.is_file() and r.dataset == "coco" for r in records)
    first = records[0].annotations[0]
    raw = json.loads(coco_json.read_text())["annotations"][0]
    expected = np.asarray(raw["keypoints"], np.float32)
    np.testing.assert_array_equal(first.keypoints.ravel(), expected)
    assert first.num_keypoints == 17 and first.bbox == tuple(raw["bbox"])
    assert records_joints(records[1], 17).shape == (3, 17, 3)


def test_load_crowdpose_fixture(crowd_json: pathlib.Path) -> None:
    records = load_crowdpose_keypoints(crowd_json, CROWDPOSE_14)
    assert [(r.image_id, r.crowd_index) for r in records] == [(106848, 0.33), (103319, 0.39)]
    assert records[0].annotations[0].keypoints.shape == (14, 3)
    # CrowdPose has no area field: bbox w*h
    assert records[0].annotations[0].area == pytest.approx(273.15 * 352.42)
    for record in records:
        assert np.all(crowd_loss_mask(record) == 1.0)


def test_coco_mask_equals_pycocotools(coco_json: pathlib.Path) -> None:
    coco = COCO(str(coco_json))
    records = load_coco_keypoints(coco_json, COCO_17)
    masked_images = 0
    for record in records:
        union = np.zeros((record.height, record.width))
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=record.image_id)):
            if ann["iscrowd"] or ann["num_keypoints"] == 0:
                union += coco.annToMask(ann)
        expected = (union < 0.5).astype(np.float32)
        mask = crowd_loss_mask(record)
        np.testing.assert_array_equal(mask, expected)
        masked_images += int((mask == 0).any())
    assert masked_images == 2  # 40083 and 196141 each hold a num_keypoints == 0 person


def _write(
    tmp_path: pathlib.Path, content: dict, name: str = "person_keypoints_x.json"
) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return path


def test_bad_annotation_files_name_file_and_field(
    tmp_path: pathlib.Path,
    coco_dir: pathlib.Path,
    crowd_dir: pathlib.Path,
    coco_json: pathlib.Path,
    crowd_json: pathlib.Path,
) -> None:
    content = json.loads(coco_json.read_text())
    missing = json.loads(json.dumps(content))
    del missing["annotations"][2]["keypoints"]
    path = _write(tmp_path, missing)
    message = r"person_keypoints_x\.json.*annotations\[2\].*'keypoints'"
    with pytest.raises(AnnotationError, match=message):
        load_coco_keypoints(path, COCO_17, image_dir=coco_dir)

    wrong = json.loads(json.dumps(content))
    wrong["annotations"][1]["keypoints"] = wrong["annotations"][1]["keypoints"][:-3]
    path = _write(tmp_path, wrong)
    with pytest.raises(AnnotationError, match=r"annotations\[1\].*keypoints.*expected 51.*got 48"):
        load_coco_keypoints(path, COCO_17, image_dir=coco_dir)

    no_width = json.loads(json.dumps(content))
    del no_width["images"][3]["width"]
    path = _write(tmp_path, no_width)
    with pytest.raises(AnnotationError, match=r"images\[3\].*'width'"):
        load_coco_keypoints(path, COCO_17, image_dir=coco_dir)

    # a COCO file read with the CrowdPose layout: wrong keypoint count in the category
    with pytest.raises(AnnotationError, match=r"test_coco\.json.*keypoints.*17 names.*14"):
        load_coco_keypoints(coco_json, CROWDPOSE_14)

    no_crowd_index = json.loads(crowd_json.read_text())
    del no_crowd_index["images"][1]["crowdIndex"]
    path = _write(tmp_path, no_crowd_index, "crowdpose_x.json")
    with pytest.raises(AnnotationError, match=r"crowdpose_x\.json.*103319.*'crowdIndex'"):
        load_crowdpose_keypoints(path, CROWDPOSE_14, image_dir=crowd_dir)


def test_missing_image_file_is_reported(
    tmp_path: pathlib.Path, coco_dir: pathlib.Path, coco_json: pathlib.Path
) -> None:
    shutil.copy(coco_json, tmp_path / "test_coco.json")
    for name in ("000000000785.jpg", "000000040083.jpg", "000000196141.jpg"):
        shutil.copy(coco_dir / name, tmp_path / name)
    with pytest.raises(FileNotFoundError, match=r"test_coco\.json.*197388.*000000197388\.jpg"):
        load_coco_keypoints(tmp_path / "test_coco.json", COCO_17)
    records = load_coco_keypoints(tmp_path / "test_coco.json", COCO_17, check_images=False)
    assert len(records) == 4


def test_official_layout_image_folder_is_found(
    tmp_path: pathlib.Path, coco_dir: pathlib.Path, coco_json: pathlib.Path
) -> None:
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images" / "val2017").mkdir(parents=True)
    shutil.copy(coco_json, tmp_path / "annotations" / "person_keypoints_val2017.json")
    for image in coco_dir.glob("*.jpg"):
        shutil.copy(image, tmp_path / "images" / "val2017" / image.name)
    json_path = tmp_path / "annotations" / "person_keypoints_val2017.json"
    records = load_coco_keypoints(json_path, COCO_17)
    assert records[0].path == tmp_path / "images" / "val2017" / "000000000785.jpg"


def test_affine_matrix_and_warp_agree_with_joints() -> None:
    mat = bottom_up_affine_matrix((320.0, 200.0), 2.0, 128, 0.0)
    np.testing.assert_allclose(mat, [[0.32, 0, 128 * (-0.8 + 0.5)], [0, 0.32, 128 * (-0.5 + 0.5)]])
    # rotation: the crop is rotated by -rot about the output centre, i.e. OpenCV's rotation
    # matrix for +rot degrees (counter-clockwise on screen) after the plain crop
    rotated = bottom_up_affine_matrix((320.0, 200.0), 2.0, 128, 25.0)
    rot = np.vstack([cv2.getRotationMatrix2D((64.0, 64.0), 25.0, 1.0), [0, 0, 1]])
    np.testing.assert_allclose(rotated, (rot @ np.vstack([mat, [0, 0, 1]]))[:2], atol=1e-12)
    # a bright dot moves where its joint moves (input resolution, rotation included)
    transform = RandomAffineTransform(256, (64, 128))
    image = np.zeros((300, 400, 3), np.uint8)
    image[148:153, 248:253] = 255  # dot centred on (250, 150)
    joints = np.array([[[250.0, 150.0, 2.0]]])
    rng = np.random.default_rng(3)
    params = transform.sample(300, 400, rng)
    out, masks, moved = transform.apply(image, [np.ones((300, 400))] * 2, [joints] * 2, params)
    input_mat = bottom_up_affine_matrix(params.center, params.scale, 256, params.rotation)
    target = input_mat @ np.array([250.0, 150.0, 1.0])
    ys, xs = np.nonzero(out[:, :, 0] > 100)
    assert abs(xs.mean() - target[0]) < 0.6 and abs(ys.mean() - target[1]) < 0.6
    np.testing.assert_allclose(moved[0][0, 0, :2] * 2, moved[1][0, 0, :2], atol=1e-9)
    assert masks[0].shape == (64, 64) and set(np.unique(masks[0])) <= {0.0, 1.0}


def test_random_affine_draw_ranges_and_integer_translation() -> None:
    transform = RandomAffineTransform(512, (128, 256))
    rng = np.random.default_rng(0)
    for _ in range(200):
        params = transform.sample(400, 600, rng)
        assert 0.75 <= params.aug_scale < 1.5 and -30 <= params.rotation < 30
        assert params.scale == pytest.approx(2.0 * params.aug_scale)
        dx, dy = params.center[0] - 300, params.center[1] - 200
        bound = int(40 * params.scale)
        assert dx == int(dx) and dy == int(dy) and -bound <= dx < bound and -bound <= dy < bound
    a = transform.sample(400, 600, np.random.default_rng(7))
    b = transform.sample(400, 600, np.random.default_rng(7))
    assert a == b


def test_horizontal_flip_uses_flip_index_and_resolution() -> None:
    flip = RandomHorizontalFlip(COCO_17.flip_index, (64, 128), prob=1.0)
    joints = np.zeros((1, 17, 3))
    joints[0, 1] = (10.0, 5.0, 2.0)  # left eye
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    masks = [np.eye(4)[:, :] for _ in range(2)]
    out, out_masks, out_joints = flip(image, masks, [joints, joints * 2], np.random.default_rng(0))
    np.testing.assert_array_equal(out, image[:, ::-1])
    np.testing.assert_array_equal(out_masks[0], np.eye(4)[:, ::-1])
    assert tuple(out_joints[0][0, 2]) == (64 - 10 - 1, 5.0, 2.0)  # became the right eye
    assert tuple(out_joints[1][0, 2]) == (128 - 20 - 1, 10.0, 4.0)
    # unlabelled joints are mirrored too (x = r - 0 - 1) but stay invisible, as official
    assert tuple(out_joints[0][0, 1]) == (63.0, 0.0, 0.0)


def test_bottom_up_dataset_sample(coco_json: pathlib.Path) -> None:
    records = load_coco_keypoints(coco_json, COCO_17)
    dataset = BottomUpDataset(records, COCO_17, input_size=256, output_sizes=(64, 128), seed=5)
    sample = dataset[1]
    assert sample["image"].shape == (3, 256, 256) and sample["image"].dtype == torch.float32
    assert [tuple(h.shape) for h in sample["heatmaps"]] == [(17, 64, 64), (17, 128, 128)]
    assert [tuple(m.shape) for m in sample["masks"]] == [(64, 64), (128, 128)]
    assert sample["joints"].shape == (30, 17, 2) and sample["joints"].dtype == torch.int64
    assert sample["image_id"] == 40083
    # every AE index points at a heatmap peak of its joint at the first resolution
    indices = sample["joints"][sample["joints"][..., 1] > 0][:, 0]
    assert len(indices) > 10
    np.testing.assert_array_equal(sample["heatmaps"][0].reshape(-1)[indices].numpy(), 1.0)
    # determinism per (seed, epoch, index); another epoch draws differently
    again = dataset[1]
    torch.testing.assert_close(again["image"], sample["image"], rtol=0, atol=0)
    dataset.set_epoch(1)
    assert not torch.equal(dataset[1]["image"], sample["image"])
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    assert batch["image"].shape == (2, 3, 256, 256) and batch["joints"].shape == (2, 30, 17, 2)


def test_bottom_up_dataset_without_augmentation_matches_generators(
    coco_json: pathlib.Path
) -> None:
    records = load_coco_keypoints(coco_json, COCO_17)
    dataset = BottomUpDataset(records, COCO_17, input_size=512, output_sizes=(128, 256),
                              augment=False)
    sample = dataset[1]  # 40083: 500x333, one person without keypoints (masked out)
    record = dataset.records[1]
    joints = records_joints(record, 17)
    for size, heatmaps, mask in zip((128, 256), sample["heatmaps"], sample["masks"], strict=True):
        mat = bottom_up_affine_matrix((250.0, 166.5), 333 / 200, size)
        moved = joints.copy()
        moved[..., :2] = joints[..., :2] @ mat[:, :2].T + mat[:, 2]
        expected = HeatmapGenerator(size, 17, 2.0)(moved)
        np.testing.assert_array_equal(heatmaps.numpy(), expected)
        assert 0 < float(mask.mean()) < 1
    # un-normalising the image gives back RGB pixels of the centre crop
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    pixels = (sample["image"] * std + mean) * 255
    assert float(pixels.min()) > -0.01 and float(pixels.max()) < 255.01


def test_crowdpose_bottom_up_dataset_has_full_masks(crowd_json: pathlib.Path) -> None:
    records = load_crowdpose_keypoints(crowd_json, CROWDPOSE_14)
    dataset = BottomUpDataset(records, CROWDPOSE_14, input_size=256, output_sizes=(64, 128),
                              augment=False)
    sample = dataset[0]
    assert sample["heatmaps"][0].shape == (14, 64, 64)
    # 425x640 image, 'short' crop: the square crop lies inside the image, so no padding
    assert float(sample["masks"][0].min()) == 1.0


def test_top_down_instances_and_samples(coco_dir: pathlib.Path, coco_json: pathlib.Path) -> None:
    records = load_coco_keypoints(coco_json, COCO_17)
    gt = instances_from_records(records, aspect_ratio=0.75)
    assert len(gt) == 12  # the two num_keypoints == 0 people are skipped
    center, scale = box_to_center_scale((10, 20, 30, 80), 0.75)
    np.testing.assert_allclose(center, (25, 60))
    np.testing.assert_allclose(scale, (60 / 200 * 1.25, 80 / 200 * 1.25), rtol=1e-6)
    dets = instances_from_detections(coco_dir / "test_coco_det_AP_H_56.json", records, 17, 0.75)
    raw = json.loads((coco_dir / "test_coco_det_AP_H_56.json").read_text())
    assert len(dets) == sum(d["category_id"] == 1 for d in raw)
    assert np.all(dets[0].joints_vis == 1)

    plain = TopDownDataset(gt, COCO_17, augment=False)
    sample = plain[0]
    assert sample["image"].shape == (3, 256, 192) and sample["target"].shape == (17, 64, 48)
    weight = sample["target_weight"].numpy().ravel()
    for j in np.nonzero(weight)[0]:
        x, y = sample["joints"][j, :2].numpy() / 4
        peak = np.unravel_index(int(sample["target"][j].argmax()), (64, 48))
        assert peak == (int(y + 0.5), int(x + 0.5))
    dark = TopDownDataset(gt, COCO_17, encoding="dark", augment=True,
                          half_body_prob=0.3, upper_body_ids=COCO_UPPER_BODY_IDS, seed=1)
    for index in range(len(dark)):
        item = dark[index]
        assert item["target"].shape == (17, 64, 48)
        assert float(item["target"].max()) <= 1.0


def test_bad_detection_file(tmp_path: pathlib.Path, coco_json: pathlib.Path) -> None:
    records = load_coco_keypoints(coco_json, COCO_17)
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([{"image_id": 785, "category_id": 1, "score": 0.9}]))
    with pytest.raises(AnnotationError, match=r"dets\.json.*\[0\].*'bbox'"):
        instances_from_detections(path, records, 17, 0.75)
    entry = {"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [0, 0, 1, 1]}
    path.write_text(json.dumps([entry]))
    with pytest.raises(AnnotationError, match=r"image_id: 1 is not in"):
        instances_from_detections(path, records, 17, 0.75)


def test_crop_affine_matches_official_back_projection(parity_dir: pathlib.Path) -> None:
    """HRNet / DarkPose inverse crop affines reproduce the parity fixture's image coordinates.

    Fixture: `parity_dir` / dark_64x48_k11.npz (`dark_preds`, `hrnet_preds`
    through each repository's own affine, centre (96, 128), scale (0.96, 1.28), 48x64 maps).
    Tolerance 1e-4 px: the official code builds the matrix from float32 points.
    """
    from pose_core.data.top_down_dataset import crop_affine_transform

    with np.load(parity_dir / "dark_64x48_k11.npz") as data:
        ref = {key: data[key] for key in data.files}
    for n in range(2):
        center, scale = ref["center"][n], ref["scale"][n]
        inverse = crop_affine_transform(center, scale, 0, (48, 64), unbiased=True, inverse=True)
        dark = ref["dark_coords_heatmap"][n].astype(np.float64) @ inverse[:, :2].T + inverse[:, 2]
        np.testing.assert_allclose(dark, ref["dark_preds"][n], rtol=0, atol=1e-4)
        # HRNet: argmax plus the quarter offset, then its centre-aligned inverse affine
        heatmaps = ref["heatmaps"][n]
        coords = ref["argmax_coords"][n].astype(np.float64).copy()
        for j, (x, y) in enumerate(coords.astype(int)):
            if 1 < x < 47 and 1 < y < 63:
                diff = (heatmaps[j, y, x + 1] - heatmaps[j, y, x - 1],
                        heatmaps[j, y + 1, x] - heatmaps[j, y - 1, x])
                coords[j] += np.sign(diff) * 0.25
        inverse = crop_affine_transform(center, scale, 0, (48, 64), inverse=True)
        hrnet = coords @ inverse[:, :2].T + inverse[:, 2]
        np.testing.assert_allclose(hrnet, ref["hrnet_preds"][n], rtol=0, atol=1e-4)
