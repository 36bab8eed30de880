"""Semi-supervised top-down training: PoseCons, PoseDual, naive consistency, supervised-only.

Xie et al., "An Empirical Study of the Collapsing Problem in Semi-Supervised 2D Human Pose
Estimation" (ICCV 2021); official `xierc/Semi_Human_Pose` `lib/models/pose_cons.py`
(`PoseCons.forward`), `lib/models/pose_dual.py` (`PoseCotrain.forward`), `lib/core/loss.py`
(`PoseDisLoss`, `PoseCoLoss`) and `lib/core/train.py`. Written from the spec.

One step (`semi_supervised_step`), networks f_k in training mode:
1. supervised: f_k(x_l) against the labeled targets (weights = visibility x channel mask);
2. teacher: f_k(x_u) on the easy view without gradient (BatchNorm in training mode, as the
   official code);
3. hard view per student k: easy -> Joint Cutout around its teacher's argmax joints -> the
   extra affine theta (one theta per image, shared by every student); the teacher heatmaps are
   warped by the same theta (T_e->h);
4. consistency: f_k(hard_k) against the warped teacher maps (weights = channel mask).
PoseCons: teacher of f is f. PoseDual: f2 teaches f1 and f1 teaches f2, cutout of hard_1 around
f2's joints and of hard_2 around f1's. Naive consistency (the collapsing control): the teacher
runs on the hard view (affine, no cutout), its maps are warped back (inverse theta) and teach
the network on the easy view. Supervised-only: consistency weight 0 (no unlabeled student).

Loss terms (summed by the loop): `sup_net{k}` (PoseDual: 0.5 each), `cons_net{k}` (times the
consistency weight). Monitored (not optimised): `monitor/collapse_net{k}` = mean over unlabeled
images and labelled channels of the per-channel maximum of the easy-view heatmaps (-> 0 when
a network collapses to background).

Shapes: images (N, 3, H, W) normalised; heatmaps / targets (N, J, H/4, W/4); weights (N, J, 1).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from pose_core.data.hard_views import (
    HardViewRandom,
    argmax_joints,
    draw_hard_affine,
    hard_affine_theta,
    joint_cutout,
    warp_with_theta,
)
from pose_core.engine.config import (
    CodecConfig,
    ConfigError,
    DataConfig,
    LossConfig,
    ModelConfig,
    SemiSupervisedConfig,
    TrainConfig,
    ValidationConfig,
)
from pose_core.engine.tasks import TopDownTask, build_model_from_config
from pose_core.engine.training_task import MAIN_NETWORK, MONITOR_PREFIX, Forward
from pose_core.losses.consistency import consistency_losses, supervised_loss

__all__ = [
    "SECOND_NETWORK",
    "ChannelSelect",
    "SemiSupervisedStep",
    "SemiSupervisedTask",
    "collapse_indicator",
    "semi_supervised_step",
]

SECOND_NETWORK = "model_2"  # PoseDual's net2 in the loop's networks / checkpoints


@dataclass(frozen=True)
class SemiSupervisedStep:
    """What one step computed: the loss terms and, for tests, the views it built.

    Attributes:
        losses: loss terms and `monitor/` values (see the module docstring).
        hard_images: per student, (N, 3, H, W) hard view (empty for supervised-only).
        teacher_targets: per student, (N, J, h, w) warped teacher heatmaps.
        theta: (N, 2, 3) float64 extra-affine matrices (identity when the affine is off).
    """

    losses: dict[str, Tensor]
    hard_images: list[Tensor]
    teacher_targets: list[Tensor]
    theta: Tensor | None


def collapse_indicator(heatmaps: Tensor, weight: Tensor) -> Tensor:
    """Mean over images and weighted channels of each channel's maximum (detached scalar)."""
    maxima = heatmaps.detach().flatten(2).amax(dim=2)
    mask = weight.reshape(maxima.shape).to(maxima.dtype)
    return (maxima * mask).sum() / mask.sum().clamp_min(1.0)


def _hard_views(
    easy: Tensor,
    pixels: Tensor,
    teachers: Sequence[Tensor],
    options: SemiSupervisedConfig,
    labelled_channels: Sequence[int],
    rng: HardViewRandom,
) -> tuple[list[Tensor], list[Tensor], Tensor | None]:
    """Hard image (from `pixels`: the easy view or its RandAugment copy) and warped teacher maps
    per student (official draw order: the cutouts of every student, then the affine)."""
    stride = easy.shape[-1] / teachers[0].shape[-1]
    hard = [
        joint_cutout(pixels, argmax_joints(teacher, stride), options.joint_cutout, rng,
                     labelled_channels, release=options.release,
                     size_scale=options.cutout_scale)
        for teacher in teachers
    ]
    if not options.hard_affine:
        return hard, [t.detach() for t in teachers], None
    theta = hard_affine_theta(draw_hard_affine(easy.shape[0], rng))
    return ([warp_with_theta(h, theta) for h in hard],
            [warp_with_theta(t.detach(), theta) for t in teachers], theta)


def _naive_views(
    network: nn.Module, easy: Tensor, forward: Forward, rng: HardViewRandom
) -> tuple[Tensor, Tensor, Tensor]:
    """Naive control: the teacher on the hard view (extra affine), mapped back to the easy
    view by the inverse theta. Returns (hard image, target on the easy view, theta)."""
    theta = hard_affine_theta(draw_hard_affine(easy.shape[0], rng))
    hard = warp_with_theta(easy, theta)
    with torch.no_grad():
        teacher = forward(network, hard)
    inverse = torch.linalg.inv(
        torch.cat([theta, theta.new_tensor([0.0, 0.0, 1.0]).expand(len(theta), 1, 3)], 1))
    return hard, warp_with_theta(teacher.detach(), inverse[:, :2]), theta


def semi_supervised_step(
    networks: Sequence[nn.Module],
    batch: Mapping[str, Tensor],
    options: SemiSupervisedConfig,
    labelled_channels: Sequence[int],
    rng: HardViewRandom,
    forward: Forward,
) -> SemiSupervisedStep:
    """One PoseCons / PoseDual / naive / supervised step (see the module docstring).

    Args:
        networks: [f] (PoseCons, naive, supervised) or [f1, f2] (PoseDual).
        batch: `image`, `target`, `target_weight`, `unlabeled_image`, `unlabeled_weight`
            (optionally `unlabeled_rand_image`), on the networks' device.
        options: method, weights, cutout, affine, release switch.
        labelled_channels: model channels that carry a trained joint (cutout candidates).
        rng: the hard-view random streams.
        forward: forward(network, inputs) -> heatmaps.
    """
    expected = 2 if options.method == "posedual" else 1
    if len(networks) != expected:
        raise ValueError(f"{options.method} needs {expected} network(s), got {len(networks)}")
    losses: dict[str, Tensor] = {}
    supervised = [forward(net, batch["image"]) for net in networks]
    for k, prediction in enumerate(supervised, start=1):
        losses[f"sup_net{k}"] = supervised_loss([prediction], batch["target"],
                                                batch["target_weight"]) / len(networks)
    easy, weight = batch["unlabeled_image"], batch["unlabeled_weight"]
    if options.method == "supervised" or options.consistency_weight == 0:
        with torch.no_grad():
            was_training = networks[0].training
            networks[0].eval()  # indicator only: leave the BatchNorm statistics alone
            losses["monitor/collapse_net1"] = collapse_indicator(forward(networks[0], easy),
                                                                 weight)
            networks[0].train(was_training)
        return SemiSupervisedStep(losses, [], [], None)
    if options.method == "naive_consistency":
        hard, target, theta = _naive_views(networks[0], easy, forward, rng)
        student = forward(networks[0], easy)
        losses["cons_net1"] = options.consistency_weight * consistency_losses(
            [student], [target], weight)[0]
        losses["monitor/collapse_net1"] = collapse_indicator(student, weight)
        return SemiSupervisedStep(losses, [hard], [target], theta)
    with torch.no_grad():
        easy_maps = [forward(net, easy) for net in networks]
    teachers = easy_maps[::-1]  # PoseDual: the other network; PoseCons: itself
    pixels = batch.get("unlabeled_rand_image", easy)  # RandAugment copy when configured
    hard, targets, theta = _hard_views(easy, pixels, teachers, options, labelled_channels, rng)
    students = [forward(net, view) for net, view in zip(networks, hard)]
    for k, (term, maps) in enumerate(zip(consistency_losses(students, targets, weight),
                                         easy_maps), start=1):
        losses[f"cons_net{k}"] = options.consistency_weight * term
        losses[f"{MONITOR_PREFIX}collapse_net{k}"] = collapse_indicator(maps, weight)
    return SemiSupervisedStep(losses, hard, targets, theta)


class ChannelSelect(nn.Module):
    """Evaluation wrapper: the model's heatmaps at `channels` (e.g. COCO-17 of the union-24)."""

    def __init__(self, model: nn.Module, channels: Sequence[int]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("channels", torch.tensor(list(channels), dtype=torch.long),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x).index_select(1, self.channels)


class SemiSupervisedTask(TopDownTask):
    """Task "semi_supervised": labeled subset + unlabeled pool, PoseCons / PoseDual steps,
    validation of network 1 with ground-truth boxes and no flip (the paper's protocol).

    Args: as `TopDownTask`, plus `semi` (`SemiSupervisedConfig`).
    """

    def __init__(
        self,
        model: ModelConfig,
        data: DataConfig,
        codec: CodecConfig,
        loss: LossConfig,
        validation: ValidationConfig,
        seed: int = 0,
        semi: SemiSupervisedConfig | None = None,
    ) -> None:
        self.semi = semi or SemiSupervisedConfig()
        super().__init__(model, data, codec, loss, validation, seed)

    @classmethod
    def from_train_config(cls, config: TrainConfig) -> "SemiSupervisedTask":
        return cls(config.model, config.data, config.codec, config.loss, config.validation,
                   config.seed, config.semi_supervised)

    def _configure(self) -> None:
        from pose_core.keypoint_specs import COCO_17_TO_UNION_24, get_keypoint_spec

        super()._configure()
        self.model_spec = self.info.keypoints
        self.spec = get_keypoint_spec(self.data.dataset)  # the data's joints
        if self.model_spec == self.spec:
            self.channel_of_joint = tuple(range(self.spec.num_keypoints))
        elif self.model_spec.name == "union24" and self.spec.name == "coco":
            self.channel_of_joint = COCO_17_TO_UNION_24
        else:
            raise ConfigError(f"model.name: {self.model_config.name} ({self.model_spec.name} "
                              f"joints) cannot be trained on data.dataset {self.data.dataset}")
        for key in ("unlabeled_annotations", "train_annotations"):
            value = getattr(self.data, key)
            if not value or not pathlib.Path(value).expanduser().is_file():
                raise ConfigError(f"data.{key}: annotation file not found: {value!r}")
        if self.semi.num_labels < 0:
            raise ConfigError("semi_supervised.num_labels must be >= 0")

    def build_networks(self) -> dict[str, nn.Module]:
        """One network, or two independently initialised ones (PoseDual). With
        `model.init_checkpoint`, a PoseCons / PoseDual file gives network k its own part
        (`resnet2.` for net2 when present, as the paper's combined ResNet-18 init), any other
        file the same weights to both; a file without the deconvolution head (ImageNet
        ResNet) initialises the backbone only."""
        count = 2 if self.semi.method == "posedual" else 1
        plain = dataclasses.replace(self.model_config, init_checkpoint=None)
        built = [build_model_from_config(plain) for _ in range(count)]
        if self.model_config.init_checkpoint:
            for index, network in enumerate(built, start=1):
                _initialise(network, self.model_config.init_checkpoint, index)
        names = (MAIN_NETWORK, SECOND_NETWORK)
        return dict(zip(names, built))

    def _top_down_dataset(self, instances: Sequence[Any]) -> Dataset:
        from pose_core.data.top_down_dataset import TopDownDataset

        return TopDownDataset(
            instances, self.spec, image_wh=self.image_wh, heatmap_wh=self.heatmap_wh,
            sigma=self.codec.sigma, encoding=self.codec.encoding, augment=True, seed=self.seed,
            scale_factor=self.data.max_scale - 1.0, rotation_factor=self.data.max_rotation,
            flip_prob=self.data.flip, half_body_prob=self.data.half_body_prob,
            mean=self.info.mean, std=self.info.std,
        )

    def instances(self, annotations_key: str, images_key: str) -> list[Any]:
        """Top-down filtered person instances of `data.<annotations_key>` in annotation order."""
        from pose_core.data.top_down_dataset import instances_from_records

        records = self._records(getattr(self.data, annotations_key),
                                getattr(self.data, images_key))
        found = instances_from_records(records, self.image_wh[0] / self.image_wh[1])
        if not found:
            raise ConfigError(f"data.{annotations_key}: no person instance with a box and a "
                              "labelled joint")
        return found

    def detected_instances(self) -> list[Any]:
        """Unlabeled persons from `data.unlabeled_person_boxes` (category 1, any score) on the
        images of `data.unlabeled_annotations`."""
        from pose_core.data.top_down_dataset import instances_from_detections

        path = pathlib.Path(self.data.unlabeled_person_boxes).expanduser()
        if not path.is_file():
            raise ConfigError(f"data.unlabeled_person_boxes: detection results not found: {path}")
        from pose_core.data.semi_supervised import image_list_records

        images = self.data.unlabeled_images
        records = image_list_records(pathlib.Path(self.data.unlabeled_annotations).expanduser(),
                                     pathlib.Path(images).expanduser() if images else None)
        found = instances_from_detections(path, records, self.spec.num_keypoints,
                                          self.image_wh[0] / self.image_wh[1], min_score=0.0)
        if not found:
            raise ConfigError("data.unlabeled_person_boxes: no person detection")
        return found

    def train_dataset(self) -> Dataset:
        from pose_core.data.semi_supervised import SemiSupervisedDataset, label_subset

        try:
            labeled = label_subset(self.instances("train_annotations", "train_images"),
                                   self.semi.num_labels, "semi_supervised.num_labels")
        except ValueError as error:
            raise ConfigError(str(error)) from error
        unlabeled = (self.detected_instances() if self.data.unlabeled_person_boxes
                     else self.instances("unlabeled_annotations", "unlabeled_images"))
        return SemiSupervisedDataset(
            self._top_down_dataset(labeled), self._top_down_dataset(unlabeled),
            self.channel_of_joint, self.model_spec.num_keypoints, seed=self.seed,
            rand_augment=(self.semi.rand_augment_ops, self.semi.rand_augment_magnitude),
            mean=self.info.mean, std=self.info.std,
        )

    def train_step(
        self,
        networks: Mapping[str, nn.Module],
        batch: Mapping[str, Any],
        device: torch.device,
        forward: Forward,
    ) -> dict[str, Tensor]:
        keys = ("image", "target", "target_weight", "unlabeled_image", "unlabeled_weight",
                "unlabeled_rand_image")
        moved = {k: batch[k].to(device, non_blocking=True) for k in keys if k in batch}
        ordered = [networks[MAIN_NETWORK]] + (
            [networks[SECOND_NETWORK]] if SECOND_NETWORK in networks else [])
        # the hard-view streams follow the loop's per-epoch seeding (resumable)
        rng = HardViewRandom.from_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        return semi_supervised_step(ordered, moved, self.semi, self.channel_of_joint, rng,
                                    forward).losses

    def validation_estimator(self, model: nn.Module, device: torch.device) -> Any:
        """Network 1 (the main network) through the top-down `PoseEstimator`, its heatmaps
        restricted to the data's joints (COCO-17 of the union-24); the paper tests with GT
        boxes and no flip (`validation.flip_test: false`)."""
        from pose_core.inference import PoseEstimator
        from pose_core.inference.backends import TorchBackend

        wrapped = ChannelSelect(model, self.channel_of_joint).to(device)
        return PoseEstimator(
            _estimator_name(self.spec.name, self.model_config.name, self.model_spec.name),
            backend=TorchBackend(wrapped, device), flip_test=self.validation_config.flip_test,
            input_size=self.image_wh,
        )


def _initialise(network: nn.Module, path: str, index: int) -> None:
    """Load `path` into network `index` (1 or 2) as `SemiSupervisedTask.build_networks` says."""
    from pose_core.models.checkpoint import (
        load_checkpoint,
        read_checkpoint,
        strip_prefix,
        unwrap_state_dict,
    )
    from pose_core.models.simple_baseline import (
        SEMI_NETWORK_PREFIXES,
        SimpleBaseline,
        is_semi_supervised_state_dict,
        load_backbone_or_model,
        semi_supervised_state_dict,
    )

    if not isinstance(network, SimpleBaseline):
        load_checkpoint(network, path)
        return
    state_dict, _ = strip_prefix(unwrap_state_dict(read_checkpoint(path))[0])
    if is_semi_supervised_state_dict(state_dict):
        has_second = any(k.startswith(SEMI_NETWORK_PREFIXES[1]) for k in state_dict)
        state_dict = semi_supervised_state_dict(state_dict, index if has_second else 1)
    load_backbone_or_model(network, state_dict)


def _estimator_name(data_spec: str, model_name: str, model_spec: str) -> str:
    """A registered top-down name whose joints are the data's (the model's own when equal)."""
    if model_spec == data_spec:
        return model_name
    return "simple_baseline_res18_256x192_coco"
