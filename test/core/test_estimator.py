"""PoseEstimator: full official pipeline on the real image, top-down path, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from official_weights import official_state_dict

from pose_core import PoseEstimator
from pose_core.inference import TorchBackend
from pose_core.models import build_model
from pose_core.models.checkpoint import load_checkpoint
from pose_core.visualization import draw_poses

PIPE = "higherhrnet_w32_512_coco_pipeline_000000196141.npz"
# multi-scale against single-scale people of the shipped model (320x240 synthetic frames)
MULTI_SCALE_STRONG_SCORE = 0.3
MULTI_SCALE_MAX_SHIFT_PX = 4.0


@pytest.fixture(scope="module")
def pipeline(parity_dir: Path) -> dict[str, np.ndarray]:
    with np.load(parity_dir / PIPE) as data:
        return {k: data[k] for k in data.files}


_MODELS: dict[str, torch.nn.Module] = {}


def _model(name: str) -> torch.nn.Module:
    """Random-weight models built once per test session (building W32 takes seconds)."""
    if name not in _MODELS:
        torch.manual_seed(0)
        _MODELS[name] = build_model(name)
    return _MODELS[name]


def _random_lite() -> PoseEstimator:
    model = _model("higherhrnet_lite_w16_256_coco")
    return PoseEstimator(
        "higherhrnet_lite_w16_256_coco", backend=TorchBackend(model), input_size=128,
        max_people=5,
    )


@pytest.mark.slow
def test_full_pipeline_matches_official(reference_dir: Path, pipeline: dict[str, np.ndarray]):
    """One flip-test forward of HigherHRNet-W32 (seed-0 weights) on the fixture image."""
    model = build_model("higherhrnet_w32_512_coco")
    keys = reference_dir / "keys_higherhrnet_w32_512_coco.json"
    load_checkpoint(model, official_state_dict(keys, 0))
    estimator = PoseEstimator(
        "higherhrnet_w32_512_coco", backend=TorchBackend(model), detection_threshold=1.35
    )
    image_bgr = np.ascontiguousarray(pipeline["image"][:, :, ::-1])
    poses = estimator(image_bgr)
    expected = pipeline["final_results"]
    assert poses.keypoints.shape == expected[..., :3].shape  # same 15 people
    np.testing.assert_allclose(poses.keypoints[..., :2], expected[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(poses.keypoints[..., 2], expected[..., 2], atol=1e-4, rtol=0)
    np.testing.assert_allclose(poses.scores, pipeline["scores"], atol=1e-5, rtol=0)
    assert set(estimator.last_timings) == {"preprocess", "network", "grouping"}
    assert all(v >= 0 for v in estimator.last_timings.values())


def test_bottom_up_smoke_and_batch() -> None:
    estimator = _random_lite()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (90, 120, 3), dtype=np.uint8),
              rng.integers(0, 255, (140, 70, 3), dtype=np.uint8)]
    results = estimator.predict_batch(images)
    assert len(results) == 2
    for poses in results:
        assert poses.keypoints.shape[1:] == (17, 3)
        assert np.isfinite(poses.keypoints).all()
    drawn = draw_poses(images[0], results[0], estimator.keypoint_spec)
    assert drawn.shape == images[0].shape and drawn is not images[0]


def test_batch_runs_one_forward_per_same_size_group_and_equals_single_calls() -> None:
    from pose_core.default_model import DEFAULT_MODEL

    class CountingBackend:
        """The real torch backend, counting its forward calls and their batch sizes."""

        def __init__(self, inner: TorchBackend) -> None:
            self.inner, self.device, self.batches = inner, inner.device, []

        def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
            self.batches.append(int(batch.shape[0]))
            return self.inner(batch)

    single = PoseEstimator(DEFAULT_MODEL, input_size=128, scales=(1.0,))
    backend = CountingBackend(single.backend)
    batched = PoseEstimator(DEFAULT_MODEL, input_size=128, scales=(1.0,), backend=backend)
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(3)]
    images.insert(1, rng.integers(0, 255, (128, 80, 3), dtype=np.uint8))  # another input size
    for image in images:  # bright blobs: something to detect
        for _ in range(6):
            y, x = rng.integers(8, image.shape[0] - 8), rng.integers(8, image.shape[1] - 8)
            image[y - 4 : y + 4, x - 4 : x + 4] = 255
    results = batched.predict_batch(images, batch_size=2)
    # flip test: 2 x the group per forward; groups {0, 2, 3} (chunks of 2 and 1) and {1}
    assert sorted(backend.batches) == [2, 2, 4]
    assert set(batched.last_timings) == {"preprocess", "network", "grouping"}
    for image, poses in zip(images, results):
        expected = single(image)
        assert len(expected) >= 1  # low-score fragments around the blobs: something to compare
        assert poses.keypoints.shape == expected.keypoints.shape
        np.testing.assert_allclose(poses.keypoints[..., :2], expected.keypoints[..., :2],
                                   atol=1e-3)
        np.testing.assert_allclose(poses.keypoints[..., 2], expected.keypoints[..., 2],
                                   atol=1e-4)
        np.testing.assert_allclose(poses.scores, expected.scores, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        batched.predict_batch(images, batch_size=0)
    with pytest.raises(ValueError, match="bottom-up"):
        batched.predict_batch(images[:1], boxes=[np.zeros((1, 4))])


def test_bottom_up_maps_are_what_the_grouping_sees(pipeline: dict[str, np.ndarray]) -> None:
    """`bottom_up_maps` gives the grouping input of `__call__`: grouping those maps gives the
    same people (same scores; keypoints differ only by the back-projection)."""
    from pose_core.grouping.parser import parse_bottom_up

    name = "higherhrnet_lite_w16_256_coco"
    estimator = PoseEstimator(
        name, backend=TorchBackend(_model(name)), input_size=128, max_people=5,
        detection_threshold=-1.0,  # random weights: take the top 5 of every joint
    )
    image_bgr = np.ascontiguousarray(pipeline["image"][:, :, ::-1])
    heatmaps, tags = estimator.bottom_up_maps(image_bgr)
    assert heatmaps.shape[0] == 17 and (tags.height, tags.width) == tuple(heatmaps.shape[1:])
    # the official resize: short side at the input size, long side padded to a multiple of 64
    assert min(heatmaps.shape[1:]) == 128 and max(heatmaps.shape[1:]) % 64 == 0
    grouped = parse_bottom_up(heatmaps, tags, estimator.grouping)
    poses = estimator(image_bgr)
    assert len(poses.scores) == len(grouped.scores) > 0
    np.testing.assert_allclose(poses.scores, grouped.scores, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(poses.keypoints[..., 2], grouped.grouped[..., 2])
    top_down = PoseEstimator(
        "hrnet_w32_256x192_coco", backend=TorchBackend(_model("hrnet_w32_256x192_coco"))
    )
    with pytest.raises(ValueError, match="top-down"):
        top_down.bottom_up_maps(image_bgr)


def test_multi_scale_finds_the_single_scale_people() -> None:
    """Scales (1, 1.5) average the maps of two passes: on frames where the shipped model finds
    people, every strong single-scale person is found again, its joints moved by a few pixels at
    most (median over the joints found by both), and something did move (the second scale ran)."""
    from pose_core.data.synthetic import SyntheticVideo
    from pose_core.default_model import DEFAULT_MODEL

    single = PoseEstimator(DEFAULT_MODEL, flip_test=False, scales=(1.0,))
    multi = PoseEstimator(DEFAULT_MODEL, flip_test=False, scales=(1.0, 1.5))
    video = SyntheticVideo(320, 240, num_people=3, fps=10.0, seed=3)
    moved = 0.0
    for index in (0, 10):
        image = video.frame(index).image_bgr
        one = single(image).with_min_score(MULTI_SCALE_STRONG_SCORE)
        several = multi(image).with_min_score(0.1)
        assert len(one) >= 2, f"the shipped model must find people in frame {index}"
        assert len(several) >= len(one) and several.keypoints.shape[1:] == (17, 3)
        for person in one.keypoints:
            both = (person[None, :, 2] > 0) & (several.keypoints[..., 2] > 0)
            distance = np.linalg.norm(several.keypoints[..., :2] - person[None, :, :2], axis=2)
            medians = [np.median(d[b]) if b.sum() >= 8 else np.inf
                       for d, b in zip(distance, both)]
            nearest = int(np.argmin(medians))
            assert medians[nearest] <= MULTI_SCALE_MAX_SHIFT_PX, (index, medians)
            moved = max(moved, float(medians[nearest]))
    assert moved > 0.0, "multi-scale gave exactly the single-scale joints"


def test_default_test_scales_come_from_the_model() -> None:
    """`scales=None` takes the model's `test_scales`: two scales for the shipped model, single
    scale for the official ones; explicit scales win; the CLIs default to the model's (the
    node's own single-scale default: test/ros/test_params.py)."""
    from pose_core.default_model import DEFAULT_MODEL
    from pose_core.evaluation.cli import build_parser as eval_parser
    from pose_core.inference.cli import build_parser as infer_parser
    from pose_core.models import model_info

    assert model_info(DEFAULT_MODEL).test_scales == (1.0, 1.5)
    assert model_info("higherhrnet_w32_512_coco").test_scales == (1.0,)
    assert PoseEstimator(DEFAULT_MODEL, flip_test=False).scales == (1.0, 1.5)
    assert PoseEstimator(DEFAULT_MODEL, flip_test=False, scales=[1.0]).scales == (1.0,)
    assert PoseEstimator("higherhrnet_w32_512_coco", flip_test=False).scales == (1.0,)
    assert infer_parser().parse_args(["x.jpg"]).scales is None
    assert eval_parser().parse_args(
        ["--dataset", "coco", "--annotations", "a.json", "--images", "im"]).scales is None


def test_top_down_with_boxes() -> None:
    model = _model("hrnet_w32_256x192_coco")
    for decoder, flip in (("quarter", True), ("dark", False)):
        estimator = PoseEstimator(
            "hrnet_w32_256x192_coco", backend=TorchBackend(model), input_size=(64, 96),
            top_down_decoder=decoder, flip_test=flip,
        )
        image = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
        boxes = np.array([[10, 10, 50, 90, 0.9], [80, 20, 60, 80, 0.8]], np.float64)
        poses = estimator(image, boxes)
        assert 1 <= len(poses) <= 2 and poses.keypoints.shape[1:] == (17, 3)
        # keypoints land inside the enlarged boxes
        assert np.all(poses.keypoints[..., 0] > -40) and np.all(poses.keypoints[..., 0] < 200)
        assert len(estimator(image, np.zeros((0, 4)))) == 0


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10), np.uint8), "H, W, 3"),
        (np.zeros((10, 10, 4), np.uint8), "H, W, 3"),
        (np.zeros((10, 10, 1), np.uint8), "H, W, 3"),
        ([[1, 2, 3]], "numpy"),
        (np.zeros((20000, 1, 3), np.uint8), "exceeds"),
    ],
)
def test_bad_images_raise_clear_errors(image: np.ndarray, message: str) -> None:
    estimator = _random_lite()
    with pytest.raises(ValueError, match=message):
        estimator(image)


def test_extreme_aspect_and_huge_image() -> None:
    estimator = _random_lite()
    with pytest.raises(ValueError, match="aspect"):
        estimator(np.zeros((2, 8000, 3), np.uint8))
    huge = np.zeros((8000, 8000, 3), np.uint8)  # processed at the network size
    poses = estimator(huge)
    assert poses.keypoints.shape[1:] == (17, 3)


def test_nan_network_output_raises() -> None:
    class NanBackend:
        device = torch.device("cpu")

        def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
            n, _, h, w = batch.shape
            return (torch.full((n, 34, h // 4, w // 4), float("nan")),
                    torch.zeros(n, 17, h // 2, w // 2))

    estimator = PoseEstimator("higherhrnet_lite_w16_256_coco", backend=NanBackend(),
                              input_size=64)
    with pytest.raises(ValueError, match="NaN"):
        estimator(np.zeros((50, 50, 3), np.uint8))


def test_options_and_defaults() -> None:
    with pytest.raises(TypeError, match="unknown"):
        PoseEstimator("higherhrnet_lite_w16_256_coco", backend=TorchBackend(torch.nn.Identity()),
                      detection_treshold=0.2)
    with pytest.raises(ValueError, match="1.0"):
        PoseEstimator("higherhrnet_lite_w16_256_coco", backend=TorchBackend(torch.nn.Identity()),
                      scales=(0.5, 2.0))
    with pytest.raises(ValueError, match="boxes"):
        _random_lite()(np.zeros((20, 20, 3), np.uint8), boxes=np.zeros((1, 4)))
    with pytest.warns(UserWarning, match="RANDOM"):
        PoseEstimator("hrnet_w32_256x192_coco")
    with pytest.raises(ValueError, match="CUDA"):
        TorchBackend(torch.nn.Identity(), "cpu", fp16=True)


def test_cli_writes_results_and_drawings(tmp_path: Path) -> None:
    import json

    import cv2

    from pose_core.inference.cli import main

    model = _model("higherhrnet_lite_w16_256_coco")
    checkpoint = tmp_path / "lite.pt"
    torch.save(model.state_dict(), checkpoint)
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(images / "000000000042.png"), rng.integers(0, 255, (80, 100, 3), np.uint8))
    cv2.imwrite(str(images / "frame_b.png"), rng.integers(0, 255, (60, 90, 3), np.uint8))
    (images / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "results.json"
    code = main([str(images), "--out", str(out), "--draw-dir", str(tmp_path / "drawn"),
                 "--model", "higherhrnet_lite_w16_256_coco", "--checkpoint", str(checkpoint),
                 "--input-size", "128", "--max-people", "5"])
    assert code == 0
    records = json.loads(out.read_text())
    assert all(r["category_id"] == 1 and len(r["keypoints"]) == 51 for r in records)
    assert {r["image_id"] for r in records} <= {42, "frame_b"}
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == [
        "000000000042.jpg", "frame_b.jpg"]
    assert main([str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_bottom_up_dark_refine_moves_joints_slightly(parity_dir: Path) -> None:
    from pose_core.inference.test_time_aug import merge_stage_outputs

    with np.load(parity_dir / PIPE) as data:
        raw = {k: torch.from_numpy(data[k]) for k in
               ("s0_out0", "s0_out1", "s0_flip_out0", "s0_flip_out1")}
        center, scale = data["center"], data["scale"]
    maps = merge_stage_outputs([raw["s0_out0"], raw["s0_out1"]],
                               [raw["s0_flip_out0"], raw["s0_flip_out1"]], 17,
                               (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15))
    identity = TorchBackend(torch.nn.Identity())
    plain = PoseEstimator("higherhrnet_w32_512_coco", backend=identity, detection_threshold=1.35)
    dark = PoseEstimator("higherhrnet_w32_512_coco", backend=identity, detection_threshold=1.35,
                         dark_refine=True)
    a = plain.decode_bottom_up([maps], (768, 512), center, scale)
    b = dark.decode_bottom_up([maps], (768, 512), center, scale)
    assert a.keypoints.shape == b.keypoints.shape
    np.testing.assert_array_equal(a.keypoints[..., 2], b.keypoints[..., 2])
    moved = np.abs(a.keypoints[..., :2] - b.keypoints[..., :2])
    assert moved.max() < 2.0 and moved.max() > 0  # under a heatmap pixel (x 640/768)


def test_poses_with_min_score_keeps_order_and_arrays() -> None:
    from pose_core.structures import Poses

    keypoints = np.arange(3 * 2 * 3, dtype=np.float32).reshape(3, 2, 3)
    poses = Poses(keypoints, np.array([0.5, 0.05, 0.1], np.float32))
    kept = poses.with_min_score(0.1)
    assert kept.scores.tolist() == pytest.approx([0.5, 0.1])
    np.testing.assert_array_equal(kept.keypoints, keypoints[[0, 2]])
    assert poses.with_min_score(0.0) is poses
    assert len(poses.with_min_score(0.9)) == 0 and poses.with_min_score(0.9).num_keypoints == 2
