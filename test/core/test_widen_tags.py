"""training/widen_tags.py: a one-tag-value network widened to two keeps its outputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from pose_core.models import build_model
from pose_core.models.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _widen_tags():  # training/ is a scripts folder, not a package
    spec = importlib.util.spec_from_file_location("widen_tags", REPO / "training" / "widen_tags.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_widened_network_starts_with_the_source_heatmaps_and_first_tag_value() -> None:
    torch.manual_seed(0)
    source = build_model("higherhrnet_lite_w16_256_coco").eval()
    for parameter in source.parameters():  # not the official init: every weight matters
        parameter.data.normal_(0, 0.05)
    wide = build_model("higherhrnet_lite_w16_256_coco_tag2").eval()
    state = _widen_tags().widen(source.state_dict(), wide, 17, 2, extra_gain=50.0)
    load_checkpoint(wide, state)
    image = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        narrow_out, wide_out = source(image), wide(image)
    assert wide_out[0].shape[1] == 17 + 34
    torch.testing.assert_close(wide_out[0][:, :17], narrow_out[0][:, :17])
    torch.testing.assert_close(wide_out[0][:, 17::2], narrow_out[0][:, 17:])  # tag value 0
    torch.testing.assert_close(wide_out[1], narrow_out[1])  # the deconv ignores value 1
    assert wide_out[0][:, 18::2].std() > 0  # value 1: random, with some spread


def test_copy_first_starts_the_second_value_as_the_first() -> None:
    torch.manual_seed(1)
    source = build_model("higherhrnet_lite_w16_256_coco").eval()
    for parameter in source.parameters():
        parameter.data.normal_(0, 0.05)
    wide = build_model("higherhrnet_lite_w16_256_coco_tag2").eval()
    load_checkpoint(wide, _widen_tags().widen(source.state_dict(), wide, 17, 2, copy_first=True))
    with torch.no_grad():
        out = wide(torch.randn(1, 3, 96, 96))[0]
    torch.testing.assert_close(out[:, 18::2], out[:, 17::2])
