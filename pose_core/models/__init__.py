"""Model registry: named, fully specified networks (architecture, input size, keypoints, norm).

`build_model(name)` returns a randomly initialised network (official initialisation); load
weights with `pose_core.models.checkpoint.load_checkpoint`. Bottom-up (`higherhrnet_*`) models
return `[(N, 2J, H/4, W/4), (N, J, H/2, W/2)]`; top-down (`hrnet_*`) models return
`(N, J, H/4, W/4)`. Networks expect RGB images scaled to [0, 1], then normalised with
`ModelInfo.mean` / `ModelInfo.std`. `input_size` is (w, h).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from pose_core.keypoint_specs import COCO_17, CROWDPOSE_14, UNION_24, KeypointSpec
from pose_core.models.heads import Channels, HeadLayout
from pose_core.models.double_embedding import (
    dem_head_layout,
    dem_higher_hrnet_lite_w16,
    dem_higher_hrnet_w32,
    dem_higher_hrnet_w48,
    dem_partition,
)
from pose_core.models.coupled_embedding import (
    ce_higherhrnet_lite_w16,
    ce_higherhrnet_lite_w16_tag1,
    ce_higherhrnet_w32,
    ce_higherhrnet_w48,
    ce_hrnet_w32,
    ce_hrnet_w48,
)
from pose_core.models.higher_hrnet import (
    HIGHER_HRNET_LITE_W16,
    HigherHRNet,
    HigherHRNetSpec,
    build_higher_hrnet,
    higher_hrnet_lite_w16,
    higher_hrnet_lite_w16_tag2,
    higher_hrnet_w32,
    higher_hrnet_w48,
)
from pose_core.models.simple_baseline import (
    simple_baseline_resnet18,
    simple_baseline_resnet50,
    simple_baseline_resnet101,
    simple_baseline_resnet152,
)
from pose_core.models.tiny_pose import tiny_pose_w32
from pose_core.models.hrnet import (
    HRNetSpec,
    StageSpec,
    TopDownHRNet,
    build_top_down_hrnet,
    hrnet_w32,
    hrnet_w48,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MODELS",
    "MODEL_NAMES",
    "ModelInfo",
    "Channels",
    "HeadLayout",
    "DECODER_OF_FAMILY",
    "model_info",
    "build_model",
    "build_higher_hrnet",
    "build_top_down_hrnet",
    "HigherHRNet",
    "HigherHRNetSpec",
    "HIGHER_HRNET_LITE_W16",
    "HRNetSpec",
    "StageSpec",
    "TopDownHRNet",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# The decoder (`pose_core.codecs.build_decoder`) a family's outputs go through by default.
DECODER_OF_FAMILY: dict[str, str] = {
    "higherhrnet": "associative_embedding",
    "hrnet": "top_down_heatmap",
}


@dataclass(frozen=True)
class ModelInfo:
    """What a registered name stands for.

    Attributes:
        name: registry name.
        family: "higherhrnet" (bottom-up, AE tags) or "hrnet" (top-down heatmaps).
        input_size: network input (w, h) in pixels used for training / the official test.
        keypoints: joint layout of the outputs.
        width: HRNet width C (channels of the highest-resolution branch).
        factory: builds the network for `keypoints` (random init).
        mean / std: RGB normalisation on the [0, 1] scale.
        decoder: the decoder its outputs go through (`pose_core.codecs.DECODERS`); default:
            the family's (`DECODER_OF_FAMILY`).
        head: what its outputs hold (`HeadLayout`); default: the family's layout.
        input_multiple: input sides must be multiples of this (the network's deepest stride;
            32 for HRNet / HigherHRNet).
        test_scales: bottom-up test scales `PoseEstimator` uses when given none (official
            models: single scale, as their test configs).
        draw_person_score: people scoring below this are not drawn when the user gives no cut
            (`pose-infer --min-draw-person-score`, `draw_poses(min_person_score=...)`); the
            default is `pose_core.visualization.DRAW_PERSON_SCORE`.
    """

    name: str
    family: Literal["higherhrnet", "hrnet"]
    input_size: tuple[int, int]
    keypoints: KeypointSpec
    width: int
    factory: Callable[[KeypointSpec], nn.Module] = field(repr=False, compare=False)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    decoder: str = ""
    head: HeadLayout | None = field(default=None, compare=False)
    input_multiple: int = 32
    test_scales: tuple[float, ...] = (1.0,)
    draw_person_score: float = 0.25

    def __post_init__(self) -> None:
        if not self.decoder:
            object.__setattr__(self, "decoder", DECODER_OF_FAMILY[self.family])
        if self.head is None:
            j = self.keypoints.num_keypoints
            head = (HeadLayout.associative_embedding(j) if self.family == "higherhrnet"
                    else HeadLayout.heatmaps_only(j))
            object.__setattr__(self, "head", head)

    @property
    def head_layout(self) -> HeadLayout:
        """`head`, typed as set (never None after construction)."""
        assert self.head is not None
        return self.head

    @property
    def num_joints(self) -> int:
        return self.keypoints.num_keypoints


MODELS: dict[str, ModelInfo] = {
    # the shipped synthetic-world model; its default test is two scales (1 and 1.5: +0.07 AP on
    # a selection set, docs/training_synthetic.md); the node keeps its own single-scale default.
    # Drawn from score 0.4: on 60 pose-synth images 227 of its 229 true people score >= 0.4 and
    # 359 of its 360 false ones <= 0.2, but on real photographs false people reach 0.52 (at 0.25,
    # 40 false skeletons on 4 COCO photos, at 0.4: 12; docs/models.md)
    "higherhrnet_lite_w16_256_coco": ModelInfo(
        "higherhrnet_lite_w16_256_coco", "higherhrnet", (256, 256), COCO_17, 16,
        higher_hrnet_lite_w16, test_scales=(1.0, 1.5), draw_person_score=0.4,
    ),
    # experiment: the shipped network with 2 tag values per joint (no weights shipped)
    "higherhrnet_lite_w16_256_coco_tag2": ModelInfo(
        "higherhrnet_lite_w16_256_coco_tag2", "higherhrnet", (256, 256), COCO_17, 16,
        higher_hrnet_lite_w16_tag2, test_scales=(1.0, 1.5), draw_person_score=0.4,
        head=HeadLayout.associative_embedding(17, 2, tag_dim=2),
    ),
    "higherhrnet_w32_512_coco": ModelInfo(
        "higherhrnet_w32_512_coco", "higherhrnet", (512, 512), COCO_17, 32, higher_hrnet_w32
    ),
    "higherhrnet_w32_640_coco": ModelInfo(
        "higherhrnet_w32_640_coco", "higherhrnet", (640, 640), COCO_17, 32, higher_hrnet_w32
    ),
    "higherhrnet_w48_640_coco": ModelInfo(
        "higherhrnet_w48_640_coco", "higherhrnet", (640, 640), COCO_17, 48, higher_hrnet_w48
    ),
    "higherhrnet_w32_512_crowdpose": ModelInfo(
        "higherhrnet_w32_512_crowdpose", "higherhrnet", (512, 512), CROWDPOSE_14, 32,
        higher_hrnet_w32,
    ),
    "higherhrnet_w32_640_crowdpose": ModelInfo(
        "higherhrnet_w32_640_crowdpose", "higherhrnet", (640, 640), CROWDPOSE_14, 32,
        higher_hrnet_w32,
    ),
    "higherhrnet_w48_640_crowdpose": ModelInfo(
        "higherhrnet_w48_640_crowdpose", "higherhrnet", (640, 640), CROWDPOSE_14, 48,
        higher_hrnet_w48,
    ),
    "hrnet_w32_256x192_coco": ModelInfo(
        "hrnet_w32_256x192_coco", "hrnet", (192, 256), COCO_17, 32, hrnet_w32
    ),
    "hrnet_w32_384x288_coco": ModelInfo(
        "hrnet_w32_384x288_coco", "hrnet", (288, 384), COCO_17, 32, hrnet_w32
    ),
    "hrnet_w48_256x192_coco": ModelInfo(
        "hrnet_w48_256x192_coco", "hrnet", (192, 256), COCO_17, 48, hrnet_w48
    ),
    "hrnet_w48_384x288_coco": ModelInfo(
        "hrnet_w48_384x288_coco", "hrnet", (288, 384), COCO_17, 48, hrnet_w48
    ),
    "hrnet_w32_256x192_crowdpose": ModelInfo(
        "hrnet_w32_256x192_crowdpose", "hrnet", (192, 256), CROWDPOSE_14, 32, hrnet_w32
    ),
    "hrnet_w48_256x192_crowdpose": ModelInfo(
        "hrnet_w48_256x192_crowdpose", "hrnet", (192, 256), CROWDPOSE_14, 48, hrnet_w48
    ),
    # --- Coupled Embedding (models/coupled_embedding.py, codecs/coupled_embedding.py)
    **{
        f"ce_{net}_w{width}_{side}_{dataset}": ModelInfo(
            f"ce_{net}_w{width}_{side}_{dataset}", "higherhrnet", (side, side), keypoints,
            width, factory, decoder="coupled_embedding",
            head=HeadLayout.associative_embedding(keypoints.num_keypoints, outputs, tag_dim=8),
        )
        for net, outputs, width, side, factory in (
            ("hrnet", 1, 32, 512, ce_hrnet_w32),
            ("hrnet", 1, 48, 640, ce_hrnet_w48),
            ("higherhrnet", 2, 32, 512, ce_higherhrnet_w32),
            ("higherhrnet", 2, 48, 640, ce_higherhrnet_w48),
        )
        for dataset, keypoints in (("coco", COCO_17), ("crowdpose", CROWDPOSE_14))
    },
    # small CE networks for the synthetic experiment (8-D tags; 1-D tags: the AE ablation)
    "ce_higherhrnet_lite_w16_256_coco": ModelInfo(
        "ce_higherhrnet_lite_w16_256_coco", "higherhrnet", (256, 256), COCO_17, 16,
        ce_higherhrnet_lite_w16,
        decoder="coupled_embedding",
        head=HeadLayout.associative_embedding(17, 2, tag_dim=8),
    ),
    "ce_higherhrnet_lite_w16_256_coco_tag1": ModelInfo(
        "ce_higherhrnet_lite_w16_256_coco_tag1", "higherhrnet", (256, 256), COCO_17, 16,
        ce_higherhrnet_lite_w16_tag1,
        decoder="coupled_embedding",
        head=HeadLayout.associative_embedding(17, 2, tag_dim=1),
    ),
    # --- Double Embedding (models/double_embedding.py, codecs/double_embedding.py)
    "dem_higherhrnet_lite_w16_256_coco": ModelInfo(
        "dem_higherhrnet_lite_w16_256_coco", "higherhrnet", (256, 256), COCO_17, 16,
        dem_higher_hrnet_lite_w16, decoder="double_embedding",
        head=dem_head_layout(17, dem_partition(COCO_17).num_offsets),
    ),
    "dem_higherhrnet_w32_512_coco": ModelInfo(
        "dem_higherhrnet_w32_512_coco", "higherhrnet", (512, 512), COCO_17, 32,
        dem_higher_hrnet_w32, decoder="double_embedding",
        head=dem_head_layout(COCO_17.num_keypoints, dem_partition(COCO_17).num_offsets),
    ),
    "dem_higherhrnet_w32_640_coco": ModelInfo(
        "dem_higherhrnet_w32_640_coco", "higherhrnet", (640, 640), COCO_17, 32,
        dem_higher_hrnet_w32, decoder="double_embedding",
        head=dem_head_layout(COCO_17.num_keypoints, dem_partition(COCO_17).num_offsets),
    ),
    "dem_higherhrnet_w48_640_coco": ModelInfo(
        "dem_higherhrnet_w48_640_coco", "higherhrnet", (640, 640), COCO_17, 48,
        dem_higher_hrnet_w48, decoder="double_embedding",
        head=dem_head_layout(COCO_17.num_keypoints, dem_partition(COCO_17).num_offsets),
    ),
    "dem_higherhrnet_w32_512_crowdpose": ModelInfo(
        "dem_higherhrnet_w32_512_crowdpose", "higherhrnet", (512, 512), CROWDPOSE_14, 32,
        dem_higher_hrnet_w32, decoder="double_embedding",
        head=dem_head_layout(CROWDPOSE_14.num_keypoints, dem_partition(CROWDPOSE_14).num_offsets),
    ),
    "dem_higherhrnet_w32_640_crowdpose": ModelInfo(
        "dem_higherhrnet_w32_640_crowdpose", "higherhrnet", (640, 640), CROWDPOSE_14, 32,
        dem_higher_hrnet_w32, decoder="double_embedding",
        head=dem_head_layout(CROWDPOSE_14.num_keypoints, dem_partition(CROWDPOSE_14).num_offsets),
    ),
    "dem_higherhrnet_w48_640_crowdpose": ModelInfo(
        "dem_higherhrnet_w48_640_crowdpose", "higherhrnet", (640, 640), CROWDPOSE_14, 48,
        dem_higher_hrnet_w48, decoder="double_embedding",
        head=dem_head_layout(CROWDPOSE_14.num_keypoints, dem_partition(CROWDPOSE_14).num_offsets),
    ),
    # --- Semi-supervised top-down networks (models/simple_baseline.py)
    **{
        f"simple_baseline_res{depth}_256x192_union24": ModelInfo(
            f"simple_baseline_res{depth}_256x192_union24", "hrnet", (192, 256), UNION_24, 256,
            factory,
        )
        for depth, factory in (
            (18, simple_baseline_resnet18), (50, simple_baseline_resnet50),
            (101, simple_baseline_resnet101), (152, simple_baseline_resnet152),
        )
    },
    "simple_baseline_res18_256x192_coco": ModelInfo(
        "simple_baseline_res18_256x192_coco", "hrnet", (192, 256), COCO_17, 256,
        simple_baseline_resnet18,
    ),
    "hrnet_w48_384x288_union24": ModelInfo(
        "hrnet_w48_384x288_union24", "hrnet", (288, 384), UNION_24, 48, hrnet_w48
    ),
    # small top-down encoder-decoder of the CPU-sized synthetic experiment (models/tiny_pose.py)
    "tiny_pose_w32_64x48_coco": ModelInfo(
        "tiny_pose_w32_64x48_coco", "hrnet", (48, 64), COCO_17, 32, tiny_pose_w32,
        input_multiple=16,
    ),
    "tiny_pose_w32_64x48_union24": ModelInfo(
        "tiny_pose_w32_64x48_union24", "hrnet", (48, 64), UNION_24, 32, tiny_pose_w32,
        input_multiple=16,
    ),
}

MODEL_NAMES: tuple[str, ...] = tuple(MODELS)


def model_info(name: str) -> ModelInfo:
    """The `ModelInfo` of a registered name (raises KeyError listing the known names)."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}") from None


def build_model(name: str) -> nn.Module:
    """Build the registered network `name` with random (official-style) initialisation.

    The returned module is in training mode; call `.eval()` for inference.
    """
    info = model_info(name)
    return info.factory(info.keypoints)
