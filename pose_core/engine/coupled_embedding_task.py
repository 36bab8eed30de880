"""Coupled Embedding training task (`TASKS["coupled_embedding"]`): data, loss, validation.

- data: `CoupledEmbeddingDataset`, the HigherHRNet bottom-up samples (`BottomUpDataset`:
  augmentation, heatmaps, masks, AE indices at stride 4) plus each person's instance scale:
  the 4 corners of its COCO box through the same input affine, sqrt(|tl - bl| |tl - tr|) / S
  (official `RandomAffine` + `ScalesEncoder` of CR320/CoupledEmbedding; a mirror leaves the
  edge lengths unchanged, so the flip is not needed for them). The people and their order are
  those of the joints (`iscrowd == 0 or num_keypoints > 0`), slot m of `joints` and
  `box_scales` is the same person.
- loss: `pose_core.losses.coupled_embedding.CoupledEmbeddingLoss` with the `loss` sub-config
  (`scale_factor`, `scale_beta`, `focal`, `focal_gamma`, `scale_adaptive`, `zero_tag_guard`,
  `pull_factor`, `push_factor`, heatmap factor = `heatmap_factors[0]`).
- validation: the `BottomUpTask` one: `PoseEstimator` by model name, so the CE codec (flip-
  concatenated tags, CE grouping) scores the held-out images.

Ablations in the same code path (configs in `config/train/`): 1-D tags (model
`ce_higherhrnet_lite_w16_256_coco_tag1`), 8-D tags without the scale loss
(`loss.scale_factor: 0`, `loss.scale_adaptive: false`), fixed-sigma heatmaps
(`loss.scale_adaptive: false`).

Sample dict: as `BottomUpDataset`, plus `box_scales` (max_people,) float64 tensor.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pose_core.codecs.coupled_embedding_targets import box_corners, instance_scales
from pose_core.data.bottom_up_dataset import BottomUpDataset
from pose_core.data.transforms import bottom_up_affine_matrix
from pose_core.engine.tasks import BottomUpTask
from pose_core.geometry import apply_affine

__all__ = ["CoupledEmbeddingDataset", "CoupledEmbeddingTask", "record_boxes"]


def record_boxes(record: Any) -> np.ndarray:
    """(P, 4) x, y, w, h of the people `records_joints` keeps, in the same order."""
    kept = [a for a in record.annotations if not a.iscrowd or a.num_keypoints > 0]
    return np.asarray([a.bbox for a in kept], np.float64).reshape(-1, 4)


class CoupledEmbeddingDataset(Dataset):
    """A `BottomUpDataset`'s samples plus `box_scales` (see the module docstring).

    Args:
        base: the bottom-up dataset (records, augmentation, targets, per-sample generators).
    """

    def __init__(self, base: BottomUpDataset) -> None:
        self.base = base

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        base = self.base
        sample = base[index]
        record = base.records[index]
        if base.augment:  # the generator of this sample: its first draws are the affine's
            params = base.affine.sample(record.height, record.width, base.rng_for(index))
        else:
            params = base.affine.identity_params(record.height, record.width)
        matrix = bottom_up_affine_matrix(
            params.center, params.scale, base.input_size, params.rotation
        )
        corners = apply_affine(box_corners(record_boxes(record)), matrix)
        sample["box_scales"] = torch.from_numpy(
            instance_scales(corners, base.input_size, base.max_people)
        )
        return sample


class CoupledEmbeddingTask(BottomUpTask):
    """CE training: `CoupledEmbeddingDataset`, `CoupledEmbeddingLoss`, bottom-up validation.

    Args: as `BottomUpTask` (model, data, codec, loss, validation, seed).
    """

    def _configure(self) -> None:
        super()._configure()
        head = self.info.head_layout
        if self.info.decoder != "coupled_embedding" or head.tags is None:
            raise ValueError(f"{self.info.name} is not a Coupled Embedding model")
        self.output_sizes = self.output_sizes[: len(head.heatmaps)]

    def train_dataset(self) -> Dataset:
        base = super().train_dataset()
        assert isinstance(base, BottomUpDataset)
        return CoupledEmbeddingDataset(base)

    def ce_loss_config(self) -> Any:
        """The `CoupledEmbeddingLossConfig` of the `loss` sub-config."""
        from pose_core.losses.coupled_embedding import CoupledEmbeddingLossConfig

        loss = self.loss_config
        return CoupledEmbeddingLossConfig(
            beta=loss.scale_beta,
            focal=loss.focal,
            focal_gamma=loss.focal_gamma,
            scale_adaptive=loss.scale_adaptive,
            heatmap_factor=loss.heatmap_factors[0],
            pull_factor=loss.pull_factor,
            push_factor=loss.push_factor,
            scale_factor=loss.scale_factor,
            zero_tag_guard=loss.zero_tag_guard,
        )

    def loss(
        self, outputs: Any, batch: Mapping[str, Any], device: torch.device
    ) -> dict[str, Tensor]:
        if self._loss is None:
            from pose_core.losses.coupled_embedding import CoupledEmbeddingLoss

            self._loss = CoupledEmbeddingLoss(self.info.head_layout, self.ce_loss_config())
        heatmaps = [h.to(device, non_blocking=True) for h in batch["heatmaps"]]
        masks = [m.to(device, non_blocking=True) for m in batch["masks"]]
        joints = batch["joints"].to(device, non_blocking=True)
        scales = batch["box_scales"].to(device, non_blocking=True)
        return self._loss(list(outputs), heatmaps, masks, joints, scales)
