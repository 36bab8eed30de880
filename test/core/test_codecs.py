"""The method seam: head layouts as data, codecs that encode and decode (round trips), the
registry naming each model's decoder, and tags of any dimension through the flip test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pose_core.codecs import DECODERS, build_decoder, decoder_class
from pose_core.codecs.base import TestOptions
from pose_core.geometry import affine_matrix, apply_affine
from pose_core.inference.test_time_aug import aggregate_scales, merge_stage_outputs
from pose_core.keypoint_specs import COCO_17
from pose_core.models import MODELS, Channels, HeadLayout, build_model, model_info


def _people(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """(P, 17, 3) well separated people inside a size x size square, all joints visible."""
    people = np.zeros((count, 17, 3))
    for p in range(count):
        centre = np.array([size * (p + 0.5) / count, size / 2])
        people[p, :, :2] = centre + rng.uniform(-0.12, 0.12, (17, 2)) * size / count * 2
        people[p, :, 2] = 2
    people[..., :2] = np.clip(people[..., :2], 8, size - 9)
    return people


def test_every_registered_model_names_a_known_decoder_and_a_consistent_head() -> None:
    for name, info in MODELS.items():
        assert info.decoder in DECODERS, name
        assert decoder_class(info.decoder) is not None
        head = info.head_layout
        # Double Embedding adds the person centre as one more heatmap / tag channel
        extra = 1 if info.decoder == "double_embedding" else 0
        assert head.num_joints == info.num_joints + extra, name
        if info.decoder == "associative_embedding":
            # one tag value per joint (official); the tag2 experiment has two
            assert head.tag_dim == (2 if name.endswith("_tag2") else 1), name
            assert head.tags == Channels(0, info.num_joints, info.num_joints * head.tag_dim)
        elif info.decoder == "coupled_embedding":
            dim = head.tag_dim
            assert head.tags == Channels(0, info.num_joints, info.num_joints * dim)
        elif info.family == "higherhrnet":
            assert head.tags is not None
        else:
            assert head.tags is None and len(head.heatmaps) == 1


@pytest.mark.parametrize(
    "name",
    ["higherhrnet_lite_w16_256_coco", "higherhrnet_lite_w16_256_coco_tag2",
     "hrnet_w32_256x192_crowdpose"],
)
def test_head_layout_matches_the_network_outputs(name: str) -> None:
    info = model_info(name)
    model = build_model(name).eval()
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 64, 64))
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    head = info.head_layout
    assert len(outputs) == head.num_outputs
    for i, output in enumerate(outputs):
        assert output.shape[1] == head.output_channels(i)


def test_head_layout_rejects_inconsistent_blocks() -> None:
    with pytest.raises(ValueError, match="heatmap block"):
        HeadLayout(17, (Channels(0, 0, 16),))
    with pytest.raises(ValueError, match="tag"):
        HeadLayout(17, (Channels(0, 0, 17),), Channels(0, 17, 17), tag_dim=8)
    with pytest.raises(ValueError, match="tags and tag_dim"):
        HeadLayout(17, (Channels(0, 0, 17),), None, tag_dim=1)
    with pytest.raises(KeyError, match="centre"):
        HeadLayout.heatmaps_only(17).extra("centre")


def test_multi_dimensional_tags_through_the_flip_test() -> None:
    """Tags of D values per joint (channel j * D + d): the merged maps hold the normal pass's D
    values then the mirrored pass's, mirrored back with joints swapped by the flip index."""
    torch.manual_seed(0)
    j, dim, flip_index = 17, 3, COCO_17.flip_index
    head = HeadLayout.associative_embedding(j, num_resolutions=1, tag_dim=dim)
    normal = [torch.randn(2, j + j * dim, 8, 10)]
    mirrored = [torch.randn(2, j + j * dim, 8, 10)]
    maps = merge_stage_outputs(normal, mirrored, head, flip_index)
    assert maps.tags.shape == (2, 2 * dim, j, 8, 10)
    tags = normal[0][:, j:].reshape(2, j, dim, 8, 10)
    tags_mirrored = mirrored[0][:, j:].reshape(2, j, dim, 8, 10)
    for joint in range(j):
        for d in range(dim):
            torch.testing.assert_close(maps.tags[:, d, joint], tags[:, joint, d])
            torch.testing.assert_close(
                maps.tags[:, dim + d, joint],
                torch.flip(tags_mirrored[:, flip_index[joint], d], dims=[-1]),
            )
    # one value per joint is the HigherHRNet layout, and an int J means exactly that
    ae = HeadLayout.associative_embedding(j, num_resolutions=1)
    outputs, flipped = [torch.randn(1, 2 * j, 8, 10)], [torch.randn(1, 2 * j, 8, 10)]
    a = merge_stage_outputs(outputs, flipped, ae, flip_index)
    b = merge_stage_outputs(outputs, flipped, j, flip_index)
    torch.testing.assert_close(a.tags, b.tags)
    _, sampler = aggregate_scales([a], (20, 16))
    assert sampler.dense(0).shape == (2, 16 * 20)  # (L, H x W): normal, mirrored
    _, sampler = aggregate_scales([maps], (20, 16), index=1)
    assert sampler.dense(4).shape == (2 * dim, 16 * 20)


def test_associative_embedding_codec_round_trip() -> None:
    """encode(people) written as network outputs (heatmaps, one tag value per person around its
    joints) decodes back to the same people."""
    rng = np.random.default_rng(3)
    info = model_info("higherhrnet_lite_w16_256_coco")
    codec = build_decoder(info, None, TestOptions(flip_test=False))
    people = _people(rng, 3, 256)
    targets = codec.encode(people)
    assert targets["heatmaps_0"].shape == (17, 64, 64)
    assert targets["heatmaps_1"].shape == (17, 128, 128)
    assert targets["joints"].shape == (30, 17, 2)
    tags = np.zeros((17, 64, 64), np.float32)
    for p, person in enumerate(people):
        for joint, (x, y, _) in enumerate(person / np.array([4, 4, 1])):
            tags[joint, max(int(y) - 2, 0) : int(y) + 3, max(int(x) - 2, 0) : int(x) + 3] = 5 + 3 * p
    outputs = [
        torch.from_numpy(np.concatenate([targets["heatmaps_0"], tags]))[None],
        torch.from_numpy(targets["heatmaps_1"])[None],
    ]
    prepared = codec.prepare(np.zeros((256, 256, 3), np.uint8), None)
    maps = [codec.merge(outputs, None, 0, None)]
    poses = codec.decode(maps, prepared, slice(0, 1), None)
    assert len(poses) == 3
    order = np.argsort(poses.keypoints[:, 0, 0])
    error = np.abs(poses.keypoints[order, :, :2] - people[:, :, :2])
    assert error.max() < 2.0, error.max()
    # the ground truth joint-index encoding points at each joint's tag pixel
    flat = targets["joints"][0, :, 0]
    assert np.all(flat // (64 * 64) == np.arange(17))


# one heatmap pixel is ~5 image pixels here: the rounded HRNet targets with the quarter
# offset land within about half a heatmap pixel, DARK's unbiased ones within a small fraction
@pytest.mark.parametrize("variant, tolerance", [("quarter", 2.7), ("dark", 0.6)])
def test_top_down_codec_round_trip(variant: str, tolerance: float) -> None:
    """A person's joints encoded in its crop, decoded from the targets as the network output,
    land on the joints in image pixels."""
    rng = np.random.default_rng(5)
    info = model_info("hrnet_w32_256x192_coco")
    codec = build_decoder(info, None, TestOptions(flip_test=False, top_down_decoder=variant))
    image = np.zeros((480, 640, 3), np.uint8)
    box = np.array([[200.0, 100.0, 150.0, 260.0, 0.9]])
    prepared = codec.prepare(image, box)
    centre, scale = prepared.frame.centers[0], prepared.frame.scales[0]
    joints_image = np.column_stack([rng.uniform(215, 335, 17), rng.uniform(115, 345, 17)])
    to_crop = affine_matrix(centre, scale, codec.input_wh, corner_aligned=codec.dark)
    joints_crop = apply_affine(joints_image, to_crop)
    targets = codec.encode(np.column_stack([joints_crop, np.full(17, 2.0)]))
    assert targets["target"].shape == (17, 64, 48)
    assert targets["target_weight"].min() == 1
    maps = [codec.merge([torch.from_numpy(targets["target"])[None]], None, 0, None)]
    poses = codec.decode(maps, prepared, slice(0, 1), None)
    assert len(poses) == 1
    error = np.abs(poses.keypoints[0, :, :2] - joints_image).max()
    assert error < tolerance, error
    np.testing.assert_allclose(poses.scores, 0.9 * poses.keypoints[0, :, 2].mean(), rtol=1e-5)


def test_top_down_batches_images_and_equals_single_calls() -> None:
    """Top-down crops of several images share one forward (flip test: 2 x all crops) and each
    image's people equal those of its own call."""
    from pose_core.inference import PoseEstimator, TorchBackend

    class Counting(TorchBackend):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__(model)
            self.batches: list[int] = []

        def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
            self.batches.append(int(batch.shape[0]))
            return super().__call__(batch)

    torch.manual_seed(0)
    network = torch.nn.Sequential(  # a stand-in with the top-down head: 17 maps at 1/4
        torch.nn.Conv2d(3, 17, 4, stride=4), torch.nn.Sigmoid()
    )
    backend = Counting(network)
    estimator = PoseEstimator("hrnet_w32_256x192_coco", backend=backend)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(3)]
    boxes = [np.array([[10.0, 20, 100, 180, 0.8], [150, 30, 120, 190, 0.6]]),
             np.zeros((0, 4)), np.array([[40.0, 40, 200, 150]])]
    results = estimator.predict_batch(images, boxes)
    assert backend.batches == [2 * 3]  # 3 crops, mirrored too; the empty image runs nothing
    backend.batches.clear()
    assert len(estimator.predict_batch(images, boxes, batch_size=2)) == 3
    assert backend.batches == [2 * 2, 2 * 1]  # at most 2 crops per forward, images kept whole
    assert [len(p) for p in results] == [2, 0, 1]
    for image, image_boxes, batched in zip(images, boxes, results):
        single = estimator(image, image_boxes)
        np.testing.assert_allclose(batched.keypoints, single.keypoints, atol=1e-4)
        np.testing.assert_allclose(batched.scores, single.scores, atol=1e-5)


def test_method_seams_refuse_unknown_methods_and_options() -> None:
    """`group_bottom_up(method=...)` names its method; options of other methods are refused
    by name, by the grouping and by `PoseEstimator`."""
    from pose_core.grouping import group_bottom_up
    from pose_core.inference import PoseEstimator, TorchBackend

    heatmaps, tags = np.zeros((17, 8, 8), np.float32), np.zeros((17, 8, 8, 1), np.float32)
    assert len(group_bottom_up(heatmaps, tags)) == 0
    with pytest.raises(ValueError, match="unknown grouping method 'nope'"):
        group_bottom_up(heatmaps, tags, method="nope")
    with pytest.raises(TypeError, match="offsets"):
        group_bottom_up(heatmaps, tags, offsets=np.zeros((2, 8, 8)))
    backend = TorchBackend(torch.nn.Conv2d(3, 17, 4, stride=4))
    with pytest.raises(TypeError, match="dem_mode"):
        PoseEstimator("hrnet_w32_256x192_coco", backend=backend, dem_mode="paper")
    options = TestOptions(method_options=(("b", 2), ("a", 1)))
    assert options.method_option("a") == 1 and options.method_option("c", 3) == 3
    with pytest.raises(TypeError, match=r"\['b'\]"):
        options.check_method_options(("a",), "x")
