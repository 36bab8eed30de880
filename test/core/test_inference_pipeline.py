"""Official test path without the network: pre-processing, flip/multi-scale aggregation,
grouping and back-projection against the saved raw outputs of the pipeline fixture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pose_core.geometry import (
    affine_matrix,
    apply_affine,
    back_project_centre_aligned,
    multi_scale_size,
)
from pose_core.grouping import GroupingParams, parse_bottom_up
from pose_core.grouping.reference_parser import reference_parse
from pose_core.inference.preprocess import bottom_up_input
from pose_core.inference.test_time_aug import (
    aggregate_scales,
    merge_stage_outputs,
    upsample_bilinear,
)
from pose_core.keypoint_specs import COCO_17
from pose_core.models import IMAGENET_MEAN, IMAGENET_STD

PIPE = "higherhrnet_w32_512_coco_pipeline_000000196141.npz"


@pytest.fixture(scope="module")
def pipeline(parity_dir: Path) -> dict[str, np.ndarray]:
    with np.load(parity_dir / PIPE) as data:
        return {k: data[k] for k in data.files}


def test_preprocess_matches_official_input(pipeline: dict[str, np.ndarray]) -> None:
    p = bottom_up_input(pipeline["image"], 512, 1.0, 1.0, IMAGENET_MEAN, IMAGENET_STD)
    assert p.size_wh == tuple(pipeline["base_size"])
    assert p.center == tuple(pipeline["s0_center"])
    np.testing.assert_allclose(p.scale, pipeline["s0_scale"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.tensor.numpy(), pipeline["s0_input"], atol=1e-6, rtol=0)


def test_multi_scale_size_rules() -> None:
    # 429 x 640 landscape: short side to 512 * s / m, long side ceil64 (`get_multi_scale_size`)
    assert multi_scale_size((640, 429), 512, 1.0, 1.0)[0] == (768, 512)
    size, center, scale = multi_scale_size((640, 429), 512, 2.0, 0.5)
    assert size == (1536, 1024) and center == (320, 215)
    size, _, scale = multi_scale_size((300, 500), 512, 1.0, 1.0)  # portrait
    assert size == (512, 896)
    assert scale == pytest.approx((1.5, 896 / 512 * 1.5))


def test_pipeline_from_raw_outputs_matches_official(pipeline: dict[str, np.ndarray]) -> None:
    maps = merge_stage_outputs(
        [torch.from_numpy(pipeline["s0_out0"]), torch.from_numpy(pipeline["s0_out1"])],
        [torch.from_numpy(pipeline["s0_flip_out0"]), torch.from_numpy(pipeline["s0_flip_out1"])],
        17, COCO_17.flip_index,
    )
    base = tuple(int(v) for v in pipeline["base_size"])
    heatmaps, tags = aggregate_scales([maps], base)
    result = parse_bottom_up(heatmaps, tags, GroupingParams(detection_threshold=1.35))
    grouped = pipeline["grouped"]
    assert result.grouped.shape == grouped.shape  # same 15 people, same order
    np.testing.assert_allclose(result.grouped[..., :2], grouped[..., :2], atol=1e-3, rtol=0)
    np.testing.assert_allclose(result.grouped[..., 2], grouped[..., 2], atol=1e-4, rtol=0)
    np.testing.assert_allclose(result.grouped[..., 3:], grouped[..., 3:], atol=1e-4, rtol=0)
    np.testing.assert_allclose(result.scores, pipeline["scores"], atol=1e-5, rtol=0)
    image_xy = back_project_centre_aligned(
        result.grouped[..., :2], pipeline["center"], pipeline["scale"], base
    )
    np.testing.assert_allclose(image_xy, pipeline["final_results"][..., :2], atol=1e-3, rtol=0)


def test_back_projection_of_synthetic_fixture(parity_dir: Path) -> None:
    with np.load(parity_dir / "group_synthetic_6people.npz") as data:
        grouped, final = data["grouped"], data["final_results"]
        center, scale = data["center"], data["scale"]
    out = back_project_centre_aligned(grouped[..., :2], center, scale, (160, 128))
    np.testing.assert_allclose(out, final[..., :2], atol=1e-3, rtol=0)
    forward = affine_matrix(center, scale, (160, 128))
    np.testing.assert_allclose(apply_affine(out, forward), grouped[..., :2], atol=1e-3)


def _official_style_aggregate(passes, base_wh, flip_index):
    """Plain transcription of HigherHRNet `aggregate_results` (projection of each map, tags only from scale 1.0)."""
    width, height = base_wh
    final = None
    tag_list = []
    for scale, out, flip_out in sorted(passes, key=lambda p: p[0], reverse=True):
        size = out[1].shape[-2:]
        up0 = F.interpolate(out[0], size=size, mode="bilinear", align_corners=False)
        avg = (up0[:, :17] + out[1][:, :17]) / 2
        f0 = torch.flip(F.interpolate(flip_out[0], size=size, mode="bilinear",
                                      align_corners=False), [3])
        f1 = torch.flip(flip_out[1], [3])
        avg_f = (f0[:, :17][:, flip_index] + f1[:, :17][:, flip_index]) / 2
        proj = [F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
                for x in (avg, avg_f)]
        if scale == 1.0:
            for t in (up0[:, 17:], f0[:, 17:][:, flip_index]):
                tag_list.append(F.interpolate(t, size=(height, width), mode="bilinear",
                                              align_corners=False)[..., None])
        heat = (proj[0] + proj[1]) / 2
        final = heat if final is None else final + heat
    return final[0] / len(passes), torch.cat(tag_list, dim=4)[0]


def test_multi_scale_aggregation_matches_official_rule() -> None:
    gen = torch.Generator().manual_seed(3)
    base_wh = (96, 64)
    passes = []
    for scale in (2.0, 1.0, 0.5):
        w, h = int(base_wh[0] * scale), int(base_wh[1] * scale)
        outs = [torch.rand(1, 34, h // 4, w // 4, generator=gen) * 0.5,
                torch.rand(1, 17, h // 2, w // 2, generator=gen) * 0.5]
        flips = [torch.rand_like(o) * 0.5 for o in outs]
        for o in outs + flips:  # a few strong peaks with coherent tags
            o[:, :17, 2:4, 3:5] += 1.0
        passes.append((scale, outs, flips))
    flip_index = list(COCO_17.flip_index)
    heat_ref, tags_ref = _official_style_aggregate(passes, base_wh, flip_index)
    maps = [merge_stage_outputs(o, f, 17, flip_index, s) for s, o, f in passes]
    heat, sampler = aggregate_scales(maps, base_wh)
    torch.testing.assert_close(heat, heat_ref, atol=1e-6, rtol=0)
    dense = torch.stack([sampler.dense(j) for j in range(17)]).reshape(17, 2, 64, 96)
    torch.testing.assert_close(dense.permute(0, 2, 3, 1), tags_ref, atol=1e-6, rtol=0)
    params = GroupingParams(detection_threshold=0.6)
    expected, scores = reference_parse(heat_ref.numpy(), tags_ref.numpy(), params)
    result = parse_bottom_up(heat, sampler, params)
    assert result.grouped.shape == expected.shape
    np.testing.assert_allclose(result.grouped[..., :3], expected[..., :3], atol=1e-3, rtol=0)
    np.testing.assert_allclose(result.scores, scores, atol=1e-5, rtol=0)


def test_multi_scale_needs_scale_one() -> None:
    maps = [merge_stage_outputs([torch.zeros(1, 34, 4, 4), torch.zeros(1, 17, 8, 8)], None, 17,
                                COCO_17.flip_index, s) for s in (0.5, 2.0)]
    with pytest.raises(ValueError, match="1.0"):
        aggregate_scales(maps, (16, 16))


@pytest.mark.parametrize("shape", [(1, 17, 64, 96), (2, 3, 1, 1), (1, 2, 1, 5), (1, 2, 7, 1)])
def test_separable_2x_upsampling_equals_torch_bilinear_to_rounding(shape) -> None:
    maps = torch.rand(*shape, generator=torch.Generator().manual_seed(3)) * 4 - 1
    size = (2 * shape[2], 2 * shape[3])
    ours = upsample_bilinear(maps, size)
    torch_ = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    assert ours.shape == torch_.shape
    # rounding differs per pass (lerp vs weighted sum): a few ulp of the maps' magnitude
    ulp = torch.finfo(torch.float32).eps * float(maps.abs().max())
    assert float((ours - torch_).abs().max()) <= 4 * ulp
    # any other size is torch's own kernel
    assert torch.equal(upsample_bilinear(maps, (3, 5)),
                       F.interpolate(maps, size=(3, 5), mode="bilinear", align_corners=False))
