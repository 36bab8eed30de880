"""Coupled Embedding (CE) networks: HRNet backbone + multi-dimensional tag heads.

Paper: Wang, Zhou, Chen, Tang, Wang, "Regularizing Vector Embedding in Bottom-Up Human Pose
Estimation", ECCV 2022. Mirrors the official `CR320/CoupledEmbedding` (commit cc57620)
`models/head/ae_head.py::AssociativeEmbeddingHead` ("ce_hrnet") and
`models/head/higher_ae_head.py::HigherAssociativeEmbeddingHead` ("ce_hrhrnet") on the
mmpose-style HRNet backbone of `models/backbone/hrnet.py` (same modules and order as our
`HRNet`, single stride-4 output).

Module names: the backbone keeps the official HRNet attribute names (`conv1` ... `stage4`); the
head's attributes carry the official CE head names at the top level (`hms_pred_layers`,
`tms_pred_layers`, `deconv_layers`, `blocks`). An official CE file (`backbone.` / `head.`
prefixes) therefore loads through `pose_core.models.checkpoint` by its table-driven prefix
conversion, strictly.

Shapes (input (N, 3, H, W), normalised RGB, H and W multiples of 32), J joints, D tag values:
- output 0: (N, J + J*D, H/4, W/4): channels [0, J) heatmaps, [J, J + J*D) tags with channel
  J + j*D + d = joint j, dimension d (the official tag conv's channel order; the official code
  reshapes it to (N, J, H/4, W/4, D));
- output 1 (`ce_hrhrnet` only): (N, J, H/2, W/2) heatmaps of the deconv branch, whose input is
  concat(stride-4 features, stride-4 heatmaps) (tags are not fed to it).
`HeadLayout.associative_embedding(J, num_resolutions, tag_dim=D)` describes these outputs.
The official inference mode averages the stride-4 heatmaps (bilinear to stride 2) with the
stride-2 ones; that is test-time work and lives in `pose_core.codecs.coupled_embedding`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pose_core.keypoint_specs import COCO_17, KeypointSpec
from pose_core.models._blocks import BN_MOMENTUM, BasicBlock
from pose_core.models.higher_hrnet import HIGHER_HRNET_LITE_W16
from pose_core.models.hrnet import HRNET_W32, HRNET_W48, HRNet, HRNetSpec, init_weights

__all__ = [
    "CE_TAG_DIM",
    "CoupledEmbeddingSpec",
    "CoupledEmbeddingNet",
    "build_coupled_embedding",
    "ce_hrnet_w32",
    "ce_hrnet_w48",
    "ce_higherhrnet_w32",
    "ce_higherhrnet_w48",
    "ce_higherhrnet_lite_w16",
    "ce_higherhrnet_lite_w16_tag1",
]

# Official `scale_res`: tag values per joint, equal to the number of scale bins.
CE_TAG_DIM = 8


@dataclass(frozen=True)
class CoupledEmbeddingSpec:
    """Backbone and head settings of a CE network.

    Attributes:
        backbone: the HRNet backbone (its width C feeds the head).
        tag_dim: D, tag values per joint (official `scale_res` = 8; 1 for the plain-AE
            ablation in the same code path).
        higher: add the stride-2 deconv branch ("ce_hrhrnet"); False is "ce_hrnet".
        num_basic_blocks: BasicBlocks after the deconv (official 4).
    """

    backbone: HRNetSpec
    tag_dim: int = CE_TAG_DIM
    higher: bool = True
    num_basic_blocks: int = 4

    def __post_init__(self) -> None:
        if self.tag_dim < 1:
            raise ValueError(f"CoupledEmbeddingSpec: tag_dim must be >= 1, got {self.tag_dim}")
        if self.higher and self.num_basic_blocks < 0:
            raise ValueError("CoupledEmbeddingSpec: num_basic_blocks must be >= 0")

    @property
    def num_resolutions(self) -> int:
        return 2 if self.higher else 1


def _prediction_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=1)


class CoupledEmbeddingNet(HRNet):
    """HRNet backbone + the CE head (official attribute names, see the module docstring).

    Args:
        spec: backbone and head settings.
        keypoints: joint layout (J = keypoints.num_keypoints).
    """

    def __init__(self, spec: CoupledEmbeddingSpec, keypoints: KeypointSpec) -> None:
        super().__init__(spec.backbone)
        self.ce_spec = spec
        self.keypoints = keypoints
        joints = keypoints.num_keypoints
        width = self.out_channels
        self.num_joints = joints
        self.tag_dim = spec.tag_dim
        # registration order = the official state_dict order of the head
        if spec.higher:
            self.hms_pred_layers: nn.Module = nn.ModuleList(
                [_prediction_conv(width, joints) for _ in range(2)]
            )
        else:
            self.hms_pred_layers = _prediction_conv(width, joints)
        self.tms_pred_layers = _prediction_conv(width, joints * spec.tag_dim)
        if spec.higher:
            self.deconv_layers = nn.Sequential(
                nn.ConvTranspose2d(width + joints, width, kernel_size=4, stride=2, padding=1,
                                   bias=False),
                nn.BatchNorm2d(width, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
            )
            self.blocks = nn.Sequential(
                *[BasicBlock(width, width) for _ in range(spec.num_basic_blocks)]
            )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) -> [(N, J + J*D, H/4, W/4)] (+ [(N, J, H/2, W/2)] with the branch)."""
        features = self.forward_features(x)
        if not self.ce_spec.higher:
            heatmaps = self.hms_pred_layers(features)
            return [torch.cat((heatmaps, self.tms_pred_layers(features)), 1)]
        low_layer, high_layer = self.hms_pred_layers  # type: ignore[misc]
        heatmaps_low = low_layer(features)
        tags = self.tms_pred_layers(features)
        branch = self.blocks(self.deconv_layers(torch.cat((features, heatmaps_low), 1)))
        return [torch.cat((heatmaps_low, tags), 1), high_layer(branch)]


def build_coupled_embedding(
    spec: CoupledEmbeddingSpec, keypoints: KeypointSpec
) -> CoupledEmbeddingNet:
    """A CE network from an explicit spec, with the official initialisation (convs and the
    transposed conv N(0, 0.001), biases 0, BatchNorm 1 / 0)."""
    model = CoupledEmbeddingNet(spec, keypoints)
    init_weights(model)
    return model


def ce_hrnet_w32(keypoints: KeypointSpec = COCO_17) -> CoupledEmbeddingNet:
    """`ce_hrnet_w32`: HRNet-W32 + stride-4 heatmaps and 8-D tags (28,540,601 params, COCO)."""
    return build_coupled_embedding(CoupledEmbeddingSpec(HRNET_W32, higher=False), keypoints)


def ce_hrnet_w48(keypoints: KeypointSpec = COCO_17) -> CoupledEmbeddingNet:
    """`ce_hrnet_w48`: HRNet-W48 + stride-4 heatmaps and 8-D tags."""
    return build_coupled_embedding(CoupledEmbeddingSpec(HRNET_W48, higher=False), keypoints)


def ce_higherhrnet_w32(keypoints: KeypointSpec = COCO_17) -> CoupledEmbeddingNet:
    """`ce_hrhrnet_w32` (28,640,554 params, COCO)."""
    return build_coupled_embedding(CoupledEmbeddingSpec(HRNET_W32), keypoints)


def ce_higherhrnet_w48(keypoints: KeypointSpec = COCO_17) -> CoupledEmbeddingNet:
    """`ce_hrhrnet_w48` (63,816,140 params, CrowdPose)."""
    return build_coupled_embedding(CoupledEmbeddingSpec(HRNET_W48), keypoints)


def ce_higherhrnet_lite_w16(keypoints: KeypointSpec = COCO_17) -> CoupledEmbeddingNet:
    """The small width-16 backbone of the shipped model with the CE head (1 BasicBlock)."""
    spec = CoupledEmbeddingSpec(HIGHER_HRNET_LITE_W16.backbone, num_basic_blocks=1)
    return build_coupled_embedding(spec, keypoints)


def ce_higherhrnet_lite_w16_tag1(keypoints: KeypointSpec = COCO_17) -> CoupledEmbeddingNet:
    """As `ce_higherhrnet_lite_w16` with one tag value per joint (the 1-D AE ablation)."""
    spec = CoupledEmbeddingSpec(HIGHER_HRNET_LITE_W16.backbone, tag_dim=1, num_basic_blocks=1)
    return build_coupled_embedding(spec, keypoints)
