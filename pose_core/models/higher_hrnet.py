"""HigherHRNet: HRNet backbone + higher-resolution deconvolution head (bottom-up, AE tags).

Paper: Cheng et al., "HigherHRNet: Scale-Aware Representation Learning for Bottom-Up Human Pose
Estimation", CVPR 2020. Mirrors `lib/models/pose_higher_hrnet.py` of
`HRNet/HigherHRNet-Human-Pose-Estimation` with the official yaml settings (one deconv, kernel 4,
4 BasicBlocks, concatenated input, per-joint tags at the first resolution only). Attribute names
are the official state_dict keys (`final_layers.{i}`, `deconv_layers.{i}`), registered after the
backbone, so official checkpoints load strictly.

Shapes (input (N, 3, H, W), normalised RGB, H and W multiples of 32), J joints:
- output 0: (N, 2J, H/4, W/4): channels 0..J-1 heatmaps, J..2J-1 per-joint AE tags;
- output 1: (N, J, H/2, W/2): heatmaps only.
Forward returns a list `[out0, out1]` (the official return type).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from pose_core.keypoint_specs import COCO_17, KeypointSpec
from pose_core.models._blocks import BN_MOMENTUM, BasicBlock
from pose_core.models.hrnet import (
    HRNET_W32,
    HRNET_W48,
    HRNet,
    HRNetSpec,
    StageSpec,
    init_weights,
)

__all__ = [
    "HigherHRNetSpec",
    "HigherHRNet",
    "HIGHER_HRNET_W32",
    "HIGHER_HRNET_W48",
    "HIGHER_HRNET_LITE_W16",
    "build_higher_hrnet",
    "higher_hrnet_spec",
    "higher_hrnet_w32",
    "higher_hrnet_w48",
    "higher_hrnet_lite_w16",
    "higher_hrnet_lite_w16_tag2",
]

_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}  # kernel -> (padding, output_padding)


@dataclass(frozen=True)
class HigherHRNetSpec:
    """Backbone spec plus the official `MODEL.EXTRA.DECONV` / loss-head settings.

    Attributes:
        backbone: the HRNet backbone.
        deconv_channels: output channels of each deconv module (one entry per deconv).
        deconv_kernels: ConvTranspose kernel of each deconv module (4, 3 or 2).
        num_basic_blocks: BasicBlocks after each ConvTranspose.
        cat_output: concatenate the previous prediction to each deconv module's input.
        with_ae: which outputs carry per-joint tag maps (one entry per output).
        final_conv_kernel: kernel of the prediction convs (1 or 3).
        tag_dim: tag values per joint (official: 1); the tag channels are joint-major
            (`HeadLayout.associative_embedding(..., tag_dim=D)`).
    """

    backbone: HRNetSpec
    deconv_channels: tuple[int, ...] = (32,)
    deconv_kernels: tuple[int, ...] = (4,)
    num_basic_blocks: int = 4
    cat_output: tuple[bool, ...] = (True,)
    with_ae: tuple[bool, ...] = (True, False)
    final_conv_kernel: int = 1
    tag_dim: int = 1

    def __post_init__(self) -> None:
        if self.tag_dim < 1:
            raise ValueError(f"HigherHRNetSpec: tag_dim must be >= 1, got {self.tag_dim}")
        n = len(self.deconv_channels)
        if len(self.deconv_kernels) != n or len(self.cat_output) != n:
            raise ValueError("HigherHRNetSpec: one deconv_kernels / cat_output entry per deconv")
        if len(self.with_ae) != n + 1:
            raise ValueError("HigherHRNetSpec: with_ae needs one entry per output (deconvs + 1)")
        if any(k not in _DECONV_PADDING for k in self.deconv_kernels):
            raise ValueError(
                f"HigherHRNetSpec: deconv kernels must be in {sorted(_DECONV_PADDING)}"
            )


def higher_hrnet_spec(backbone: HRNetSpec, num_basic_blocks: int = 4) -> HigherHRNetSpec:
    """The official head (one kernel-4 deconv of `backbone.width` channels) on `backbone`."""
    return HigherHRNetSpec(
        backbone=backbone,
        deconv_channels=(backbone.width,),
        num_basic_blocks=num_basic_blocks,
    )


HIGHER_HRNET_W32 = higher_hrnet_spec(HRNET_W32)
HIGHER_HRNET_W48 = higher_hrnet_spec(HRNET_W48)

# Small model trained from scratch on CPU for the shipped default: stem 32, one bottleneck
# (planes 8, so 32 channels and no projection), width 16, one module per stage with 2 blocks per
# branch, deconv with 1 BasicBlock. 256x256: ~0.60 GMACs, ~1.2M parameters.
HIGHER_HRNET_LITE_W16 = higher_hrnet_spec(
    HRNetSpec(
        stem_channels=32,
        layer1_planes=8,
        layer1_blocks=1,
        stages=(
            StageSpec(num_modules=1, num_blocks=(2, 2), num_channels=(16, 32)),
            StageSpec(num_modules=1, num_blocks=(2, 2, 2), num_channels=(16, 32, 64)),
            StageSpec(num_modules=1, num_blocks=(2, 2, 2, 2), num_channels=(16, 32, 64, 128)),
        ),
    ),
    num_basic_blocks=1,
)


class HigherHRNet(HRNet):
    """`PoseHigherResolutionNet`: HRNet backbone, `final_layers`, `deconv_layers`.

    Args:
        spec: backbone and head settings.
        keypoints: joint layout (J = keypoints.num_keypoints); tags are per joint.
    """

    def __init__(self, spec: HigherHRNetSpec, keypoints: KeypointSpec) -> None:
        super().__init__(spec.backbone)
        self.head_spec = spec
        self.keypoints = keypoints
        joints = keypoints.num_keypoints
        out_channels = [joints + (joints * spec.tag_dim if ae else 0) for ae in spec.with_ae]
        padding = 1 if spec.final_conv_kernel == 3 else 0
        finals = [nn.Conv2d(self.out_channels, out_channels[0], spec.final_conv_kernel,
                            padding=padding)]
        deconvs = []
        in_channels = self.out_channels
        for i, channels in enumerate(spec.deconv_channels):
            if spec.cat_output[i]:
                in_channels += out_channels[i]
            pad, out_pad = _DECONV_PADDING[spec.deconv_kernels[i]]
            layers: list[nn.Module] = [
                nn.Sequential(
                    nn.ConvTranspose2d(in_channels, channels, spec.deconv_kernels[i], stride=2,
                                       padding=pad, output_padding=out_pad, bias=False),
                    nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
                    nn.ReLU(inplace=True),
                )
            ]
            layers += [
                nn.Sequential(BasicBlock(channels, channels))
                for _ in range(spec.num_basic_blocks)
            ]
            deconvs.append(nn.Sequential(*layers))
            finals.append(nn.Conv2d(channels, out_channels[i + 1], spec.final_conv_kernel,
                                    padding=padding))
            in_channels = channels
        self.final_layers = nn.ModuleList(finals)
        self.deconv_layers = nn.ModuleList(deconvs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) -> [(N, 2J, H/4, W/4), (N, J, H/2, W/2)] (official settings)."""
        x = self.forward_features(x)
        y = self.final_layers[0](x)
        outputs = [y]
        for i, deconv in enumerate(self.deconv_layers):
            if self.head_spec.cat_output[i]:
                x = torch.cat((x, y), 1)
            x = deconv(x)
            y = self.final_layers[i + 1](x)
            outputs.append(y)
        return outputs


def build_higher_hrnet(spec: HigherHRNetSpec, keypoints: KeypointSpec) -> HigherHRNet:
    """HigherHRNet from an explicit spec, with the official random initialisation.

    Training configs use this to define their own (small) networks; registered names go through
    `pose_core.models.build_model`.
    """
    model = HigherHRNet(spec, keypoints)
    init_weights(model)
    return model


def higher_hrnet_w32(keypoints: KeypointSpec = COCO_17) -> HigherHRNet:
    """HigherHRNet-W32 (28,645,331 parameters for COCO, 28,641,962 for CrowdPose)."""
    return build_higher_hrnet(HIGHER_HRNET_W32, keypoints)


def higher_hrnet_w48(keypoints: KeypointSpec = COCO_17) -> HigherHRNet:
    """HigherHRNet-W48 (63,827,139 parameters for COCO)."""
    return build_higher_hrnet(HIGHER_HRNET_W48, keypoints)


def higher_hrnet_lite_w16(keypoints: KeypointSpec = COCO_17) -> HigherHRNet:
    """The small shipped HigherHRNet (width 16, reduced stages; see HIGHER_HRNET_LITE_W16)."""
    return build_higher_hrnet(HIGHER_HRNET_LITE_W16, keypoints)


def higher_hrnet_lite_w16_tag2(keypoints: KeypointSpec = COCO_17) -> HigherHRNet:
    """The shipped network with two tag values per joint (an experiment: the flip test's
    second tag pass is what separates overlapping people, docs/training_synthetic.md)."""
    return build_higher_hrnet(dataclasses.replace(HIGHER_HRNET_LITE_W16, tag_dim=2), keypoints)
