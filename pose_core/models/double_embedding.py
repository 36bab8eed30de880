"""Double Embedding (DEM) network: HRNet with bilinear fuse units and two HigherHRNet-style heads.

Paper: Xu et al., "A Global to Local Double Embedding Method for Multi-person Pose Estimation",
ACCV 2020. Mirrors `lib/models/pose_higher_hrnet_de.py` (`PoseHigherResolutionNet`) of
`plyplyply/pytorch-DEM2` @ 06f188d, written anew on our HRNet backbone (`HRNetSpec` with
`fuse_upsample="bilinear"`). Attribute names are the official state_dict keys:
backbone (`conv1` ... `stage4`), `stem1` / `stem2` (3 Bottlenecks each, C -> C/4 -> C),
`final_layers_off.{0,1}`, `deconv_layers_off.0`, `final_layers_ae.{0,1}`, `deconv_layers_ae.0`.

Joint partition (`DemPartition`): root joints (shoulders, hips) carry tags at test time; face
joints (COCO 0-4, CrowdPose head/neck) own 2 offset channels (dy, dx) to the person centre; limb
joints own 4: (dy, dx) to their parent joint, then (dy, dx) to the centre. Offset channels follow
the joint index order, skipping the root joints. An extra person-centre heatmap / tag (index J)
follows the J joints.

Shapes (input (N, 3, H, W), normalised RGB, H and W multiples of 32), J joints, O offset channels
(42 COCO, 36 CrowdPose):
- output 0: offsets (N, O, H/4, W/4);
- output 1: offsets (N, O, H/2, W/2);
- output 2: (N, 2(J+1), H/4, W/4): J+1 heatmaps (joints, centre), then J+1 one-value tags;
- output 3: (N, J+1, H/2, W/2): heatmaps (joints, centre).
Offsets are in units of the training normaliser (displacement / (sqrt(2) * map side)).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from pose_core.keypoint_specs import COCO_17, KeypointSpec
from pose_core.models._blocks import BN_MOMENTUM, BasicBlock, Bottleneck
from pose_core.models.heads import Channels, HeadLayout
from pose_core.models.higher_hrnet import _DECONV_PADDING
from pose_core.models.hrnet import HRNET_W32, HRNET_W48, HRNet, HRNetSpec, init_weights

__all__ = [
    "DemPartition",
    "DEM_PARTITIONS",
    "dem_partition",
    "DoubleEmbeddingSpec",
    "DoubleEmbeddingNet",
    "build_double_embedding",
    "dem_head_layout",
    "dem_higher_hrnet_w32",
    "dem_higher_hrnet_w48",
]


@dataclass(frozen=True)
class DemPartition:
    """Which joints DEM groups how (official `DATASET.RJG_TAG` / `LJG_WITH_HIER` /
    `LJG_CENTER_ONLY`), with each limb joint's parent.

    Attributes:
        num_joints: J (the centre is index J).
        root: root joints, grouped by tags (l-shoulder, r-shoulder, l-hip, r-hip).
        limbs: limb joints in index order (elbows, wrists, knees, ankles by side).
        face: joints attached to the person centre only.
        parent: (limb joint, parent joint) pairs.
    """

    num_joints: int
    root: tuple[int, ...]
    limbs: tuple[int, ...]
    face: tuple[int, ...]
    parent: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        joints = sorted((*self.root, *self.limbs, *self.face))
        if joints != list(range(self.num_joints)):
            raise ValueError("DemPartition: root, limbs and face must partition the joints")
        if len(self.root) != 4 or len(self.limbs) != 8:
            raise ValueError("DemPartition: 4 root joints and 8 limb joints (two chains a side)")
        if sorted(c for c, _ in self.parent) != sorted(self.limbs):
            raise ValueError("DemPartition: one parent per limb joint")
        if list(self.limbs) != sorted(self.limbs) or list(self.root) != sorted(self.root):
            raise ValueError("DemPartition: root and limb joints in index order")

    @property
    def num_offsets(self) -> int:
        return 2 * len(self.face) + 4 * len(self.limbs)

    def parent_of(self, joint: int) -> int:
        return dict(self.parent)[joint]

    def child_of(self, joint: int) -> int | None:
        children = [c for c, p in self.parent if p == joint]
        return children[0] if children else None

    def offset_channels(self) -> dict[int, int]:
        """First offset channel of each non-root joint (joint index order, 2 or 4 each)."""
        first, channel = {}, 0
        for j in range(self.num_joints):
            if j in self.root:
                continue
            first[j] = channel
            channel += 2 if j in self.face else 4
        return first

    def offset_flip_index(self, flip_index: tuple[int, ...]) -> tuple[int, ...]:
        """Offset channel permutation of a mirror: each joint's block comes from its partner's."""
        first = self.offset_channels()
        order: list[int] = []
        for j in sorted(first):
            width = 2 if j in self.face else 4
            order += [first[flip_index[j]] + d for d in range(width)]
        return tuple(order)


DEM_PARTITIONS: dict[str, DemPartition] = {
    "coco": DemPartition(
        num_joints=17,
        root=(5, 6, 11, 12),
        limbs=(7, 8, 9, 10, 13, 14, 15, 16),
        face=(0, 1, 2, 3, 4),
        parent=((7, 5), (9, 7), (8, 6), (10, 8), (13, 11), (15, 13), (14, 12), (16, 14)),
    ),
    "crowdpose": DemPartition(
        num_joints=14,
        root=(0, 1, 6, 7),
        limbs=(2, 3, 4, 5, 8, 9, 10, 11),
        face=(12, 13),
        parent=((2, 0), (4, 2), (3, 1), (5, 3), (8, 6), (10, 8), (9, 7), (11, 9)),
    ),
}


def dem_partition(keypoints: KeypointSpec) -> DemPartition:
    """The partition of a keypoint layout (KeyError for layouts DEM does not define)."""
    try:
        return DEM_PARTITIONS[keypoints.name]
    except KeyError:
        raise KeyError(f"Double Embedding has no joint partition for {keypoints.name!r}") from None


@dataclass(frozen=True)
class DoubleEmbeddingSpec:
    """Backbone (bilinear fuse) plus head settings of the released yamls.

    Attributes:
        backbone: the HRNet backbone (its `fuse_upsample` is set to "bilinear").
        stem_blocks: Bottlenecks in each head's stem (width C, bottleneck C / 4).
        deconv_channels: channels of the stride-2 branch (C).
        deconv_kernel: ConvTranspose kernel (4).
        num_basic_blocks: BasicBlocks after the ConvTranspose (4).
    """

    backbone: HRNetSpec
    stem_blocks: int = 3
    deconv_channels: int = 32
    deconv_kernel: int = 4
    num_basic_blocks: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "backbone", dataclasses.replace(self.backbone, fuse_upsample="bilinear")
        )
        if self.deconv_kernel not in _DECONV_PADDING:
            raise ValueError(f"deconv kernel must be in {sorted(_DECONV_PADDING)}")
        if self.backbone.width % 4:
            raise ValueError("the stems' bottleneck width is C / 4: width must divide by 4")


def dem_spec(backbone: HRNetSpec, num_basic_blocks: int = 4) -> DoubleEmbeddingSpec:
    return DoubleEmbeddingSpec(backbone=backbone, deconv_channels=backbone.width,
                               num_basic_blocks=num_basic_blocks)


def dem_head_layout(num_joints: int, num_offsets: int) -> HeadLayout:
    """The outputs' layout: heatmaps (J+1 incl. the centre) in outputs 2 and 3 (stride 4, 2),
    one-value tags after them in output 2, offsets as the extras "offsets_s4" / "offsets_s2"."""
    with_centre = num_joints + 1
    return HeadLayout(
        num_joints=with_centre,
        heatmaps=(Channels(2, 0, with_centre), Channels(3, 0, with_centre)),
        tags=Channels(2, with_centre, with_centre),
        tag_dim=1,
        extras=(("offsets_s4", Channels(0, 0, num_offsets)),
                ("offsets_s2", Channels(1, 0, num_offsets))),
    )


def _stem(width: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*[Bottleneck(width, width // 4) for _ in range(blocks)])


def _deconv_branch(in_channels: int, spec: DoubleEmbeddingSpec) -> nn.ModuleList:
    """`deconv_layers_*`: one module (ConvTranspose x2 + BN + ReLU, then BasicBlocks)."""
    pad, out_pad = _DECONV_PADDING[spec.deconv_kernel]
    channels = spec.deconv_channels
    layers: list[nn.Module] = [
        nn.Sequential(
            nn.ConvTranspose2d(in_channels, channels, spec.deconv_kernel, stride=2, padding=pad,
                               output_padding=out_pad, bias=False),
            nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
            nn.ReLU(inplace=True),
        )
    ]
    layers += [nn.Sequential(BasicBlock(channels, channels)) for _ in range(spec.num_basic_blocks)]
    return nn.ModuleList([nn.Sequential(*layers)])


class DoubleEmbeddingNet(HRNet):
    """The DEM network (official `PoseHigherResolutionNet` of `pose_higher_hrnet_de.py`).

    Args:
        spec: backbone and head settings.
        keypoints: joint layout (COCO or CrowdPose; sets the partition and channel counts).
    """

    def __init__(self, spec: DoubleEmbeddingSpec, keypoints: KeypointSpec) -> None:
        super().__init__(spec.backbone)
        self.head_spec = spec
        self.keypoints = keypoints
        self.partition = dem_partition(keypoints)
        width = self.out_channels
        num_offsets = self.partition.num_offsets
        num_maps = keypoints.num_keypoints + 1
        self.stem1 = _stem(width, spec.stem_blocks)
        self.stem2 = _stem(width, spec.stem_blocks)
        channels = spec.deconv_channels
        self.final_layers_off = nn.ModuleList(
            [nn.Conv2d(width, num_offsets, 1), nn.Conv2d(channels, num_offsets, 1)]
        )
        self.deconv_layers_off = _deconv_branch(width + num_offsets, spec)
        self.final_layers_ae = nn.ModuleList(
            [nn.Conv2d(width, 2 * num_maps, 1), nn.Conv2d(channels, num_maps, 1)]
        )
        self.deconv_layers_ae = _deconv_branch(width + 2 * num_maps, spec)

    @property
    def head_layout(self) -> HeadLayout:
        return dem_head_layout(self.keypoints.num_keypoints, self.partition.num_offsets)

    @staticmethod
    def _head(
        features: torch.Tensor, stem: nn.Module, finals: nn.ModuleList, deconvs: nn.ModuleList
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = stem(features)
        coarse = finals[0](x)
        fine = finals[1](deconvs[0](torch.cat((x, coarse), 1)))
        return coarse, fine

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) -> [offsets /4, offsets /2, heatmaps + tags /4, heatmaps /2]."""
        features = self.forward_features(x)
        offsets_s4, offsets_s2 = self._head(
            features, self.stem1, self.final_layers_off, self.deconv_layers_off
        )
        maps_s4, maps_s2 = self._head(
            features, self.stem2, self.final_layers_ae, self.deconv_layers_ae
        )
        return [offsets_s4, offsets_s2, maps_s4, maps_s2]


def build_double_embedding(
    spec: DoubleEmbeddingSpec, keypoints: KeypointSpec
) -> DoubleEmbeddingNet:
    """DEM network from an explicit spec, with the official random initialisation."""
    model = DoubleEmbeddingNet(spec, keypoints)
    init_weights(model)
    return model


DEM_HIGHER_HRNET_W32 = dem_spec(HRNET_W32)
DEM_HIGHER_HRNET_W48 = dem_spec(HRNET_W48)


def dem_higher_hrnet_w32(keypoints: KeypointSpec = COCO_17) -> DoubleEmbeddingNet:
    """DEM HigherHRNet-W32 (28,768,522 parameters for COCO, 28,761,685 for CrowdPose)."""
    return build_double_embedding(DEM_HIGHER_HRNET_W32, keypoints)


def dem_higher_hrnet_w48(keypoints: KeypointSpec = COCO_17) -> DoubleEmbeddingNet:
    """DEM HigherHRNet-W48."""
    return build_double_embedding(DEM_HIGHER_HRNET_W48, keypoints)


def dem_higher_hrnet_lite_w16(keypoints: KeypointSpec = COCO_17) -> DoubleEmbeddingNet:
    """The small DEM network for CPU experiments: the backbone of the shipped
    `higherhrnet_lite_w16_256_coco` (width 16, reduced stages) with DEM heads (1 BasicBlock)."""
    from pose_core.models.higher_hrnet import HIGHER_HRNET_LITE_W16

    return build_double_embedding(dem_spec(HIGHER_HRNET_LITE_W16.backbone, 1), keypoints)
