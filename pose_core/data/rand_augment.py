"""RandAugment (Cubuk et al., 2020) as the semi-supervised study uses it for hard views.

Official `xierc/Semi_Human_Pose` `lib/utils/rand_augment.py` (adapted there from
rpmcruz/autoaugment) with `CONS_RAND_AUG`: N ops drawn with replacement from the 11 photometric
and cutout ops below, each at magnitude M on a 0..30 scale, value = M / 30 * (max - min) + min.
No geometric op, so the RandAugment copy shares the easy view's geometry and the teacher
heatmaps need no extra warp. Written from the spec; the per-op value ranges are those of the
common RandAugment op list (no parity fixture exists for this part).

Images: (H, W, 3) uint8 RGB; every op returns a new array of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

__all__ = ["RAND_AUGMENT_OPS", "rand_augment"]

MAX_MAGNITUDE = 30.0
CUTOUT_FILL = (125, 123, 114)


def _blend(image: np.ndarray, degenerate: np.ndarray, factor: float) -> np.ndarray:
    out = degenerate.astype(np.float32) + factor * (image.astype(np.float32)
                                                    - degenerate.astype(np.float32))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _auto_contrast(image: np.ndarray, _: float, __: np.random.Generator) -> np.ndarray:
    low = image.min(axis=(0, 1), keepdims=True).astype(np.float32)
    high = image.max(axis=(0, 1), keepdims=True).astype(np.float32)
    scale = np.where(high > low, 255.0 / np.maximum(high - low, 1e-6), 1.0)
    shifted = np.where(high > low, (image - low) * scale, image)
    return np.clip(np.rint(shifted), 0, 255).astype(np.uint8)


def _equalize(image: np.ndarray, _: float, __: np.random.Generator) -> np.ndarray:
    return np.stack([cv2.equalizeHist(np.ascontiguousarray(image[..., c])) for c in range(3)], -1)


def _invert(image: np.ndarray, _: float, __: np.random.Generator) -> np.ndarray:
    return 255 - image


def _posterize(image: np.ndarray, bits: float, _: np.random.Generator) -> np.ndarray:
    shift = 8 - int(bits)
    return ((image >> shift) << shift).astype(np.uint8)


def _solarize(image: np.ndarray, threshold: float, _: np.random.Generator) -> np.ndarray:
    return np.where(image >= threshold, 255 - image, image).astype(np.uint8)


def _solarize_add(image: np.ndarray, addition: float, _: np.random.Generator) -> np.ndarray:
    added = np.clip(image.astype(np.int32) + int(addition), 0, 255).astype(np.uint8)
    return np.where(image < 128, added, image)


def _color(image: np.ndarray, factor: float, _: np.random.Generator) -> np.ndarray:
    gray = np.repeat(_gray(image)[..., None], 3, axis=2)
    return _blend(image, gray, factor)


def _contrast(image: np.ndarray, factor: float, _: np.random.Generator) -> np.ndarray:
    mean = float(_gray(image).mean())
    return _blend(image, np.full_like(image, int(mean + 0.5)), factor)


def _brightness(image: np.ndarray, factor: float, _: np.random.Generator) -> np.ndarray:
    return _blend(image, np.zeros_like(image), factor)


def _sharpness(image: np.ndarray, factor: float, _: np.random.Generator) -> np.ndarray:
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0
    smooth = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    smooth[0], smooth[-1], smooth[:, 0], smooth[:, -1] = (image[0], image[-1], image[:, 0],
                                                          image[:, -1])
    return _blend(image, smooth, factor)


def _cutout_abs(image: np.ndarray, size: float, rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    height, width = image.shape[:2]
    cx, cy = rng.uniform(0, width), rng.uniform(0, height)
    half = size / 2.0
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    x1, y1 = int(min(width, cx + half)), int(min(height, cy + half))
    out[y0:y1, x0:x1] = CUTOUT_FILL
    return out


Op = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]
# name -> (op, min value, max value)
RAND_AUGMENT_OPS: dict[str, tuple[Op, float, float]] = {
    "AutoContrast": (_auto_contrast, 0.0, 1.0),
    "Equalize": (_equalize, 0.0, 1.0),
    "Invert": (_invert, 0.0, 1.0),
    "Posterize": (_posterize, 4.0, 8.0),
    "Solarize": (_solarize, 0.0, 256.0),
    "SolarizeAdd": (_solarize_add, 0.0, 110.0),
    "Color": (_color, 0.1, 1.9),
    "Contrast": (_contrast, 0.1, 1.9),
    "Brightness": (_brightness, 0.1, 1.9),
    "Sharpness": (_sharpness, 0.1, 1.9),
    "CutoutAbs": (_cutout_abs, 0.0, 40.0),
}


def rand_augment(
    image: np.ndarray, num_ops: int, magnitude: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """Apply `num_ops` ops drawn uniformly with replacement, each at `magnitude` (0..30).

    Returns:
        the augmented (H, W, 3) uint8 image and the names of the ops applied, in order.
    """
    if not 0 <= magnitude <= MAX_MAGNITUDE:
        raise ValueError(f"magnitude must be in [0, {MAX_MAGNITUDE}], got {magnitude}")
    names = list(RAND_AUGMENT_OPS)
    chosen = [names[int(i)] for i in rng.integers(len(names), size=int(num_ops))]
    for name in chosen:
        op, low, high = RAND_AUGMENT_OPS[name]
        image = op(image, magnitude / MAX_MAGNITUDE * (high - low) + low, rng)
    return image, chosen
