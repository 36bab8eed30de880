"""Data and hard views of the bottom-up (HigherHRNet) semi-supervised adaptation.

An extension that Xie et al. (ICCV 2021) do not describe (spec §3.11), built on the top-down
pieces of `pose_core.data.hard_views` / `pose_core.data.semi_supervised`:

- Label subset by **images**: the first `num_images` images, in the order of the JSON `images`
  list, that hold at least one trained person (a non-crowd annotation with a labelled joint);
  the paper's subsets count person instances, which a whole-image sample cannot split.
- Unlabeled pool: every image listed by the unlabeled file (annotations, when present, are
  ignored); the easy view is the standard bottom-up affine of `BottomUpDataset`.
- `SemiSupervisedBottomUpDataset[i]` = unlabeled image i with a labeled image drawn by
  `default_rng((seed, epoch, i))` (re-drawn each epoch, with replacement), as the top-down pairing.
- Joint Cutout on all people: instead of one argmax per channel, the candidates are the top-k
  local maxima (3x3 max-pool NMS) of each joint channel of the teacher's finest heatmaps whose
  value reaches a threshold; `num_per_person` rectangles are drawn per estimated person (the
  most peaks any channel keeps), each centred on a candidate drawn uniformly with replacement,
  with the paper's jitter N(0, 10^2) px and half-sizes in [10, 19] px (input pixels).

Frames: images (N, 3, S, S) normalised network inputs; heatmaps (N, J, h, w) at stride S / w;
peaks (x, y) in heatmap pixels of the map's argmax convention (`hard_views.argmax_joints`: the
integer cell, times the stride in input pixels); rectangles (x0, y0, x1, y1) int input pixels,
half-open, clamped to the image.

Sample keys: `image`, `heatmaps`, `masks`, `joints`, `image_id` of the labeled image (as
`BottomUpDataset`) and `unlabeled_image` (3, S, S).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from pose_core.data.hard_views import CUTOUT_HALF_SIZE_RANGE, CUTOUT_JITTER_STD, HardViewRandom
from pose_core.data.semi_supervised import draw_labeled
from pose_core.grouping.nms import local_maxima

__all__ = [
    "PeakCutout",
    "SemiSupervisedBottomUpDataset",
    "image_label_subset",
    "peak_cutout",
    "teacher_peaks",
]


def _has_trained_person(record: Any) -> bool:
    return any(not a.iscrowd and a.num_keypoints > 0 for a in record.annotations)


def image_label_subset(records: Sequence[Any], num_images: int, key: str) -> list[Any]:
    """The first `num_images` records holding a trained person (0 = all of them); raises
    ValueError naming `key` when there are fewer."""
    usable = [r for r in records if _has_trained_person(r)]
    if num_images < 0:
        raise ValueError(f"{key} must be >= 0, got {num_images}")
    if num_images > len(usable):
        raise ValueError(
            f"{key}={num_images} exceeds the {len(usable)} images with a labelled person")
    return usable[:num_images] if num_images else usable


def teacher_peaks(heatmaps: Tensor, peaks_per_joint: int, threshold: float) -> Tensor:
    """(N, J, h, w) -> (N, J, k, 3): per channel the k highest 3x3 local maxima as (x, y,
    value) in heatmap cells; entries below `threshold` get value -inf (not candidates)."""
    maps = heatmaps.detach()
    n, j, _, w = maps.shape
    k = min(int(peaks_per_joint), maps.shape[-1] * maps.shape[-2])
    kept = torch.where(local_maxima(maps, 3), maps, torch.full_like(maps, -torch.inf))
    values, index = kept.reshape(n, j, -1).topk(k, dim=2)
    xy = torch.stack([index % w, torch.div(index, w, rounding_mode="floor")], dim=3)
    values = torch.where(values >= threshold, values, torch.full_like(values, -torch.inf))
    return torch.cat([xy.to(maps.dtype), values[..., None]], dim=3)


@dataclass(frozen=True)
class PeakCutout:
    """What `peak_cutout` did: the images and, per image, the candidate peaks (Q, 2) in input
    pixels, the picked candidate per rectangle (M,), the jittered centres (M, 2) int and the
    rectangles (M, 4) int (x0, y0, x1, y1)."""

    images: Tensor
    candidates: list[Tensor]
    picks: list[Tensor]
    centres: list[Tensor]
    rectangles: list[Tensor]


def peak_cutout(
    images: Tensor,
    heatmaps: Tensor,
    num_per_person: int,
    rng: HardViewRandom,
    peaks_per_joint: int = 5,
    threshold: float = 0.1,
    channels: Sequence[int] | None = None,
    size_scale: float = 1.0,
) -> PeakCutout:
    """Joint Cutout around the teacher's peaks of all people (see the module docstring).

    Args:
        images: (N, 3, H, W) normalised images (0 = the mean colour).
        heatmaps: (N, J, h, w) teacher heatmaps (the finest resolution), stride W / w.
        num_per_person: rectangles per estimated person (the paper's 5 per crop); 0 = off.
        rng: the hard-view random streams (its torch generator draws everything here).
        peaks_per_joint: top-k peaks kept per channel.
        threshold: minimum heatmap value of a candidate peak.
        channels: joint channels searched (default: all).
        size_scale: multiplies the jitter and half-sizes (rounded, at least 1 px), as
            `hard_views.apply_joint_cutout`.
    """
    stride = images.shape[-1] / heatmaps.shape[-1]
    height, width = int(images.shape[2]), int(images.shape[3])
    selected = heatmaps if channels is None else heatmaps[:, list(channels)]
    peaks = teacher_peaks(selected, peaks_per_joint, threshold)
    out = images.clone()
    empty = torch.zeros((0, 2), dtype=torch.int32)
    result: dict[str, list[Tensor]] = {"candidates": [], "picks": [], "centres": [],
                                       "rectangles": []}
    for i in range(images.shape[0]):
        valid = torch.isfinite(peaks[i, ..., 2])
        candidates = peaks[i][valid][:, :2].to(torch.float32) * stride
        people = int(valid.sum(dim=1).max()) if valid.numel() else 0
        count = num_per_person * people
        if count == 0:
            result["candidates"].append(candidates)
            result["picks"].append(torch.zeros(0, dtype=torch.long))
            result["centres"].append(empty)
            result["rectangles"].append(torch.zeros((0, 4), dtype=torch.int32))
            continue
        picks = torch.randint(len(candidates), (count,), generator=rng.torch_generator)
        jitter = torch.randn((count, 2), generator=rng.torch_generator)
        half = torch.randint(*CUTOUT_HALF_SIZE_RANGE, (count, 2), generator=rng.torch_generator)
        if size_scale != 1.0:
            half = (half.to(torch.float32) * size_scale).round().clamp_min(1).to(torch.int64)
        # truncation toward zero, as the top-down cutout's centres
        centres = (candidates[picks] + jitter * CUTOUT_JITTER_STD * size_scale).to(torch.int32)
        low = centres - half.to(torch.int32)
        high = centres + half.to(torch.int32)
        limit = torch.tensor([width, height], dtype=torch.int32)
        low = torch.minimum(low.clamp_min(0), limit)
        high = torch.minimum(high.clamp_min(0), limit)
        rectangles = torch.cat([low, high], dim=1)
        for x0, y0, x1, y1 in rectangles.tolist():
            out[i, :, y0:y1, x0:x1] = 0
        result["candidates"].append(candidates)
        result["picks"].append(picks)
        result["centres"].append(centres)
        result["rectangles"].append(rectangles)
    return PeakCutout(out, **result)


class SemiSupervisedBottomUpDataset(Dataset):
    """Pairs of (labeled image sample, unlabeled easy image), one pair per unlabeled image.

    Args:
        labeled: a `BottomUpDataset` of the labeled subset (augment on).
        unlabeled: a `BottomUpDataset` of the unlabeled pool (augment on: the easy view; its
            targets are ignored).
        seed: base seed of the labeled draws.
    """

    def __init__(self, labeled: Any, unlabeled: Any, seed: int = 0) -> None:
        if len(labeled) == 0 or len(unlabeled) == 0:
            raise ValueError("the labeled and the unlabeled sets must both be non-empty")
        self.labeled = labeled
        self.unlabeled = unlabeled
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        for dataset in (self.labeled, self.unlabeled):
            dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.unlabeled)

    def labeled_index(self, index: int) -> int:
        """The labeled image paired with unlabeled image `index` in the current epoch."""
        rng = np.random.default_rng((self.seed, self.epoch, int(index)))
        return int(rng.integers(len(self.labeled)))

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(draw_labeled(self.labeled, self.labeled_index(index), index))
        sample["unlabeled_image"] = self.unlabeled[index]["image"]
        return sample
