"""The reduced mirrored pass (`flip_scale` < 1): its input, its resizing back, the estimator's
use of it, and the models it refuses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pose_core import PoseEstimator
from pose_core.codecs.base import TestOptions
from pose_core.data.synthetic import SyntheticVideo
from pose_core.default_model import DEFAULT_MODEL, default_checkpoint_path
from pose_core.inference import TorchBackend
from pose_core.inference.test_time_aug import mirrored_input, resized_like
from pose_core.models import build_model
from pose_core.models.checkpoint import load_checkpoint

# people found by the official flip test and by the reduced one (shipped model, 640x480 frames)
STRONG_SCORE = 0.4
MAX_MEDIAN_SHIFT_PX = 3.0


def test_mirrored_input_mirrors_and_resizes_to_the_multiple() -> None:
    batch = torch.arange(2 * 3 * 64 * 96, dtype=torch.float32).reshape(2, 3, 64, 96)
    assert torch.equal(mirrored_input(batch), torch.flip(batch, dims=[3]))
    reduced = mirrored_input(batch, 0.75, 32)
    assert reduced.shape == (2, 3, 64, 64)  # 48 -> 64 (nearest multiple), 72 -> 64
    assert mirrored_input(batch, 0.5, 16).shape == (2, 3, 32, 48)
    assert mirrored_input(batch, 0.25, 32).shape == (2, 3, 32, 32)  # never below one multiple
    expected = F.interpolate(torch.flip(batch, dims=[3]), size=(32, 48), mode="bilinear",
                             align_corners=False)
    assert torch.equal(mirrored_input(batch, 0.5, 16), expected)


def test_resized_like_brings_outputs_onto_the_reference_grids() -> None:
    reference = [torch.zeros(1, 34, 64, 96), torch.zeros(1, 17, 128, 192)]
    small = [torch.rand(1, 34, 48, 72), torch.rand(1, 17, 96, 144)]
    resized = resized_like(small, reference)
    assert [r.shape for r in resized] == [r.shape for r in reference]
    same = resized_like(reference, reference)
    assert all(a is b for a, b in zip(same, reference))
    # resizing commutes with the mirror (what lets the merge flip back after resizing)
    mirrored_then_resized = resized_like([torch.flip(small[0], dims=[3])], reference)[0]
    resized_then_mirrored = torch.flip(resized[0], dims=[3])
    assert torch.allclose(mirrored_then_resized, resized_then_mirrored, atol=1e-6)


class _InputShapes:
    """The real torch backend, recording the shape of every batch it runs."""

    def __init__(self, backend: TorchBackend):
        self.backend = backend
        self.device = backend.device
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self.shapes.append(tuple(batch.shape))
        return self.backend(batch)


def _shipped_backend() -> TorchBackend:
    model = build_model(DEFAULT_MODEL)
    load_checkpoint(model, default_checkpoint_path())
    return TorchBackend(model.eval())


def test_reduced_flip_runs_a_smaller_mirrored_pass_and_finds_the_same_people() -> None:
    """flip_scale 0.75 at the demo's input (384x256): one normal pass, one 288x192 mirrored
    pass; on frames where the official flip test finds people, the reduced one finds each strong
    person again within a few pixels (median over the joints both found), and its joints are not
    the official ones exactly (the reduced pass ran)."""
    video = SyntheticVideo(640, 480, num_people=3, fps=10.0, seed=11)
    probe = _InputShapes(_shipped_backend())
    official = PoseEstimator(DEFAULT_MODEL, backend=_shipped_backend(), scales=(1.0,))
    reduced = PoseEstimator(DEFAULT_MODEL, backend=probe, scales=(1.0,), flip_scale=0.75)
    assert reduced.flip_scale == 0.75 and official.flip_scale == 1.0
    largest_shift = 0.0
    for index in (0, 15):
        image = video.frame(index).image_bgr
        probe.shapes.clear()
        found = reduced(image)
        assert probe.shapes == [(1, 3, 256, 384), (1, 3, 192, 288)]
        expected = official(image).with_min_score(STRONG_SCORE)
        assert len(expected) >= 2, f"the shipped model must find people in frame {index}"
        for person in expected.keypoints:
            both = (person[None, :, 2] > 0) & (found.keypoints[..., 2] > 0)
            distance = np.linalg.norm(found.keypoints[..., :2] - person[None, :, :2], axis=2)
            medians = [np.median(d[b]) if b.sum() >= 8 else np.inf
                       for d, b in zip(distance, both)]
            assert min(medians) <= MAX_MEDIAN_SHIFT_PX, (index, medians)
            largest_shift = max(largest_shift, float(min(medians)))
    assert largest_shift > 0.0, "the reduced flip gave exactly the official joints"


def test_flip_scale_one_is_the_official_flip_test() -> None:
    image = SyntheticVideo(320, 240, num_people=2, fps=10.0, seed=4).frame(0).image_bgr
    backend = _shipped_backend()
    default = PoseEstimator(DEFAULT_MODEL, backend=backend, scales=(1.0,))(image)
    explicit = PoseEstimator(DEFAULT_MODEL, backend=backend, scales=(1.0,), flip_scale=1.0)(image)
    assert len(default) > 0
    np.testing.assert_array_equal(default.keypoints, explicit.keypoints)


@pytest.mark.parametrize("value", [0.0, 0.2, 1.5, -1.0])
def test_flip_scale_out_of_range_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="flip_scale must be in"):
        TestOptions(flip_scale=value)


@pytest.mark.parametrize("name", ["dem_higherhrnet_lite_w16_256_coco", "hrnet_w32_256x192_coco"])
def test_models_with_offsets_or_top_down_refuse_a_reduced_flip(name: str) -> None:
    torch.manual_seed(0)
    backend = TorchBackend(build_model(name))
    with pytest.raises(ValueError, match="flip_scale < 1 needs a bottom-up model"):
        PoseEstimator(name, backend=backend, flip_scale=0.75)


def test_coupled_embedding_takes_a_reduced_flip() -> None:
    """CE's outputs are heatmaps and 8-D tags: resizable, so the option is allowed."""
    torch.manual_seed(0)
    name = "ce_higherhrnet_lite_w16_256_coco"
    estimator = PoseEstimator(name, backend=TorchBackend(build_model(name)), input_size=128,
                              flip_scale=0.75, max_people=3)
    poses = estimator(np.zeros((96, 128, 3), np.uint8))
    assert poses.keypoints.shape[1:] == (17, 3)


def test_clis_take_the_flip_scale(tmp_path) -> None:
    """`pose-infer` / `pose-eval --flip-scale` (default 1.0, the official flip test); pose-infer
    runs with it on an image and writes its people."""
    import json

    import cv2

    from pose_core.evaluation.cli import build_parser as eval_parser
    from pose_core.inference.cli import build_parser as infer_parser
    from pose_core.inference.cli import main as infer_main

    assert infer_parser().parse_args(["x.jpg"]).flip_scale == 1.0
    assert eval_parser().parse_args(
        ["--dataset", "coco", "--annotations", "a.json", "--images", "im",
         "--flip-scale", "0.625"]).flip_scale == 0.625
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), SyntheticVideo(320, 240, num_people=2, fps=10.0, seed=4).frame(0)
                .image_bgr)
    out = tmp_path / "people.json"
    assert infer_main([str(image), "--flip-scale", "0.625", "--scales", "1.0",
                       "--backend", "torch", "--out", str(out)]) == 0
    assert json.loads(out.read_text())
