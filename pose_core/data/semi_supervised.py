"""Data of the semi-supervised pose study: label subsets, the unlabeled pool, paired samples.

Xie et al., ICCV 2021; official `xierc/Semi_Human_Pose` `lib/dataset/coco.py` (`TRAIN_LEN`:
the first N instances of the ground-truth database) and `lib/dataset/mix_coco_coco.py`
(`__getitem__`: an unlabeled item paired with a labeled one drawn uniformly with replacement,
`__len__` = the unlabeled set). Written from the spec.

- Label subset: the first `num_labels` person instances after the standard top-down filtering
  (`instances_from_records`: non-crowd area > 0, a non-empty clipped box, at least one labelled
  joint), in annotation order (images in the order of the JSON `images` list, annotations in
  file order within an image).
- Unlabeled pool: every such instance of the unlabeled annotation file (labels ignored).
- `SemiSupervisedDataset[i]` = unlabeled item i (the easy view: the standard top-down affine)
  with a labeled item drawn by `default_rng((seed, epoch, i))` (re-drawn each epoch) and
  augmented with its own stream for pair i (`draw(index, stream=i)`: a labeled item that comes
  up several times in one epoch is augmented afresh each time, as the paper's loader does); an
  epoch is the unlabeled pool, a batch of B items holds B labeled + B unlabeled crops.
- Channels: labeled targets of the data's joint layout are scattered into the model's channels
  (`channel_of_joint`, e.g. COCO-17 into the 24-channel union set); unlabeled weights are 1 on
  those channels, 0 on the others.

Sample keys: `image` (3, H, W), `target` (J_model, h, w), `target_weight` (J_model, 1),
`unlabeled_image` (3, H, W), `unlabeled_weight` (J_model, 1) and, with RandAugment on,
`unlabeled_rand_image` (3, H, W): the same crop after `rand_augment` (photometric only, so the
geometry of the easy view), the source of the hard view's pixels.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pose_core.data.top_down_dataset import PersonInstance

__all__ = ["SemiSupervisedDataset", "draw_labeled", "image_list_records", "label_subset",
           "scatter_channels"]


def image_list_records(json_path: pathlib.Path, image_dir: pathlib.Path | None) -> list[Any]:
    """`ImageRecord`s (no people) of a COCO image-info JSON (only `images` is read, e.g.
    `image_info_unlabeled2017.json`), in file order; images under `image_dir` (default: found
    as for annotation files)."""
    import json

    from pose_core.data.coco import AnnotationError, ImageRecord, find_image_dir

    with open(json_path, encoding="utf-8") as handle:
        data = json.load(handle)
    images = data.get("images") if isinstance(data, dict) else None
    if not images:
        raise AnnotationError(f"{json_path}: no 'images' list")
    folder = image_dir or find_image_dir(json_path, str(images[0]["file_name"]))
    return [ImageRecord(int(i["id"]), str(i["file_name"]), folder / str(i["file_name"]),
                        int(i["width"]), int(i["height"]), ()) for i in images]


def label_subset(
    instances: Sequence[PersonInstance], num_labels: int, key: str = "data.num_labels"
) -> list[PersonInstance]:
    """The first `num_labels` instances (0 = all); raises ValueError naming `key` when there
    are fewer."""
    if num_labels < 0:
        raise ValueError(f"{key} must be >= 0, got {num_labels}")
    if num_labels > len(instances):
        raise ValueError(
            f"{key}={num_labels} exceeds the {len(instances)} person instances available")
    return list(instances[:num_labels]) if num_labels else list(instances)


def scatter_channels(
    values: torch.Tensor, channel_of_joint: Sequence[int], num_channels: int
) -> torch.Tensor:
    """(J, ...) per-joint values -> (num_channels, ...) with joint j at channel_of_joint[j],
    zeros elsewhere."""
    out = values.new_zeros((num_channels, *values.shape[1:]))
    out[list(channel_of_joint)] = values
    return out


class SemiSupervisedDataset(Dataset):
    """Pairs of (labeled crop, unlabeled easy crop), one pair per unlabeled instance.

    Args:
        labeled: a top-down dataset of the labeled subset (augment on).
        unlabeled: a top-down dataset of the unlabeled pool (augment on: the easy view).
        channel_of_joint: model channel of each data joint (identity when the layouts agree).
        num_channels: model output channels.
        seed: base seed of the labeled draws.
        rand_augment: (N ops, magnitude M) for the RandAugment copy, or None.
        mean, std: the normalisation of the crops (to undo it for RandAugment).
    """

    def __init__(
        self,
        labeled: Any,
        unlabeled: Any,
        channel_of_joint: Sequence[int],
        num_channels: int,
        seed: int = 0,
        rand_augment: tuple[int, float] | None = None,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
    ) -> None:
        if len(labeled) == 0 or len(unlabeled) == 0:
            raise ValueError("the labeled and the unlabeled sets must both be non-empty")
        self.labeled = labeled
        self.unlabeled = unlabeled
        self.channel_of_joint = tuple(int(c) for c in channel_of_joint)
        self.num_channels = int(num_channels)
        self.seed = int(seed)
        self.epoch = 0
        weight = torch.zeros(self.num_channels, 1)
        weight[list(self.channel_of_joint)] = 1.0
        self.unlabeled_weight = weight
        self.rand_augment = rand_augment
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for dataset in (self.labeled, self.unlabeled):
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.unlabeled)

    def labeled_index(self, index: int) -> int:
        """The labeled item paired with unlabeled item `index` in the current epoch."""
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        return int(rng.integers(len(self.labeled)))

    def __getitem__(self, index: int) -> dict[str, Any]:
        labeled = draw_labeled(self.labeled, self.labeled_index(index), index)
        unlabeled = self.unlabeled[index]
        sample = {
            "image": labeled["image"],
            "target": scatter_channels(labeled["target"], self.channel_of_joint,
                                       self.num_channels),
            "target_weight": scatter_channels(labeled["target_weight"], self.channel_of_joint,
                                              self.num_channels),
            "unlabeled_image": unlabeled["image"],
            "unlabeled_weight": self.unlabeled_weight.clone(),
        }
        if self.rand_augment is not None and self.rand_augment[0] > 0:
            sample["unlabeled_rand_image"] = self._rand_copy(unlabeled["image"], index)
        return sample

    def _rand_copy(self, image: torch.Tensor, index: int) -> torch.Tensor:
        """RandAugment of a normalised crop (denormalised to uint8 and back)."""
        from pose_core.data.rand_augment import rand_augment

        assert self.rand_augment is not None
        pixels = (image.numpy() * self.std + self.mean) * 255.0
        rgb = np.clip(np.rint(pixels), 0, 255).astype(np.uint8).transpose(1, 2, 0)
        rng = np.random.default_rng((self.seed, self.epoch, int(index), 1))
        augmented, _ = rand_augment(np.ascontiguousarray(rgb), self.rand_augment[0],
                                    self.rand_augment[1], rng)
        normalised = (augmented.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
                      - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(normalised))


def draw_labeled(dataset: Any, index: int, stream: int) -> dict[str, Any]:
    """Item `index` of a labeled dataset with its own augmentation draw `stream` (the pair
    index): a labeled item resampled several times in one epoch is augmented afresh each time."""
    draw = getattr(dataset, "draw", None)
    return draw(index, stream) if draw is not None else dataset[index]
