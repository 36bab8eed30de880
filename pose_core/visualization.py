"""Drawing poses on images (OpenCV), a pure function: the input image is never modified.

Coordinates are image pixels (x, y) of `Poses`; colours are BGR.
"""

from __future__ import annotations

import cv2
import numpy as np

from pose_core.keypoint_specs import KeypointSpec
from pose_core.structures import Poses

__all__ = ["DRAW_PERSON_SCORE", "contact_sheet", "draw_poses", "person_color"]

# people scoring below this are not drawn by default: the official parser also returns the
# low-score fragments it finds in the background (COCO AP wants them, a viewer does not); 0.25 is
# the node's `person_min_score`. A model may draw at its own cut (`ModelInfo.draw_person_score`).
DRAW_PERSON_SCORE = 0.25

# colour keys of people without a track id start here (tracked ids count up from 0)
UNTRACKED_COLOUR_OFFSET = 1000

_PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 56, 56), (56, 255, 56), (56, 56, 255), (255, 178, 29), (207, 210, 49),
    (72, 249, 10), (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187),
    (44, 153, 168), (0, 194, 255), (52, 69, 147), (100, 115, 255), (0, 24, 236),
    (132, 56, 255), (82, 0, 133), (203, 56, 255), (255, 149, 200), (255, 55, 199),
)


def person_color(index: int) -> tuple[int, int, int]:
    """A stable BGR colour per person index."""
    return _PALETTE[index % len(_PALETTE)]


def draw_poses(
    image_bgr: np.ndarray,
    poses: Poses,
    spec: KeypointSpec,
    *,
    min_score: float = 0.0,
    min_person_score: float = DRAW_PERSON_SCORE,
    radius: int = 3,
    thickness: int = 2,
    draw_scores: bool = False,
) -> np.ndarray:
    """Skeletons of the people scoring at least `min_person_score` on a copy of the image.

    Args:
        image_bgr: (H, W, 3) uint8 BGR.
        poses: keypoints in this image's pixels.
        spec: layout (skeleton) of the keypoints.
        min_score: joints with a value not above it are not drawn.
        min_person_score: people with a lower score are not drawn (0: everyone; people already
            filtered, e.g. by the node's `person_min_score`, can pass 0). A model's own cut:
            `PoseEstimator.info.draw_person_score` (higher for the shipped synthetic model).
        radius: joint circle radius (px).
        thickness: limb line width (px).
        draw_scores: write each person's score next to its first drawn joint.

    Returns:
        The annotated copy, (H, W, 3) uint8.
    """
    if poses.num_keypoints != spec.num_keypoints and len(poses):
        raise ValueError(
            f"poses have {poses.num_keypoints} joints, spec {spec.name} has {spec.num_keypoints}"
        )
    canvas = np.ascontiguousarray(image_bgr).copy()
    height, width = canvas.shape[:2]
    limit = 4 * max(height, width)
    for index, person in enumerate(poses.keypoints):
        if poses.scores[index] < np.float32(min_person_score):  # as Poses.with_min_score
            continue
        # tracked people keep their colour from frame to frame; people without an id (-1)
        # get one each by their place in the list
        track_id = -1 if poses.ids is None else int(poses.ids[index])
        color = person_color(track_id if track_id >= 0 else UNTRACKED_COLOUR_OFFSET + index)
        ok = (person[:, 2] > min_score) & np.isfinite(person[:, :2]).all(axis=1)
        ok &= (np.abs(person[:, :2]) < limit).all(axis=1)
        points = [(int(round(float(x))), int(round(float(y)))) for x, y in person[:, :2]]
        for a, b in spec.skeleton:
            if ok[a] and ok[b]:
                cv2.line(canvas, points[a], points[b], color, thickness, cv2.LINE_AA)
        for j in np.nonzero(ok)[0]:
            cv2.circle(canvas, points[j], radius, color, -1, cv2.LINE_AA)
        if draw_scores and ok.any():
            first = points[int(np.nonzero(ok)[0][0])]
            cv2.putText(canvas, f"{poses.scores[index]:.2f}", (first[0] + 4, first[1] - 4),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1, cv2.LINE_AA)
    return canvas


def contact_sheet(images: list[np.ndarray], columns: int = 4, tile_width: int = 320) -> np.ndarray:
    """Images side by side in rows of `columns`, each resized to `tile_width` (BGR uint8)."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    tiles = []
    for image in images:
        height = int(round(image.shape[0] * tile_width / image.shape[1]))
        tiles.append(cv2.resize(image, (tile_width, height), interpolation=cv2.INTER_AREA))
    tile_height = max(t.shape[0] for t in tiles)
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((rows * tile_height, columns * tile_width, 3), 255, np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        y, x = row * tile_height, column * tile_width
        sheet[y:y + tile.shape[0], x:x + tile_width] = tile
    return sheet
