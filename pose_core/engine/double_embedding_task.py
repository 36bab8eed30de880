"""Double Embedding training task (`config.task: double_embedding`).

Follows the released training data path of `plyplyply/pytorch-DEM2` @ 06f188d
(`COCOKeypoints.get_joints` with the centre, HigherHRNet's augmentation with the centre kept at
index J, `HeatmapGenerator` / `JointsGenerator` over J + 1 channels, `OffsetGenerator` per
resolution, `MultiLossFactory`), on our `BottomUpDataset` and trainer:

- `DoubleEmbeddingDataset`: the person centre is appended to each person before augmentation
  (so it warps and flips with the joints, fixed by the flip), then heatmaps (J + 1, r, r), masks
  and AE indices (max_people, J + 1, 2) as the bottom-up dataset, plus `offsets` (C, r, r) per
  output size (`codecs.double_embedding_targets`, rules of `CodecConfig.dem_targets`);
- `DoubleEmbeddingTask`: that dataset, `losses.double_embedding.DoubleEmbeddingLoss` (factors
  from `LossConfig`: heatmap_factors, offset_factors, centre_weight, push / pull) and validation
  through `PoseEstimator` with the model's Double Embedding decoder (`ValidationConfig.dem_mode`).

Sample dict: the bottom-up one (`data.bottom_up_dataset`) with J + 1 joint channels, plus
`offsets`: list of (C, r, r) float32 tensors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from pose_core.codecs.double_embedding_targets import encode_offsets, joints_with_centre
from pose_core.data.bottom_up_dataset import BottomUpDataset
from pose_core.data.coco import ImageRecord, records_joints
from pose_core.engine.tasks import BottomUpTask
from pose_core.keypoint_specs import KeypointSpec
from pose_core.models.double_embedding import DemPartition, dem_partition

__all__ = ["DoubleEmbeddingDataset", "DoubleEmbeddingTask", "with_centre_spec"]


def with_centre_spec(spec: KeypointSpec) -> KeypointSpec:
    """`spec` plus a last "person_centre" point that a mirror leaves in place."""
    j = spec.num_keypoints
    return dataclasses.replace(
        spec,
        name=f"{spec.name}_with_centre",
        names=(*spec.names, "person_centre"),
        flip_index=(*spec.flip_index, j),
        sigmas=(*spec.sigmas, 0.1),
        joint_order=(*spec.joint_order, j),
    )


class DoubleEmbeddingDataset(BottomUpDataset):
    """Bottom-up samples with the centre channel and the offset targets.

    Args:
        records: annotation records.
        spec: the joint layout (without the centre).
        release_targets: the released centre / offset rules (else the paper fixes).
        **options: `BottomUpDataset` options (input_size, output_sizes, sigma, augmentation).
    """

    def __init__(
        self,
        records: Any,
        spec: KeypointSpec,
        *,
        release_targets: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(records, with_centre_spec(spec), **options)
        self.joint_spec = spec
        self.partition: DemPartition = dem_partition(spec)
        self.release_targets = bool(release_targets)

    def record_joints(self, record: ImageRecord) -> np.ndarray:
        joints = records_joints(record, self.joint_spec.num_keypoints)
        return joints_with_centre(joints, release=self.release_targets)

    def sample(
        self,
        record: ImageRecord,
        image: np.ndarray,
        masks: list[np.ndarray],
        joints_list: list[np.ndarray],
    ) -> dict[str, Any]:
        out = super().sample(record, image, masks, joints_list)
        out["offsets"] = [
            torch.from_numpy(encode_offsets(
                joints.reshape(-1, self.spec.num_keypoints, 3), size, self.partition,
                release=self.release_targets,
            ))
            for joints, size in zip(joints_list, self.output_sizes, strict=True)
        ]
        return out


class DoubleEmbeddingTask(BottomUpTask):
    """DEM training: dataset, loss and validation from the sub-configs (see the module)."""

    def train_dataset(self) -> Dataset:
        records = self._records(self.data.train_annotations, self.data.train_images)
        return DoubleEmbeddingDataset(
            records, self.spec, release_targets=self.codec.dem_targets == "release",
            **self.dataset_options(),
        )

    def loss(
        self, outputs: Any, batch: Mapping[str, Any], device: torch.device
    ) -> dict[str, Tensor]:
        if self._loss is None:
            from pose_core.losses.double_embedding import (
                DoubleEmbeddingLoss,
                DoubleEmbeddingLossConfig,
            )

            config = self.loss_config
            self._loss = DoubleEmbeddingLoss(
                self.info.head_layout,
                DoubleEmbeddingLossConfig(
                    heatmap_factors=tuple(config.heatmap_factors),
                    offset_factors=tuple(config.offset_factors),
                    push_factor=config.push_factor,
                    pull_factor=config.pull_factor,
                    centre_weight=config.centre_weight,
                    ae_loss_type=config.ae_loss_type,
                ),
            )

        def on_device(key: str) -> list[Tensor]:
            return [t.to(device, non_blocking=True) for t in batch[key]]

        joints = batch["joints"].to(device, non_blocking=True)
        return self._loss(list(outputs), on_device("heatmaps"), on_device("masks"), joints,
                          on_device("offsets"))

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float] | None:
        """AP on the held-out set through the Double Embedding decoder."""
        if not self.data.val_annotations:
            return None
        from pose_core.inference.backends import TorchBackend
        from pose_core.inference.estimator import PoseEstimator

        options = self.validation_config
        estimator = PoseEstimator(
            self.model_config.name,
            backend=TorchBackend(model, device),
            flip_test=options.flip_test,
            dem_mode=options.dem_mode,
            **dataclasses.asdict(options.grouping_params()),
        )
        return self._evaluate(self._validation_records(), lambda image, record: estimator(image))
