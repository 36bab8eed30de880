"""Bottom-up (HigherHRNet) training samples: whole image, heatmaps per resolution, masks, AE tags.

Mirrors HigherHRNet `lib/dataset/COCOKeypoints.py` / `CrowdPoseKeypoints.py` `__getitem__` with its
transforms and target generators, in our own code:

1. read the image with OpenCV (colour, EXIF orientation ignored), convert BGR → RGB;
2. loss mask from all annotations (`crowd_loss_mask`), then keep people with
   `iscrowd == 0 or num_keypoints > 0` as joints (P, J, 3);
3. augmentation (`RandomAffineTransform`, `RandomHorizontalFlip`) or, with augmentation off,
   the un-augmented centre crop (base scale, no rotation, no flip);
4. per output resolution: `HeatmapGenerator` targets, masks, and AE joint indices at the first
   resolution;
5. image /255, ImageNet mean/std normalisation, CHW.

Randomness: each sample draws from `numpy.random.default_rng((seed, epoch, index))`, so a sample
depends only on (seed, epoch, index): identical for any number of DataLoader workers and after a
resume. Call `set_epoch(epoch)` before each epoch (with non-persistent workers, the default, the
workers see the new epoch).

Sample dict:
- `image` (3, S, S) float32 tensor, normalised RGB (S = input_size);
- `heatmaps` list of (J, r, r) float32 tensors, one per output size r;
- `masks` list of (r, r) float32 tensors (1 where the loss counts);
- `joints` (max_people, J, 2) int64 tensor: AE (flat index, flag) at the first output size;
- `image_id` int.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from pose_core.codecs.associative_embedding import encode_joint_indices
from pose_core.codecs.heatmap import HeatmapGenerator
from pose_core.data.coco import ImageRecord, crowd_loss_mask, records_joints
from pose_core.data.transforms import RandomAffineTransform, RandomHorizontalFlip
from pose_core.keypoint_specs import KeypointSpec

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "BottomUpDataset", "normalize_image", "read_image_rgb"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_image_rgb(path: Any) -> np.ndarray:
    """Read an image as the official datasets do: colour, EXIF ignored, RGB (H, W, 3) uint8."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise FileNotFoundError(f"cannot read image file {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def normalize_image(
    image_rgb: np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 tensor: /255, then (x − mean) / std."""
    image = np.asarray(image_rgb, dtype=np.float32) / np.float32(255.0)
    image = (image - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


class BottomUpDataset(Dataset):
    """HigherHRNet training samples from loaded annotation records.

    Args:
        records: images with annotations (`pose_core.data.coco.load_coco_keypoints`).
        spec: keypoint layout (flip index, J).
        input_size: side of the square network input (512; 256 for the small models).
        output_sizes: output sides, first = the AE resolution (e.g. (128, 256) or (64, 128)).
        sigma: heatmap sigma in output pixels at every resolution (2).
        max_people: AE person slots (30).
        augment: random affine + flip when True; the centre crop otherwise.
        seed: base seed of the per-sample generators.
        max_rotation, min_scale, max_scale, scale_type, max_translate: affine parameters.
        flip_prob: flip probability.
        mean, std: RGB normalisation (0-1 scale).
        drop_images_without_people: skip images with no annotation at all (the official
            training set does this).
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        spec: KeypointSpec,
        *,
        input_size: int = 512,
        output_sizes: Sequence[int] = (128, 256),
        sigma: float = 2.0,
        max_people: int = 30,
        augment: bool = True,
        seed: int = 0,
        max_rotation: float = 30.0,
        min_scale: float = 0.75,
        max_scale: float = 1.5,
        scale_type: str = "short",
        max_translate: float = 40.0,
        flip_prob: float = 0.5,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        drop_images_without_people: bool = True,
    ) -> None:
        if not output_sizes:
            raise ValueError("output_sizes must name at least one resolution")
        self.records = [r for r in records if r.annotations or not drop_images_without_people]
        self.spec = spec
        self.input_size = int(input_size)
        self.output_sizes = tuple(int(s) for s in output_sizes)
        self.max_people = int(max_people)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.epoch = 0
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.affine = RandomAffineTransform(
            self.input_size,
            self.output_sizes,
            max_rotation=max_rotation,
            min_scale=min_scale,
            max_scale=max_scale,
            scale_type=scale_type,
            max_translate=max_translate,
        )
        self.flip = RandomHorizontalFlip(spec.flip_index, self.output_sizes, flip_prob)
        self.heatmap_generators = tuple(
            HeatmapGenerator(size, spec.num_keypoints, sigma) for size in self.output_sizes
        )

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of an epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def rng_for(self, index: int, stream: int | None = None) -> np.random.Generator:
        """The generator of sample `index` in the current epoch; `stream` selects another,
        independent draw of the same sample (see `draw`)."""
        key = (self.seed, self.epoch, int(index))
        return np.random.default_rng(key if stream is None else (*key, 1 + int(stream)))

    def record_joints(self, record: ImageRecord) -> np.ndarray:
        """(P, J, 3) joints of the trained people in image pixels (`records_joints`); a method
        with extra points (e.g. a person centre) appends them here."""
        return records_joints(record, self.spec.num_keypoints)

    def augmented(
        self, index: int, stream: int | None = None
    ) -> tuple[ImageRecord, np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Steps 1-3: the record, the warped RGB image, and per output size the mask and the
        joints (P, J, 3) in that output's pixels."""
        record = self.records[index]
        image = read_image_rgb(record.path)
        if image.shape[:2] != (record.height, record.width):
            raise ValueError(
                f"{record.path}: image is {image.shape[1]}x{image.shape[0]}, the annotation "
                f"says width {record.width}, height {record.height}"
            )
        mask = crowd_loss_mask(record)
        joints = self.record_joints(record)
        masks = [mask for _ in self.output_sizes]
        joints_list = [joints for _ in self.output_sizes]
        if self.augment:
            rng = self.rng_for(index, stream)
            image, masks, joints_list = self.affine(image, masks, joints_list, rng)
            image, masks, joints_list = self.flip(image, masks, joints_list, rng)
        else:
            params = self.affine.identity_params(record.height, record.width)
            image, masks, joints_list = self.affine.apply(image, masks, joints_list, params)
        return record, image, masks, joints_list

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.sample(*self.augmented(index))

    def draw(self, index: int, stream: int) -> dict[str, Any]:
        """Sample `index` with augmentation stream `stream`: an item resampled several times in
        one epoch (the labeled half of semi-supervised batches) gets a fresh augmentation on
        every use, as the paper's data loader gives it."""
        return self.sample(*self.augmented(index, stream))

    def sample(
        self,
        record: ImageRecord,
        image: np.ndarray,
        masks: list[np.ndarray],
        joints_list: list[np.ndarray],
    ) -> dict[str, Any]:
        """Steps 4-5: the sample dict of an augmented image (see the module docstring)."""
        heatmaps = [
            torch.from_numpy(gen(j.reshape(-1, self.spec.num_keypoints, 3)))
            for gen, j in zip(self.heatmap_generators, joints_list, strict=True)
        ]
        indices = encode_joint_indices(
            joints_list[0].reshape(-1, self.spec.num_keypoints, 3),
            self.output_sizes[0],
            self.max_people,
        )
        return {
            "image": normalize_image(image, self.mean, self.std),
            "heatmaps": heatmaps,
            "masks": [torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32)) for m in masks],
            "joints": torch.from_numpy(indices),
            "image_id": int(record.image_id),
        }
