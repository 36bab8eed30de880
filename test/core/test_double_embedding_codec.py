"""Double Embedding decoder: the released test path end to end (fixtures), flip handling of the
offsets, the paper mode's per-scale offsets, and the estimator options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from official_weights import official_state_dict

from pose_core import PoseEstimator
from pose_core.codecs import build_decoder
from pose_core.codecs.base import TestOptions
from pose_core.models import model_info

NAME = "dem_higherhrnet_w32_512_coco"


@pytest.fixture(scope="module")
def seed44_checkpoint(reference_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dem") / "dem_seed44.pth"
    torch.save(official_state_dict(reference_dir / "keys_dem_coco_w32_512.json", 44), path)
    return path


def _check_pipeline(parity_dir: Path, name: str, checkpoint: Path) -> None:
    data = np.load(parity_dir / f"{name}.npz")
    meta = json.loads((parity_dir / f"{name}.json").read_text())
    estimator = PoseEstimator(
        NAME, checkpoint=checkpoint, flip_test=True, scales=meta["scales"], input_size=512,
        detection_threshold=meta["detection_threshold_joints"], dem_mode="release",
    )
    image_bgr = np.ascontiguousarray(data["image"][..., ::-1])
    codec = estimator.codec
    prepared = codec.prepare(image_bgr, None)
    assert prepared.frame.base_size_wh == tuple(data["base_size"])
    merged = [codec.merge(*estimator._run(batch), k, None)
              for k, batch in enumerate(prepared.inputs)]
    heatmaps, tags, offsets = codec.aggregate(merged, prepared.frame.base_size_wh)
    y, x = data["probe_yx"][:, 0], data["probe_yx"][:, 1]
    np.testing.assert_allclose(heatmaps[:, y, x].numpy(), data["det_probe"], atol=1e-4)
    np.testing.assert_allclose(tags[:, y, x].numpy(), data["tag_probe"], atol=1e-4)
    np.testing.assert_allclose(offsets[:, y, x].numpy(), data["off_probe"], atol=1e-4)
    poses = codec.decode(merged, prepared, slice(0, 1), None)
    expected = data["final_results"]
    assert poses.keypoints.shape == (expected.shape[0], 17, 3)
    np.testing.assert_allclose(poses.keypoints[:, :, :2], expected[:, :, :2], atol=1e-3)
    np.testing.assert_allclose(poses.keypoints[:, :, 2], expected[:, :, 2], atol=1e-5)
    np.testing.assert_allclose(poses.scores, data["scores"], atol=1e-5)
    same = estimator(image_bgr)  # the estimator's own path gives the same people
    np.testing.assert_allclose(same.keypoints, poses.keypoints, atol=1e-4)


@pytest.mark.slow
def test_release_test_path_equals_release(parity_dir: Path, seed44_checkpoint: Path) -> None:
    _check_pipeline(parity_dir, "dem_coco_w32_512_pipeline_000000040083", seed44_checkpoint)


@pytest.mark.slow
def test_release_multiscale_aggregation(parity_dir: Path, seed44_checkpoint: Path) -> None:
    _check_pipeline(parity_dir, "dem_coco_w32_512_pipeline_multiscale_000000040083",
                    seed44_checkpoint)


def _codec(mode: str, scales: tuple[float, ...] = (1.0,), flip_test: bool = True):
    options = TestOptions(flip_test=flip_test, scales=scales, method_options=(("dem_mode", mode),))
    return build_decoder(model_info(NAME), 64, options)


def _mirrored(codec, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """What a perfectly mirror-equivariant network returns for the mirrored image: joint
    channels swapped by the flip index, maps mirrored, offsets' dx negated."""
    joints = list(codec.flip_index)
    offsets = list(codec.offset_flip_index)
    sign = torch.ones(len(offsets))
    sign[1::2] = -1.0
    off4, off2, maps4, maps2 = outputs
    n = len(joints)
    maps4_index = joints + [n + j for j in joints]
    return [
        torch.flip(off4[:, offsets] * sign[None, :, None, None], [3]),
        torch.flip(off2[:, offsets] * sign[None, :, None, None], [3]),
        torch.flip(maps4[:, maps4_index], [3]),
        torch.flip(maps2[:, joints], [3]),
    ]


def _outputs(seed: int, side: int = 16) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [(1, 42, side, side), (1, 42, 2 * side, 2 * side), (1, 36, side, side),
              (1, 18, 2 * side, 2 * side)]
    return [torch.randn(shape, generator=generator) for shape in shapes]


def test_flip_of_an_equivariant_network_changes_nothing() -> None:
    """Channel permutation and dx negation undo the mirror exactly: heatmaps and offsets equal
    the normal pass's, the flip tags equal the normal tags."""
    codec = _codec("release")
    outputs = _outputs(0)
    with_flip = codec.merge(outputs, _mirrored(codec, outputs), 0, None)
    alone = _codec("release", flip_test=False).merge(outputs, None, 0, None)
    base = (64, 64)
    heatmaps, tags, offsets = codec.aggregate([with_flip], base)
    heatmaps1, tags1, offsets1 = codec.aggregate([alone], base)
    torch.testing.assert_close(heatmaps, heatmaps1, atol=1e-6, rtol=0)
    torch.testing.assert_close(offsets, offsets1, atol=1e-6, rtol=0)
    torch.testing.assert_close(tags[..., 1], tags[..., 0], atol=1e-6, rtol=0)
    assert tags1.shape[-1] == 1


def test_paper_mode_scales_offsets_per_pass() -> None:
    """A network seeing the image at scale 2 predicts offsets 2x longer (in its input pixels):
    paper mode brings them to scale 1 before the average, the release averages them as is."""
    outputs = _outputs(1)
    doubled = [o.clone() for o in outputs]
    doubled[0] = doubled[0] * 2
    doubled[1] = doubled[1] * 2
    base = (64, 64)
    for mode, expected_factor in (("paper", 1.0), ("release", 1.5)):
        codec = _codec(mode, scales=(1.0, 2.0), flip_test=False)
        passes = [codec.merge(doubled, None, 0, None), codec.merge(outputs, None, 1, None)]
        single = codec.merge(outputs, None, 1, None)
        _, _, offsets = codec.aggregate(passes, base)
        _, _, reference = codec.aggregate([single], base)
        torch.testing.assert_close(offsets, reference * expected_factor, atol=1e-5, rtol=1e-5)


def test_estimator_options() -> None:
    codec = _codec("release")
    assert codec.mode.name == "release" and not codec.mode.mrm
    assert _codec("paper").mode.mrm
    default = build_decoder(model_info(NAME), 64, TestOptions())
    assert default.mode.name == "paper"
    with pytest.raises(TypeError, match="dem_colour"):
        build_decoder(model_info(NAME), 64, TestOptions(method_options=(("dem_colour", 1),)))
    with pytest.raises(ValueError, match="dem_mode"):
        _codec("official")
    with pytest.raises(TypeError):  # other methods refuse the DEM option
        PoseEstimator("higherhrnet_lite_w16_256_coco", dem_mode="paper")
