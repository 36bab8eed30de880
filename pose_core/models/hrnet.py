"""HRNet: the high-resolution backbone and the top-down (SimpleBaseline-style) head.

Paper: Sun et al., "Deep High-Resolution Representation Learning for Human Pose Estimation",
CVPR 2019. Mirrors `lib/models/pose_hrnet.py` of `leoxiaobin/deep-high-resolution-net.pytorch`
(and the identical backbone in HigherHRNet's `pose_higher_hrnet.py`). Module attribute names are
the official state_dict keys, so official files load strictly without renaming.

Shapes and frames:
- input (N, 3, H, W), a normalised RGB image; H and W multiples of 32;
- branch b runs at (H / 4 / 2**b, W / 4 / 2**b) with `channels[b]` channels;
- `HRNet.forward_features` returns the 1/4-resolution map (N, C, H/4, W/4), C = `spec.width`;
- `TopDownHRNet.forward` returns heatmaps (N, J, H/4, W/4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pose_core.keypoint_specs import COCO_17, KeypointSpec
from pose_core.models._blocks import BN_MOMENTUM, BasicBlock, Bottleneck, conv3x3

__all__ = [
    "StageSpec",
    "HRNetSpec",
    "HighResolutionModule",
    "HRNet",
    "TopDownHRNet",
    "hrnet_spec",
    "HRNET_W32",
    "HRNET_W48",
    "build_top_down_hrnet",
    "hrnet_w32",
    "hrnet_w48",
    "init_weights",
]

BlockType = Literal["basic", "bottleneck"]
# How the fuse units bring a lower-resolution branch up: nearest x2**k (HRNet / HigherHRNet) or
# bilinear to the exact target size (Double Embedding's `pose_higher_hrnet_de.py`).
FuseUpsample = Literal["nearest", "bilinear"]
_BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
}


@dataclass(frozen=True)
class StageSpec:
    """One multi-resolution stage (the official `STAGE{2,3,4}` yaml entries).

    Attributes:
        num_modules: number of HR modules in the stage.
        num_blocks: residual blocks per branch (one entry per branch).
        num_channels: channels per branch, highest resolution first.
        block: residual block type of the branches.
    """

    num_modules: int
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]
    block: BlockType = "basic"

    def __post_init__(self) -> None:
        if len(self.num_blocks) != len(self.num_channels):
            raise ValueError("StageSpec: num_blocks and num_channels need one entry per branch")
        if self.num_modules < 1 or any(n < 1 for n in self.num_blocks):
            raise ValueError("StageSpec: num_modules and num_blocks must be >= 1")

    @property
    def num_branches(self) -> int:
        return len(self.num_channels)


@dataclass(frozen=True)
class HRNetSpec:
    """The whole backbone: stem, `layer1` (bottlenecks) and the multi-resolution stages.

    Stage i (0-based) is registered as `stage{i + 2}` and is preceded by `transition{i + 1}`;
    each stage has exactly one branch more than the previous one. The last module of the last
    stage fuses into the highest-resolution branch only (official `multi_scale_output=False`).

    Attributes:
        stem_channels: output channels of `conv1` / `conv2` (64 officially).
        layer1_planes: bottleneck planes of `layer1` (output channels are 4x this).
        layer1_blocks: number of bottlenecks in `layer1`.
        stages: the multi-resolution stages (`stage2`, `stage3`, ...).
        fuse_upsample: "nearest" (official HRNet) or "bilinear" (align_corners False, to the
            target branch's exact size; no parameters either way, same state_dict keys).
    """

    stem_channels: int = 64
    layer1_planes: int = 64
    layer1_blocks: int = 4
    stages: tuple[StageSpec, ...] = field(default_factory=tuple)
    fuse_upsample: FuseUpsample = "nearest"

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("HRNetSpec needs at least one stage")
        for index, stage in enumerate(self.stages):
            if stage.num_branches != index + 2:
                raise ValueError(
                    f"HRNetSpec: stage{index + 2} must have {index + 2} branches, "
                    f"got {stage.num_branches}"
                )

    @property
    def width(self) -> int:
        """Channels of the highest-resolution branch (the C of "W32")."""
        return self.stages[-1].num_channels[0]


def hrnet_spec(width: int) -> HRNetSpec:
    """The official HRNet-W{width} backbone spec (1 / 4 / 3 modules, 4 blocks per branch)."""
    channels = (width, 2 * width, 4 * width, 8 * width)
    return HRNetSpec(
        stem_channels=64,
        layer1_planes=64,
        layer1_blocks=4,
        stages=(
            StageSpec(num_modules=1, num_blocks=(4, 4), num_channels=channels[:2]),
            StageSpec(num_modules=4, num_blocks=(4, 4, 4), num_channels=channels[:3]),
            StageSpec(num_modules=3, num_blocks=(4, 4, 4, 4), num_channels=channels),
        ),
    )


HRNET_W32 = hrnet_spec(32)
HRNET_W48 = hrnet_spec(48)


def _conv_bn(in_channels: int, out_channels: int, stride: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        conv3x3(in_channels, out_channels, stride),
        nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of residual blocks followed by the exchange ("fuse") units.

    Fuse unit for output i and input j: identity (j == i); 1x1 conv + BN + nearest upsample
    x2**(j-i) (j > i; with `upsample="bilinear"`: 1x1 conv + BN, then a bilinear resize to
    branch i's size in `forward`); a chain of i-j stride-2 3x3 convs (j < i), all but the last followed by
    BN + ReLU and keeping C_j channels, the last mapping to C_i with BN only. Each output is
    ReLU(sum over j), summed in branch order starting from j = 0.

    Args:
        in_channels: channels of each input branch.
        stage: block type, blocks and channels per branch.
        multi_scale_output: False to fuse into output 0 only.
        upsample: "nearest" or "bilinear" (see `HRNetSpec.fuse_upsample`).
    """

    def __init__(
        self,
        in_channels: tuple[int, ...],
        stage: StageSpec,
        multi_scale_output: bool = True,
        upsample: FuseUpsample = "nearest",
    ) -> None:
        super().__init__()
        block = _BLOCKS[stage.block]
        self.num_branches = stage.num_branches
        self.multi_scale_output = multi_scale_output
        self.upsample = upsample
        out_channels = tuple(c * block.expansion for c in stage.num_channels)
        branches = []
        for b in range(self.num_branches):
            layers = [block(in_channels[b], stage.num_channels[b])]
            layers += [
                block(out_channels[b], stage.num_channels[b])
                for _ in range(1, stage.num_blocks[b])
            ]
            branches.append(nn.Sequential(*layers))
        self.branches = nn.ModuleList(branches)
        self.fuse_layers = self._make_fuse_layers(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = out_channels

    def _make_fuse_layers(self, channels: tuple[int, ...]) -> nn.ModuleList | None:
        n = self.num_branches
        if n == 1:
            return None
        rows = []
        for i in range(n if self.multi_scale_output else 1):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:
                    layers: list[nn.Module] = [
                        nn.Conv2d(channels[j], channels[i], 1, bias=False),
                        nn.BatchNorm2d(channels[i], momentum=BN_MOMENTUM),
                    ]
                    if self.upsample == "nearest":
                        layers.append(nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"))
                    row.append(nn.Sequential(*layers))
                elif j == i:
                    row.append(None)
                else:
                    chain = [_conv_bn(channels[j], channels[j], 2, True) for _ in range(i - j - 1)]
                    chain.append(_conv_bn(channels[j], channels[i], 2, False))
                    row.append(nn.Sequential(*chain))
            rows.append(nn.ModuleList(row))
        return nn.ModuleList(rows)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Args: xs, one (N, C_b, H_b, W_b) map per branch. Returns: the fused maps."""
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        fused = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, self.num_branches):
                if i == j:
                    y = y + xs[j]
                elif j > i and self.upsample == "bilinear":
                    y = y + _bilinear_to(row[j](xs[j]), xs[i].shape[-2:], 2 ** (j - i))
                else:
                    y = y + row[j](xs[j])
            fused.append(self.relu(y))
        return fused


def _bilinear_to(maps: torch.Tensor, size: torch.Size, factor: int) -> torch.Tensor:
    """Bilinear resize (align_corners False) to `size`; an exact x`factor` goes through a
    constant scale factor (same values; exports as a Resize with constant scales)."""
    if tuple(size) == (maps.shape[-2] * factor, maps.shape[-1] * factor):
        return F.interpolate(maps, scale_factor=float(factor), mode="bilinear",
                             align_corners=False)
    return F.interpolate(maps, size=tuple(size), mode="bilinear", align_corners=False)


def _make_transition(pre: tuple[int, ...], cur: tuple[int, ...]) -> nn.ModuleList:
    """Official `_make_transition_layer`: adapt existing branches, create the new ones."""
    layers: list[nn.Module | None] = []
    for i, channels in enumerate(cur):
        if i < len(pre):
            layers.append(_conv_bn(pre[i], channels, 1, True) if pre[i] != channels else None)
        else:
            chain = []
            for k in range(i + 1 - len(pre)):
                out = channels if k == i - len(pre) else pre[-1]
                chain.append(_conv_bn(pre[-1], out, 2, True))
            layers.append(nn.Sequential(*chain))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """HRNet backbone with the official attribute names.

    Registered order (= state_dict order): conv1, bn1, conv2, bn2, layer1, transition1, stage2,
    transition2, stage3, transition3, stage4 (fewer for specs with fewer stages).
    """

    def __init__(self, spec: HRNetSpec) -> None:
        super().__init__()
        self.spec = spec
        stem = spec.stem_channels
        self.conv1 = nn.Conv2d(3, stem, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(stem, stem, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(stem, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        out1 = spec.layer1_planes * Bottleneck.expansion
        blocks = [Bottleneck(stem, spec.layer1_planes)]
        blocks += [Bottleneck(out1, spec.layer1_planes) for _ in range(1, spec.layer1_blocks)]
        self.layer1 = nn.Sequential(*blocks)
        pre: tuple[int, ...] = (out1,)
        for index, stage in enumerate(spec.stages):
            expansion = _BLOCKS[stage.block].expansion
            cur = tuple(c * expansion for c in stage.num_channels)
            self.add_module(f"transition{index + 1}", _make_transition(pre, cur))
            last_stage = index == len(spec.stages) - 1
            modules = []
            in_channels = cur
            for m in range(stage.num_modules):
                multi = not (last_stage and m == stage.num_modules - 1)
                module = HighResolutionModule(in_channels, stage, multi_scale_output=multi,
                                              upsample=spec.fuse_upsample)
                in_channels = module.out_channels
                modules.append(module)
            self.add_module(f"stage{index + 2}", nn.Sequential(*modules))
            pre = in_channels
        self.num_stages = len(spec.stages)
        self.out_channels = pre[0]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, C, H/4, W/4), the fused highest-resolution branch."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = [x]
        for index in range(self.num_stages):
            transition: nn.ModuleList = getattr(self, f"transition{index + 1}")
            xs = []
            for i, layer in enumerate(transition):
                source = ys[i] if i < len(ys) else ys[-1]
                xs.append(source if layer is None else layer(source))
            ys = getattr(self, f"stage{index + 2}")(xs)
        return ys[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


class TopDownHRNet(HRNet):
    """Top-down HRNet (`PoseHighResolutionNet`): backbone + 1x1 `final_layer` (with bias).

    Forward: (N, 3, H, W) -> heatmaps (N, J, H/4, W/4).
    """

    def __init__(self, spec: HRNetSpec, keypoints: KeypointSpec, final_conv_kernel: int = 1):
        super().__init__(spec)
        self.keypoints = keypoints
        self.final_layer = nn.Conv2d(
            self.out_channels,
            keypoints.num_keypoints,
            final_conv_kernel,
            padding=1 if final_conv_kernel == 3 else 0,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.forward_features(x))


def build_top_down_hrnet(spec: HRNetSpec, keypoints: KeypointSpec) -> TopDownHRNet:
    """Top-down HRNet from an explicit backbone spec (random init, see `init_weights`)."""
    model = TopDownHRNet(spec, keypoints)
    init_weights(model)
    return model


def hrnet_w32(keypoints: KeypointSpec = COCO_17) -> TopDownHRNet:
    """Top-down HRNet-W32 (28,536,113 parameters for COCO)."""
    return build_top_down_hrnet(HRNET_W32, keypoints)


def hrnet_w48(keypoints: KeypointSpec = COCO_17) -> TopDownHRNet:
    """Top-down HRNet-W48 (63,595,745 parameters for COCO)."""
    return build_top_down_hrnet(HRNET_W48, keypoints)


def init_weights(model: nn.Module, std: float = 0.001) -> None:
    """Official initialisation: convs and deconvs N(0, std), biases 0, BN weight 1 / bias 0."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

