"""TinyPose, the small top-down network of the synthetic semi-supervised experiment: shapes,
registry entries, its input multiple in the top-down decoder, and that it can fit a target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pose_core.codecs.base import TestOptions as DecoderOptions
from pose_core.codecs.top_down import TopDownHeatmapDecoder
from pose_core.keypoint_specs import COCO_17, UNION_24
from pose_core.models import build_model, model_info


@pytest.mark.parametrize("name, joints", [("tiny_pose_w32_64x48_coco", 17),
                                          ("tiny_pose_w32_64x48_union24", 24)])
def test_outputs_stride_4_heatmaps_of_the_registered_layout(name: str, joints: int) -> None:
    info = model_info(name)
    assert info.input_size == (48, 64) and info.family == "hrnet"
    assert info.keypoints is (COCO_17 if joints == 17 else UNION_24)
    model = build_model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 48))
        assert out.shape == (2, joints, 16, 12)
        assert model(torch.randn(1, 3, 96, 80)).shape == (1, joints, 24, 20)  # any multiple of 16
    assert out.abs().max() < 0.1  # small initial heatmap conv: near-zero first maps
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_decoder_accepts_multiples_of_16_for_tiny_pose_only() -> None:
    decoder = TopDownHeatmapDecoder.for_model(model_info("tiny_pose_w32_64x48_coco"), None,
                                              DecoderOptions())
    assert decoder.input_wh == (48, 64)
    with pytest.raises(ValueError, match="multiples of 32"):
        TopDownHeatmapDecoder.for_model(model_info("hrnet_w32_256x192_coco"), (48, 64),
                                        DecoderOptions())


def test_fits_a_fixed_target_in_a_few_steps() -> None:
    torch.manual_seed(0)
    model = build_model("tiny_pose_w32_64x48_coco")
    images = torch.randn(4, 3, 64, 48)
    ys, xs = np.mgrid[0:16, 0:12]
    target = torch.from_numpy(np.exp(-((xs - 5) ** 2 + (ys - 9) ** 2) / 2.0)).float()
    target = target.expand(4, 17, 16, 12)
    optimiser = torch.optim.Adam(model.parameters(), 1e-2)
    first = None
    for _ in range(40):
        loss = ((model(images) - target) ** 2).mean()
        first = loss.item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.3 * first
