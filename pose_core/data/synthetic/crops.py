"""Top-down crops: one person cut out of a rendered scene, joints mapped into the crop.

A crop is a BGR uint8 (h, w, 3) image of size `output_wh`; its `affine` (2, 3) maps source-image
pixels to crop pixels (x_crop = scale * x + tx, the box centre to the crop centre
((w - 1) / 2, (h - 1) / 2)); keypoints (J, 3) float32 are in crop pixels, with x = y = v = 0 for
joints that fall outside the crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pose_core.data.synthetic.scene import SyntheticScene

__all__ = ["PersonCrop", "crop_person", "top_down_crops"]


@dataclass(frozen=True)
class PersonCrop:
    """One person cut out for top-down models.

    Attributes:
        image_bgr: (h, w, 3) uint8 crop of size `output_wh`.
        keypoints: (J, 3) float32 x, y, visibility in crop pixels (0 outside the crop).
        box: (4,) float32 xywh of the person in the source image.
        affine: (2, 3) float64 matrix mapping source-image pixels to crop pixels.
        person_id: the scene's id of the person.
    """

    image_bgr: np.ndarray
    keypoints: np.ndarray
    box: np.ndarray
    affine: np.ndarray
    person_id: int


def crop_person(scene: SyntheticScene, index: int, output_wh: tuple[int, int] = (192, 256),
                padding: float = 1.25) -> PersonCrop:
    """Crop person `index` with its box grown by `padding` to the output aspect ratio."""
    out_w, out_h = output_wh
    x, y, bw, bh = (float(v) for v in scene.boxes[index])
    cx, cy = x + bw / 2, y + bh / 2
    aspect = out_w / out_h
    bw, bh = max(bw, 1.0), max(bh, 1.0)
    if bw > aspect * bh:
        bh = bw / aspect
    else:
        bw = bh * aspect
    bw, bh = bw * padding, bh * padding
    scale = out_w / bw
    affine = np.array([[scale, 0.0, (out_w - 1) / 2 - scale * cx],
                       [0.0, scale, (out_h - 1) / 2 - scale * cy]])
    image = cv2.warpAffine(scene.image_bgr, affine, (out_w, out_h), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    kps = scene.keypoints[index].copy()
    labelled = kps[:, 2] > 0
    kps[labelled, 0] = kps[labelled, 0] * scale + affine[0, 2]
    kps[labelled, 1] = kps[labelled, 1] * scale + affine[1, 2]
    outside = labelled & ((kps[:, 0] < -0.5) | (kps[:, 0] > out_w - 0.5)
                          | (kps[:, 1] < -0.5) | (kps[:, 1] > out_h - 0.5))
    kps[outside] = 0.0
    return PersonCrop(image_bgr=image, keypoints=kps.astype(np.float32),
                      box=scene.boxes[index].astype(np.float32), affine=affine,
                      person_id=int(scene.ids[index]))


def top_down_crops(scene: SyntheticScene, output_wh: tuple[int, int] = (192, 256),
                   padding: float = 1.25, min_keypoints: int = 1) -> list[PersonCrop]:
    """One crop per person with at least `min_keypoints` labelled joints."""
    return [crop_person(scene, i, output_wh, padding) for i in range(scene.num_people)
            if int((scene.keypoints[i, :, 2] > 0).sum()) >= min_keypoints]

