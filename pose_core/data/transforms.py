"""Bottom-up training augmentation: random affine and horizontal flip (HigherHRNet).

Mirrors, in our own code, HigherHRNet `lib/dataset/transforms/transforms.py`
(`RandomAffineTransform`, `RandomHorizontalFlip`):

- scale: base = min(h, w)/200 ('short') or max(h, w)/200 ('long') in 200-px units, times
  aug_scale ~ U[min_scale, max_scale) (0.75, 1.5 in the yamls);
- rotation ~ U[−max_rotation, max_rotation) degrees (30);
- translation: centre = (w/2, h/2) + (dx, dy), dx, dy integers drawn in
  [int(−T·scale), int(T·scale)) with T = max_translate (40) and scale the augmented one (the
  official numpy `randint` with float bounds truncates them);
- for each output size r (and the input size): scale r/(200·scale), centre → (r/2, r/2) (no
  half-pixel correction), then rotation by −rot about (r/2, r/2). Joints are mapped with the same
  matrix; images with `cv2.warpAffine` (bilinear, constant 0 border); masks go through uint8
  (·255), are warped the same way, divided by 255 and thresholded at > 0.5;
- flip with probability p, one decision for all resolutions: image and masks mirrored, joints
  permuted by the flip index and x ← r − x − 1 at each output resolution r (the input image is
  mirrored as a plain array flip; the 0.75 px inconsistency at 1/4 res is official).

Randomness comes only from the `numpy.random.Generator` passed to each call; draws happen in
the order scale, rotation, dx, dy, flip.

Frames: `image` (H, W, 3) uint8 (any channel order); `masks[i]` (H, W) float in {0, 1} at the
original image size before the affine, (r_i, r_i) after; `joints[i]` (P, J, >=3) x, y,
visibility[, sigma] in original-image pixels before, output-r_i pixels after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "AffineParams",
    "RandomAffineTransform",
    "RandomHorizontalFlip",
    "bottom_up_affine_matrix",
]


def bottom_up_affine_matrix(
    center: Sequence[float], scale: float, output_size: int, rotation: float = 0.0
) -> np.ndarray:
    """The HigherHRNet crop affine (official `_get_affine_matrix`), image -> square output.

    Args:
        center: crop centre (x, y) in image pixels.
        scale: crop side in units of 200 px.
        output_size: side r of the square output.
        rotation: degrees; the crop is rotated by −rotation about the output centre.

    Returns:
        (2, 3) float64 matrix mapping homogeneous image (x, y, 1) to output pixels.
    """
    side = 200.0 * scale
    r = float(output_size)
    mat = np.zeros((3, 3), dtype=np.float64)
    mat[0, 0] = r / side
    mat[1, 1] = r / side
    mat[0, 2] = r * (-float(center[0]) / side + 0.5)
    mat[1, 2] = r * (-float(center[1]) / side + 0.5)
    mat[2, 2] = 1.0
    if rotation != 0:
        rad = -rotation * np.pi / 180.0
        sin, cos = np.sin(rad), np.cos(rad)
        rot = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
        to_origin = np.eye(3)
        to_origin[0, 2] = -r / 2
        to_origin[1, 2] = -r / 2
        back = np.eye(3)
        back[0, 2] = r / 2
        back[1, 2] = r / 2
        mat = back @ (rot @ (to_origin @ mat))
    return mat[:2]


def _map_points(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (..., 2) points."""
    flat = points.reshape(-1, 2)
    homogeneous = np.concatenate([flat, np.ones_like(flat[:, :1])], axis=1)
    return (homogeneous @ mat.T).reshape(points.shape)


@dataclass(frozen=True)
class AffineParams:
    """One draw of the random affine.

    Attributes:
        center: crop centre (x, y) in image pixels (after translation).
        scale: crop side in 200-px units (base scale times aug_scale).
        aug_scale: the random multiplier.
        rotation: degrees.
    """

    center: tuple[float, float]
    scale: float
    aug_scale: float
    rotation: float


class RandomAffineTransform:
    """Random scale / rotation / translation, then a crop per output resolution.

    Args:
        input_size: side of the square network input (e.g. 512).
        output_sizes: sides of the square outputs (e.g. (128, 256)).
        max_rotation: degrees (30).
        min_scale: lower bound of the scale multiplier (0.75).
        max_scale: upper bound of the scale multiplier (1.5 in the yamls).
        scale_type: "short" (official training) or "long".
        max_translate: translation bound T in pixels per unit of scale (40).
        scale_aware_sigma: divide joint column 3 (sigma) by the scale multiplier.
    """

    def __init__(
        self,
        input_size: int,
        output_sizes: Sequence[int],
        max_rotation: float = 30.0,
        min_scale: float = 0.75,
        max_scale: float = 1.5,
        scale_type: str = "short",
        max_translate: float = 40.0,
        scale_aware_sigma: bool = False,
    ) -> None:
        if scale_type not in ("short", "long"):
            raise ValueError(f"scale_type must be 'short' or 'long', got {scale_type!r}")
        self.input_size = int(input_size)
        self.output_sizes = tuple(int(s) for s in output_sizes)
        self.max_rotation = float(max_rotation)
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)
        self.scale_type = scale_type
        self.max_translate = float(max_translate)
        self.scale_aware_sigma = bool(scale_aware_sigma)

    def base_scale(self, height: int, width: int) -> float:
        """Crop side in 200-px units before augmentation."""
        side = min(height, width) if self.scale_type == "short" else max(height, width)
        return side / 200.0

    def identity_params(self, height: int, width: int) -> AffineParams:
        """The un-augmented crop: image centre, base scale, no rotation."""
        return AffineParams((width / 2.0, height / 2.0), self.base_scale(height, width), 1.0, 0.0)

    def sample(self, height: int, width: int, rng: np.random.Generator) -> AffineParams:
        """Draw scale, rotation, dx, dy (in this order) from `rng`."""
        aug_scale = rng.random() * (self.max_scale - self.min_scale) + self.min_scale
        scale = self.base_scale(height, width) * aug_scale
        rotation = (rng.random() * 2 - 1) * self.max_rotation
        cx, cy = width / 2.0, height / 2.0
        if self.max_translate > 0:
            low, high = int(-self.max_translate * scale), int(self.max_translate * scale)
            cx += int(rng.integers(low, high))
            cy += int(rng.integers(low, high))
        return AffineParams((cx, cy), scale, aug_scale, rotation)

    def apply(
        self,
        image: np.ndarray,
        masks: Sequence[np.ndarray],
        joints: Sequence[np.ndarray],
        params: AffineParams,
    ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Warp image, masks and joints with given parameters.

        Returns:
            image (input, input, C) same dtype; masks list of (r, r) float32 {0, 1};
            joints list of (P, J, >=3) float64 in output pixels (copies).
        """
        if not (len(masks) == len(joints) == len(self.output_sizes)):
            raise ValueError("masks and joints need one entry per output size")
        out_masks: list[np.ndarray] = []
        out_joints: list[np.ndarray] = []
        for size, mask, person_joints in zip(self.output_sizes, masks, joints, strict=True):
            mat = bottom_up_affine_matrix(params.center, params.scale, size, params.rotation)
            mask_u8 = (np.asarray(mask) * 255).astype(np.uint8)
            warped = cv2.warpAffine(mask_u8, mat, (size, size)) / 255.0
            out_masks.append((warped > 0.5).astype(np.float32))
            moved = np.array(person_joints, dtype=np.float64, copy=True)
            if moved.size:
                moved[..., 0:2] = _map_points(moved[..., 0:2], mat)
                if self.scale_aware_sigma and moved.shape[-1] > 3:
                    moved[..., 3] = moved[..., 3] / params.aug_scale
            out_joints.append(moved)
        mat_input = bottom_up_affine_matrix(
            params.center, params.scale, self.input_size, params.rotation
        )
        out_image = cv2.warpAffine(image, mat_input, (self.input_size, self.input_size))
        return out_image, out_masks, out_joints

    def __call__(
        self,
        image: np.ndarray,
        masks: Sequence[np.ndarray],
        joints: Sequence[np.ndarray],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Draw parameters from `rng` and apply them (see `apply`)."""
        params = self.sample(image.shape[0], image.shape[1], rng)
        return self.apply(image, masks, joints, params)


class RandomHorizontalFlip:
    """Mirror image, masks and joints with probability `prob` (one decision for all sizes).

    Args:
        flip_index: joint that each joint becomes after mirroring (`KeypointSpec.flip_index`).
        output_sizes: sides r of the outputs the joints/masks are in.
        prob: flip probability (0.5).
    """

    def __init__(self, flip_index: Sequence[int], output_sizes: Sequence[int], prob: float = 0.5):
        self.flip_index = np.asarray(flip_index, dtype=np.int64)
        self.output_sizes = tuple(int(s) for s in output_sizes)
        self.prob = float(prob)

    def flip(
        self, image: np.ndarray, masks: Sequence[np.ndarray], joints: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Mirror unconditionally."""
        out_image = np.ascontiguousarray(image[:, ::-1])
        out_masks = [np.ascontiguousarray(m[:, ::-1]) for m in masks]
        out_joints = []
        for size, person_joints in zip(self.output_sizes, joints, strict=True):
            moved = np.array(person_joints, dtype=np.float64, copy=True)
            if moved.size:
                moved = moved[:, self.flip_index]
                moved[:, :, 0] = size - moved[:, :, 0] - 1
            out_joints.append(moved)
        return out_image, out_masks, out_joints

    def __call__(
        self,
        image: np.ndarray,
        masks: Sequence[np.ndarray],
        joints: Sequence[np.ndarray],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """Flip when `rng.random() < prob`, else return copies of the inputs as lists."""
        if rng.random() < self.prob:
            return self.flip(image, masks, joints)
        return image, list(masks), [np.asarray(j, dtype=np.float64) for j in joints]
