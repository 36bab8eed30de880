"""TinyPose: a small residual encoder-decoder for CPU-sized top-down experiments.

Not a published network: the "tiny conv encoder-decoder producing heatmaps at stride 4" that the
synthetic semi-supervised experiment calls for (`shared/reference/seed-methods-spec.md` §3.13;
docs/semi_supervised.md), so that thousands of PoseCons / PoseDual steps fit on one CPU core.
SimpleBaseline's stride-32 trunk does not suit 64x48 crops (48 / 32 is not an integer), so the
encoder stops at stride 16 and the decoder returns to stride 4 with additive skips (U-Net style,
which keeps the 16x12 peaks sharp with few channels).

- `stem`: 3x3 conv stride 2 + BN + ReLU, then a BasicBlock (stride 2);
- `down1..3`: BasicBlock stride 2 each (strides 4, 8, 16);
- `up2`, `up1`: nearest x2 upsampling + 3x3 conv + BN + ReLU, plus the encoder map of the
  same stride (8, then 4);
- `refine`: BasicBlock at stride 4; `final_layer`: 1x1 conv with bias to J heatmaps.

Shapes: (N, 3, H, W) with H, W multiples of 16 -> heatmaps (N, J, H/4, W/4).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn import functional as F

from pose_core.keypoint_specs import COCO_17, KeypointSpec
from pose_core.models._blocks import BN_MOMENTUM, BasicBlock, conv3x3

__all__ = ["TinyPoseSpec", "TINY_POSE_W32", "TinyPose", "build_tiny_pose", "tiny_pose_w32"]


@dataclass(frozen=True)
class TinyPoseSpec:
    """Channel widths at strides 2, 4, 8 and 16."""

    widths: tuple[int, int, int, int] = (32, 32, 64, 128)


TINY_POSE_W32 = TinyPoseSpec()


class _Up(nn.Module):
    """x2 nearest upsampling, 3x3 conv + BN + ReLU, then the skip map added."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = conv3x3(in_channels, out_channels)
        self.bn = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
        return self.relu(self.bn(self.conv(x))) + skip


class TinyPose(nn.Module):
    """Residual encoder-decoder with stride-4 heatmaps (see the module docstring).

    Args:
        spec: channel widths.
        keypoints: joint layout of the heatmaps.
    """

    def __init__(self, spec: TinyPoseSpec, keypoints: KeypointSpec) -> None:
        super().__init__()
        self.spec = spec
        self.keypoints = keypoints
        w2, w4, w8, w16 = spec.widths
        self.stem = nn.Sequential(
            conv3x3(3, w2, stride=2), nn.BatchNorm2d(w2, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
        self.down1 = BasicBlock(w2, w4, stride=2)
        self.down2 = BasicBlock(w4, w8, stride=2)
        self.down3 = BasicBlock(w8, w16, stride=2)
        self.up2 = _Up(w16, w8)
        self.up1 = _Up(w8, w4)
        self.refine = BasicBlock(w4, w4)
        self.final_layer = nn.Conv2d(w4, keypoints.num_keypoints, 1)

    def forward(self, x: Tensor) -> Tensor:
        s4 = self.down1(self.stem(x))
        s8 = self.down2(s4)
        s16 = self.down3(s8)
        x = self.up1(self.up2(s16, s8), s4)
        return self.final_layer(self.refine(x))


def _init_weights(model: TinyPose) -> None:
    """He-normal convs, BN 1 / 0, and a small heatmap conv (N(0, 0.001), bias 0) so the first
    heatmaps are near zero, as SimpleBaseline's head."""
    for name, module in model.named_modules():
        if name == "final_layer":
            nn.init.normal_(module.weight, std=0.001)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def build_tiny_pose(spec: TinyPoseSpec, keypoints: KeypointSpec) -> TinyPose:
    """TinyPose of `spec`, random init."""
    model = TinyPose(spec, keypoints)
    _init_weights(model)
    return model


def tiny_pose_w32(keypoints: KeypointSpec = COCO_17) -> TinyPose:
    """TinyPose with widths 32-32-64-128 (about 0.5 M parameters)."""
    return build_tiny_pose(TINY_POSE_W32, keypoints)
