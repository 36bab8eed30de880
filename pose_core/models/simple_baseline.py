"""SimpleBaseline (Xiao et al., ECCV 2018): ResNet + three deconvolutions + a 1x1 heatmap conv.

The network of the semi-supervised pose study (Xie et al., "An Empirical Study of the Collapsing
Problem in Semi-Supervised 2D Human Pose Estimation", ICCV 2021), written in the project (no
torchvision). Mirrors official `xierc/Semi_Human_Pose` `lib/models/pose_resnet.py`
(`PoseResNet`, `get_pose_net`), itself the SimpleBaseline `pose_resnet.py`:

- stem: 7x7 conv stride 2 (no bias), BN, ReLU, 3x3 max-pool stride 2;
- `layer1..4`: ResNet stages (BasicBlock for 18/34, Bottleneck for 50/101/152), strides 1,2,2,2;
- `deconv_layers`: 3 x [ConvTranspose2d(k=4, s=2, p=1, no bias), BN, ReLU], 256 channels;
- `final_layer`: 1x1 conv with bias to J heatmaps.

Shapes: (N, 3, H, W) -> heatmaps (N, J, H/4, W/4). Attribute names equal the official state_dict
keys, so a plain SimpleBaseline file loads strictly; the PoseCons / PoseDual files (`resnet.` /
`resnet2.` prefixes, `final_layer_1`) go through `semi_supervised_state_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pose_core.keypoint_specs import UNION_24, KeypointSpec
from pose_core.models._blocks import BN_MOMENTUM, BasicBlock, Bottleneck

__all__ = [
    "ResNetSpec",
    "RESNET_SPECS",
    "SimpleBaseline",
    "SEMI_NETWORK_PREFIXES",
    "build_simple_baseline",
    "is_semi_supervised_state_dict",
    "load_backbone_or_model",
    "semi_supervised_state_dict",
    "simple_baseline_resnet18",
    "simple_baseline_resnet50",
    "simple_baseline_resnet101",
    "simple_baseline_resnet152",
]


@dataclass(frozen=True)
class ResNetSpec:
    """ResNet depth: block type and blocks per stage (He et al. 2016, Table 1)."""

    depth: int
    bottleneck: bool
    blocks: tuple[int, int, int, int]
    deconv_channels: tuple[int, int, int] = (256, 256, 256)


RESNET_SPECS: dict[int, ResNetSpec] = {
    18: ResNetSpec(18, False, (2, 2, 2, 2)),
    34: ResNetSpec(34, False, (3, 4, 6, 3)),
    50: ResNetSpec(50, True, (3, 4, 6, 3)),
    101: ResNetSpec(101, True, (3, 4, 23, 3)),
    152: ResNetSpec(152, True, (3, 8, 36, 3)),
}

# Official PoseCons keeps its network under `resnet`; PoseDual (`PoseCotrain`) net1 under
# `resnet`, net2 under `resnet2`, and both name the heatmap conv `final_layer_1`.
SEMI_NETWORK_PREFIXES: tuple[str, str] = ("resnet.", "resnet2.")
_DUAL_FINAL_LAYER = "final_layer_1."


class SimpleBaseline(nn.Module):
    """ResNet backbone + deconvolution head (official `PoseResNet`).

    Args:
        spec: depth and block counts.
        keypoints: joint layout of the heatmaps (e.g. `UNION_24` for the semi-supervised study).
    """

    def __init__(self, spec: ResNetSpec, keypoints: KeypointSpec) -> None:
        super().__init__()
        self.spec = spec
        self.keypoints = keypoints
        block = Bottleneck if spec.bottleneck else BasicBlock
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = 64
        stages = []
        for index, (planes, count) in enumerate(zip((64, 128, 256, 512), spec.blocks)):
            stride = 1 if index == 0 else 2
            layers = []
            for i in range(count):
                layers.append(block(channels, planes, stride if i == 0 else 1))
                channels = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        deconv: list[nn.Module] = []
        for out_channels in spec.deconv_channels:
            deconv += [
                nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1,
                                   output_padding=0, bias=False),
                nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True),
            ]
            channels = out_channels
        self.deconv_layers = nn.Sequential(*deconv)
        self.final_layer = nn.Conv2d(channels, keypoints.num_keypoints, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.final_layer(self.deconv_layers(x))


def init_weights(model: SimpleBaseline) -> None:
    """Official random init: deconv / final conv N(0, 0.001), BN 1 / 0, biases 0; backbone
    convs He-normal (fan_out), as torchvision's ResNet before ImageNet weights are loaded."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ConvTranspose2d) or name == "final_layer":
            nn.init.normal_(module.weight, std=0.001)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def build_simple_baseline(depth: int, keypoints: KeypointSpec) -> SimpleBaseline:
    """SimpleBaseline with a ResNet of `depth` (18, 34, 50, 101, 152), random init."""
    if depth not in RESNET_SPECS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_SPECS)}, got {depth}")
    model = SimpleBaseline(RESNET_SPECS[depth], keypoints)
    init_weights(model)
    return model


def simple_baseline_resnet18(keypoints: KeypointSpec = UNION_24) -> SimpleBaseline:
    """SimpleBaseline ResNet-18 (the study's COCO 1K/5K/10K network)."""
    return build_simple_baseline(18, keypoints)


def simple_baseline_resnet50(keypoints: KeypointSpec = UNION_24) -> SimpleBaseline:
    """SimpleBaseline ResNet-50."""
    return build_simple_baseline(50, keypoints)


def simple_baseline_resnet101(keypoints: KeypointSpec = UNION_24) -> SimpleBaseline:
    """SimpleBaseline ResNet-101."""
    return build_simple_baseline(101, keypoints)


def simple_baseline_resnet152(keypoints: KeypointSpec = UNION_24) -> SimpleBaseline:
    """SimpleBaseline ResNet-152."""
    return build_simple_baseline(152, keypoints)


def semi_supervised_state_dict(
    state_dict: Mapping[str, torch.Tensor], network: int = 1
) -> dict[str, torch.Tensor]:
    """One network's entries of an official PoseCons / PoseDual state_dict, official names.

    PoseCons files hold one network under `resnet.`; PoseDual files net1 under `resnet.` and
    net2 under `resnet2.`, with the heatmap conv called `final_layer_1`. The result has the
    prefix removed and `final_layer_1` renamed `final_layer` (the plain SimpleBaseline / HRNet
    names), ready for `load_strict`. The paper reports network 1.

    Raises:
        ValueError: `network` not 1 or 2, or no entry under its prefix.
    """
    if network not in (1, 2):
        raise ValueError(f"network must be 1 or 2, got {network}")
    prefix = SEMI_NETWORK_PREFIXES[network - 1]
    selected: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name.startswith(_DUAL_FINAL_LAYER):
            name = "final_layer." + name[len(_DUAL_FINAL_LAYER):]
        selected[name] = value
    if not selected:
        raise ValueError(
            f"no entry under {prefix!r}: not a PoseCons / PoseDual state_dict with network "
            f"{network}"
        )
    return selected


def is_semi_supervised_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True when every key belongs to an official PoseCons / PoseDual network."""
    return bool(state_dict) and all(key.startswith(SEMI_NETWORK_PREFIXES) for key in state_dict)


BACKBONE_ROOTS: frozenset[str] = frozenset(
    {"conv1", "bn1", "layer1", "layer2", "layer3", "layer4"}
)


def load_backbone_or_model(
    model: SimpleBaseline, state_dict: Mapping[str, torch.Tensor]
) -> tuple[str, ...]:
    """Load a whole SimpleBaseline state_dict strictly, or, when it has no head (an ImageNet
    ResNet file: `conv1`, `bn1`, `layer1..4`, plus `fc.*` which is skipped), the backbone
    strictly with the head left at its initial values.

    Returns:
        the model entries left at their initial values (empty for a whole model).
    """
    from pose_core.models.checkpoint import load_strict

    has_head = any(key.startswith(("deconv_layers.", "final_layer.")) for key in state_dict)
    if has_head:
        load_strict(model, state_dict)
        return ()
    head = frozenset(k for k in model.state_dict() if k.split(".", 1)[0] not in BACKBONE_ROOTS)
    backbone = {k: v for k, v in state_dict.items() if k.split(".", 1)[0] in BACKBONE_ROOTS}
    load_strict(model, backbone, allow_missing=head)
    return tuple(sorted(head))
