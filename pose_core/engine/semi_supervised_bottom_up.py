"""Bottom-up (HigherHRNet) PoseCons / PoseDual: an EXTENSION the paper does not describe.

Xie et al. (ICCV 2021) study top-down crops only; this task carries their easy -> hard
consistency to the bottom-up HigherHRNet networks following the design of
`shared/reference/seed-methods-spec.md` §3.11. Report its results apart from the faithful
top-down reproduction (`pose_core.engine.semi_supervised`).

One step (`semi_supervised_bottom_up_step`), networks f_k in training mode:
1. supervised, labeled images only: f_k(x_l) against the HigherHRNet targets with the project's
   `BottomUpLoss` (masked heatmap MSE at both resolutions, AE push / pull at 1/4);
   `sup_net{k}` (heatmaps) and `tags_net{k}` (push + pull), 0.5 each for PoseDual;
2. teacher: f_k(x_u) on the unlabeled easy view without gradient (training mode, as the
   top-down task); the heatmaps of **both** resolutions are kept;
3. hard view per student: Joint Cutout around the top-k peaks of all people in its teacher's
   finest heatmaps (`pose_core.data.semi_supervised_bottom_up.peak_cutout`), then the extra
   affine theta; the same theta warps the teacher's heatmaps of both resolutions. theta acts in
   normalised [-1, 1] coordinates with align_corners False, where a point has the same
   coordinates at every stride, so one matrix moves the 1/4 and 1/2 maps with the image;
4. consistency: sum over resolutions of `loss.heatmap_factors[r]` x joints MSE of f_k(hard_k)
   against the warped teacher maps (every joint channel, weight 1, no mask: as the paper's
   unlabeled weights). Tags are identity codes with no equivariant target, so the unlabeled
   images get **no tag loss** (their tag channels receive gradient only through the 1/2
   resolution, which HigherHRNet computes from the 1/4 output).

Naive consistency (the collapsing control) and supervised-only work as in the top-down task.
Logged: `sup_net{k}`, `tags_net{k}`, `cons_net{k}`, `monitor/collapse_net{k}` (1/4 maps) and
`monitor/collapse_net{k}_r1` (1/2 maps) = mean over unlabeled images and joints of each
channel's maximum.

Shapes: images (N, 3, S, S); outputs as `HeadLayout.associative_embedding(J)`: heatmaps
(N, J, S/4, S/4) and (N, J, S/2, S/2), tags (N, J, S/4, S/4).
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
    draw_hard_affine,
    hard_affine_theta,
    warp_with_theta,
)
from pose_core.data.semi_supervised_bottom_up import PeakCutout, peak_cutout
from pose_core.engine.config import (
    CodecConfig,
    ConfigError,
    DataConfig,
    LossConfig,
    ModelConfig,
    SemiSupervisedBottomUpConfig,
    SemiSupervisedConfig,
    TrainConfig,
    ValidationConfig,
)
from pose_core.engine.semi_supervised import SECOND_NETWORK, collapse_indicator
from pose_core.engine.tasks import BottomUpTask, build_model_from_config
from pose_core.engine.training_task import MAIN_NETWORK, MONITOR_PREFIX, Forward
from pose_core.losses.heatmap_loss import joints_mse
from pose_core.models.heads import HeadLayout

__all__ = [
    "BottomUpSemiStep",
    "SemiSupervisedBottomUpTask",
    "semi_supervised_bottom_up_step",
    "warp_resolutions",
]


@dataclass(frozen=True)
class BottomUpSemiStep:
    """What one step computed: the loss terms and, for tests, the views it built.

    Attributes:
        losses: loss terms and `monitor/` values (see the module docstring).
        hard_images: per student, (N, 3, S, S) hard view (empty for supervised-only).
        teacher_targets: per student, the warped teacher heatmaps per resolution.
        theta: (N, 2, 3) float64 extra-affine matrices (None when the affine is off).
        cutouts: per student, the `PeakCutout` record (None for naive / supervised).
    """

    losses: dict[str, Tensor]
    hard_images: list[Tensor]
    teacher_targets: list[list[Tensor]]
    theta: Tensor | None
    cutouts: list[PeakCutout | None]


def warp_resolutions(maps: Sequence[Tensor], theta: Tensor) -> list[Tensor]:
    """The same normalised theta applied to the heatmaps of every resolution."""
    return [warp_with_theta(m, theta) for m in maps]


def _heatmaps(head: HeadLayout, outputs: Sequence[Tensor]) -> list[Tensor]:
    return [head.heatmap_maps(outputs, r) for r in range(len(head.heatmaps))]


def _consistency(
    students: Sequence[Tensor], targets: Sequence[Tensor], factors: Sequence[float]
) -> Tensor:
    """Sum over resolutions of factor x joints MSE with weight 1 on every joint."""
    total = students[0].new_zeros(())
    for student, target, factor in zip(students, targets, factors, strict=True):
        weight = student.new_ones(student.shape[0], student.shape[1], 1)
        total = total + factor * joints_mse(student, target.detach(), weight)
    return total


def _inverse(theta: Tensor) -> Tensor:
    bottom = theta.new_tensor([0.0, 0.0, 1.0]).expand(len(theta), 1, 3)
    return torch.linalg.inv(torch.cat([theta, bottom], 1))[:, :2]


def semi_supervised_bottom_up_step(
    networks: Sequence[nn.Module],
    batch: Mapping[str, Any],
    options: SemiSupervisedConfig,
    bottom_up: SemiSupervisedBottomUpConfig,
    head: HeadLayout,
    supervised_loss: nn.Module,
    heatmap_factors: Sequence[float],
    rng: HardViewRandom,
    forward: Forward,
) -> BottomUpSemiStep:
    """One bottom-up PoseCons / PoseDual / naive / supervised step (module docstring).

    Args:
        networks: [f] (PoseCons, naive, supervised) or [f1, f2] (PoseDual).
        batch: `image`, `heatmaps`, `masks`, `joints` (labeled, `BottomUpDataset` keys) and
            `unlabeled_image`, on the networks' device.
        options: method, consistency weight, cutout count, affine switch.
        bottom_up: peak candidates of the cutout.
        head: the networks' output layout (heatmaps per resolution, tags).
        supervised_loss: `BottomUpLoss` of the labeled images (heatmaps + AE tags).
        heatmap_factors: consistency weight per resolution (the `loss.heatmap_factors`).
        rng: the hard-view random streams.
        forward: forward(network, inputs) -> outputs.
    """
    expected = 2 if options.method == "posedual" else 1
    if len(networks) != expected:
        raise ValueError(f"{options.method} needs {expected} network(s), got {len(networks)}")
    losses: dict[str, Tensor] = {}
    share = 1.0 / len(networks)
    for k, net in enumerate(networks, start=1):
        terms = supervised_loss(list(forward(net, batch["image"])), batch["heatmaps"],
                                batch["masks"], batch["joints"])
        heat = [v for key, v in terms.items() if key.startswith("heatmaps_")]
        losses[f"sup_net{k}"] = share * sum(heat[1:], heat[0])
        if "push" in terms:
            losses[f"tags_net{k}"] = share * (terms["push"] + terms["pull"])
    easy = batch["unlabeled_image"]

    def monitor(k: int, maps: Sequence[Tensor]) -> None:
        ones = maps[0].new_ones(maps[0].shape[0], maps[0].shape[1], 1)
        for r, m in enumerate(maps):
            suffix = "" if r == 0 else f"_r{r}"
            losses[f"{MONITOR_PREFIX}collapse_net{k}{suffix}"] = collapse_indicator(m, ones)

    if options.method == "supervised" or options.consistency_weight == 0:
        with torch.no_grad():
            was_training = networks[0].training
            networks[0].eval()  # indicator only: leave the BatchNorm statistics alone
            monitor(1, _heatmaps(head, forward(networks[0], easy)))
            networks[0].train(was_training)
        return BottomUpSemiStep(losses, [], [], None, [])
    if options.method == "naive_consistency":
        theta = hard_affine_theta(draw_hard_affine(easy.shape[0], rng))
        hard = warp_with_theta(easy, theta)
        with torch.no_grad():
            teacher = _heatmaps(head, forward(networks[0], hard))
        targets = warp_resolutions([t.detach() for t in teacher], _inverse(theta))
        student = _heatmaps(head, forward(networks[0], easy))
        losses["cons_net1"] = options.consistency_weight * _consistency(
            student, targets, heatmap_factors)
        monitor(1, student)
        return BottomUpSemiStep(losses, [hard], [targets], theta, [None])
    with torch.no_grad():
        easy_maps = [_heatmaps(head, forward(net, easy)) for net in networks]
    teachers = easy_maps[::-1]  # PoseDual: the other network; PoseCons: itself
    cutouts = [peak_cutout(easy, teacher[-1], options.joint_cutout, rng,
                           bottom_up.peaks_per_joint, bottom_up.peak_threshold,
                           size_scale=options.cutout_scale)
               for teacher in teachers]
    hard = [c.images for c in cutouts]
    targets = [[t.detach() for t in teacher] for teacher in teachers]
    theta = None
    if options.hard_affine:
        theta = hard_affine_theta(draw_hard_affine(easy.shape[0], rng))
        hard = [warp_with_theta(h, theta) for h in hard]
        targets = [warp_resolutions(t, theta) for t in targets]
    for k, (net, view, target) in enumerate(zip(networks, hard, targets), start=1):
        student = _heatmaps(head, forward(net, view))
        losses[f"cons_net{k}"] = options.consistency_weight * _consistency(
            student, target, heatmap_factors)
        monitor(k, easy_maps[k - 1])
    return BottomUpSemiStep(losses, hard, targets, theta, list(cutouts))


class SemiSupervisedBottomUpTask(BottomUpTask):
    """Task "semi_supervised_bottom_up": labeled images + unlabeled images, the bottom-up
    PoseCons / PoseDual step, validation of network 1 on the held-out images (the official
    bottom-up test path of `BottomUpTask`).

    Args: as `BottomUpTask`, plus `semi` (`SemiSupervisedConfig`: method, weights, cutout,
    affine) and `bottom_up` (`SemiSupervisedBottomUpConfig`: image subset, peak candidates).
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
        bottom_up: SemiSupervisedBottomUpConfig | None = None,
    ) -> None:
        self.semi = semi or SemiSupervisedConfig()
        self.bottom_up = bottom_up or SemiSupervisedBottomUpConfig()
        super().__init__(model, data, codec, loss, validation, seed)

    @classmethod
    def from_train_config(cls, config: TrainConfig) -> "SemiSupervisedBottomUpTask":
        return cls(config.model, config.data, config.codec, config.loss, config.validation,
                   config.seed, config.semi_supervised, config.semi_supervised_bottom_up)

    def _configure(self) -> None:
        super()._configure()
        head = self.info.head_layout
        if head.tags is None or head.tag_dim != 1 or len(head.heatmaps) != len(
                self.loss_config.heatmap_factors):
            raise ConfigError(f"model.name: {self.model_config.name} is not a HigherHRNet AE "
                              "network with one heatmap block per loss.heatmap_factors entry")
        unsupported = {
            "semi_supervised.num_labels": self.semi.num_labels != 0,
            "semi_supervised.rand_augment_ops": self.semi.rand_augment_ops != 0,
            "semi_supervised.release": self.semi.release,
            "data.unlabeled_person_boxes": bool(self.data.unlabeled_person_boxes),
        }
        for key, bad in unsupported.items():
            if bad:
                raise ConfigError(
                    f"{key}: not used by the bottom-up task (labeled images are counted by "
                    "semi_supervised_bottom_up.num_labeled_images; no RandAugment, release "
                    "switch or person boxes)")
        for key in ("unlabeled_annotations", "train_annotations"):
            value = getattr(self.data, key)
            if not value or not pathlib.Path(value).expanduser().is_file():
                raise ConfigError(f"data.{key}: annotation file not found: {value!r}")
        if self.bottom_up.peaks_per_joint < 1:
            raise ConfigError("semi_supervised_bottom_up.peaks_per_joint must be >= 1")

    def build_networks(self) -> dict[str, nn.Module]:
        """One network, or two independently initialised ones (PoseDual); `init_checkpoint`
        (with its `init_scope`) is loaded into each."""
        count = 2 if self.semi.method == "posedual" else 1
        built = [build_model_from_config(self.model_config) for _ in range(count)]
        return dict(zip((MAIN_NETWORK, SECOND_NETWORK), built))

    def train_dataset(self) -> Dataset:
        from pose_core.data.bottom_up_dataset import BottomUpDataset
        from pose_core.data.coco import AnnotationError
        from pose_core.data.semi_supervised import image_list_records
        from pose_core.data.semi_supervised_bottom_up import (
            SemiSupervisedBottomUpDataset,
            image_label_subset,
        )

        records = self._records(self.data.train_annotations, self.data.train_images)
        try:
            labeled = image_label_subset(records, self.bottom_up.num_labeled_images,
                                         "semi_supervised_bottom_up.num_labeled_images")
        except ValueError as error:
            raise ConfigError(str(error)) from error
        images = self.data.unlabeled_images
        try:  # labels of the unlabeled file are ignored: only its image list is read
            pool = image_list_records(pathlib.Path(self.data.unlabeled_annotations).expanduser(),
                                      pathlib.Path(images).expanduser() if images else None)
        except AnnotationError as error:
            raise ConfigError(f"data.unlabeled_annotations: {error}") from error
        pool = [dataclasses.replace(r, dataset=self.data.dataset) for r in pool]
        options = self.dataset_options()
        return SemiSupervisedBottomUpDataset(
            BottomUpDataset(labeled, self.spec, **options),
            BottomUpDataset(pool, self.spec, drop_images_without_people=False, **options),
            seed=self.seed,
        )

    def train_step(
        self,
        networks: Mapping[str, nn.Module],
        batch: Mapping[str, Any],
        device: torch.device,
        forward: Forward,
    ) -> dict[str, Tensor]:
        if self._loss is None:
            from pose_core.losses import BottomUpLoss

            self._loss = BottomUpLoss(
                self.info.head_layout, heatmap_factors=self.loss_config.heatmap_factors,
                push_factor=self.loss_config.push_factor,
                pull_factor=self.loss_config.pull_factor,
                ae_loss_type=self.loss_config.ae_loss_type,
            )
        moved = {
            "image": batch["image"].to(device, non_blocking=True),
            "heatmaps": [h.to(device, non_blocking=True) for h in batch["heatmaps"]],
            "masks": [m.to(device, non_blocking=True) for m in batch["masks"]],
            "joints": batch["joints"].to(device, non_blocking=True),
            "unlabeled_image": batch["unlabeled_image"].to(device, non_blocking=True),
        }
        ordered = [networks[MAIN_NETWORK]] + (
            [networks[SECOND_NETWORK]] if SECOND_NETWORK in networks else [])
        # the hard-view streams follow the loop's per-epoch seeding (resumable)
        rng = HardViewRandom.from_seed(int(torch.randint(0, 2**31 - 1, (1,))))
        return semi_supervised_bottom_up_step(
            ordered, moved, self.semi, self.bottom_up, self.info.head_layout, self._loss,
            self.loss_config.heatmap_factors, rng, forward,
        ).losses
