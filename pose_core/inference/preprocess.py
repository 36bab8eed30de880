"""Image checks and network inputs, as the official test paths build them.

- Bottom-up (HigherHRNet `lib/utils/transforms.py::resize_align_multi_scale`): the short side goes to the
  input size times the scale, the long side keeps the aspect and is zero-padded up to a multiple
  of 64; `cv2.warpAffine` with default flags (bilinear, black border); then /255 and the model's
  RGB mean/std (torchvision ToTensor + Normalize order).
- Top-down (HRNet `lib/dataset/coco.py::_box2cs`, `lib/dataset/JointsDataset.py`): box -> centre/scale at the input aspect, x1.25; the crop is the
  same warp with the centre-aligned (HRNet) or corner-aligned (DarkPose) affine.

Images enter as BGR uint8 (H, W, 3) (OpenCV order) and are converted to RGB here. Outputs are
(N, 3, h, w) float32 tensors (CPU), x to the right, y down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from pose_core.geometry import affine_matrix, box_to_center_scale, multi_scale_size

__all__ = [
    "MAX_IMAGE_SIDE",
    "MAX_INPUT_SIDE",
    "BottomUpInput",
    "check_image",
    "normalize",
    "bottom_up_input",
    "top_down_inputs",
]

# An image may be at most this many pixels on a side (a 16384 x 16384 BGR image is 768 MiB).
MAX_IMAGE_SIDE = 16384
# The network input of one bottom-up pass may be at most this long (very elongated images would
# otherwise produce huge inputs: the short side is fixed by the input size).
MAX_INPUT_SIDE = 4096


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless `image` is a non-empty BGR uint8 (H, W, 3) array.

    Large images are accepted up to `MAX_IMAGE_SIDE` per side: the official warp samples them
    directly at the network resolution (an 8000 x 8000 image costs one 512 x 512 warp).
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 BGR, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be (H, W, 3) BGR, got shape {image.shape} (convert grey / BGRA first)"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"empty image {image.shape}")
    if max(image.shape[:2]) > MAX_IMAGE_SIDE:
        raise ValueError(
            f"image {image.shape[1]}x{image.shape[0]} exceeds {MAX_IMAGE_SIDE} px per side; "
            "downscale it first"
        )


def normalize(
    images_rgb: np.ndarray, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """(N, h, w, 3) or (h, w, 3) uint8 RGB -> (N, 3, h, w) float32, /255 then (x - mean) / std."""
    array = images_rgb if images_rgb.ndim == 4 else images_rgb[None]
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float().div(255)
    mean_t = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    std_t = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    return (tensor - mean_t) / std_t


@dataclass(frozen=True)
class BottomUpInput:
    """One bottom-up pass.

    Attributes:
        tensor: (1, 3, h, w) normalised input.
        scale_factor: the pass's scale.
        center: (cx, cy) image pixels (ints, as the official code).
        scale: (sx, sy) in 200-px units.
        size_wh: (w, h) of the input.
    """

    tensor: torch.Tensor
    scale_factor: float
    center: tuple[int, int]
    scale: tuple[float, float]
    size_wh: tuple[int, int]


def bottom_up_input(
    image_rgb: np.ndarray,
    input_size: int,
    scale_factor: float,
    min_scale: float,
    mean: Sequence[float],
    std: Sequence[float],
) -> BottomUpInput:
    """Warp and normalise an RGB image for one scale pass (official resize/pad rule)."""
    height, width = image_rgb.shape[:2]
    size_wh, center, scale = multi_scale_size((width, height), input_size, scale_factor, min_scale)
    if max(size_wh) > MAX_INPUT_SIDE:
        raise ValueError(
            f"image {width}x{height} would need a {size_wh[0]}x{size_wh[1]} network input "
            f"(limit {MAX_INPUT_SIDE}); its aspect ratio is too extreme"
        )
    matrix = affine_matrix(center, scale, size_wh)
    warped = cv2.warpAffine(image_rgb, matrix, size_wh)
    return BottomUpInput(normalize(warped, mean, std), scale_factor, center, scale, size_wh)


def top_down_inputs(
    image_rgb: np.ndarray,
    boxes_xywh: np.ndarray,
    input_wh: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    corner_aligned: bool = False,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Person crops for a top-down network.

    Args:
        image_rgb: (H, W, 3) uint8 RGB.
        boxes_xywh: (B, 4) boxes in image pixels.
        input_wh: (w, h) network input.
        corner_aligned: DarkPose's affine instead of HRNet's.

    Returns:
        crops (B, 3, h, w) float32, centres (B, 2) and scales (B, 2) float32.
    """
    aspect = input_wh[0] / input_wh[1]
    centers, scales, crops = [], [], []
    for box in boxes_xywh:
        center, scale = box_to_center_scale(box, aspect)
        matrix = affine_matrix(center, scale, input_wh, corner_aligned=corner_aligned)
        crops.append(cv2.warpAffine(image_rgb, matrix, input_wh, flags=cv2.INTER_LINEAR))
        centers.append(center)
        scales.append(scale)
    return (
        normalize(np.stack(crops), mean, std),
        np.asarray(centers, np.float32).reshape(-1, 2),
        np.asarray(scales, np.float32).reshape(-1, 2),
    )
