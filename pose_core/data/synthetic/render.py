"""Painting a sampled scene and reading its exact annotations back from the part-label map.

The image is BGR uint8 (H, W, 3). People and limb-like distractors are painted on a `Canvas`
together with a (H, W) uint16 part-label map (label = 1 + person * PART_STRIDE + part, 0 where no
person shows; a front distractor paints 0). Keypoints (P, J, 3) float32 (x, y, visibility) are the
projected body points in image pixels, integer values at pixel centres; visibility is 2 when the
joint's pixel shows one of its own parts, 1 when something else covers it or it is a face point on
the far side of the head, 0 outside the image (x = y = 0). Boxes (P, 4) float32 xywh and areas (P,)
come from the visible silhouette in the (H, W) int16 person-index map (-1 for none).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from pose_core.data.synthetic.body import (
    COCO_POINTS,
    CROWDPOSE_POINTS,
    FIX_ONE,
    FIX_SHIFT,
    PART_STRIDE,
    POINT_PARTS,
    Body,
    Canvas,
    draw_person,
    fix,
    pose_body,
)
from pose_core.data.synthetic.config import SyntheticSceneConfig
from pose_core.data.synthetic.sampling import sample_layout
from pose_core.data.synthetic.scene import SceneLayout, Shape, SyntheticScene, crowd_index

__all__ = ["render_background", "render_layout", "render_scene", "render_with_background"]

_TILE_SIZE = 1024


@functools.lru_cache(maxsize=2)
def _noise_tile(smooth: bool) -> np.ndarray:
    """A fixed (1024, 1024, 3) uint8 noise tile centred on 128 with a standard deviation of
    32 grey levels (deterministic, read-only). smooth=True: blurred, channels correlated (a
    background texture); False: independent pixel noise."""
    rng = np.random.default_rng(20240611 + int(smooth))
    size = _TILE_SIZE
    if smooth:
        grey = rng.normal(0.0, 1.0, (size, size)).astype(np.float32)
        colour = rng.normal(0.0, 1.0, (size, size, 3)).astype(np.float32)
        pad = 16  # blur with wrap-around so that the tile repeats without seams
        grey = cv2.GaussianBlur(np.pad(grey, pad, mode="wrap"), (0, 0), 2.5)[pad:-pad, pad:-pad]
        colour = cv2.GaussianBlur(np.pad(colour, ((pad, pad), (pad, pad), (0, 0)), mode="wrap"),
                                  (0, 0), 1.2)[pad:-pad, pad:-pad]
        tile = grey[:, :, None] / grey.std() + 0.35 * colour / colour.std()
        tile /= tile.std()
    else:
        tile = rng.normal(0.0, 1.0, (size, size, 3)).astype(np.float32)
    out = np.clip(128.0 + tile * 32.0, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def _paint_shape(image: np.ndarray, labels: np.ndarray | None, shape: Shape) -> None:
    """Paint a shape; a capsule also clears `labels` under it (an occluder) when given."""
    pts = np.asarray(shape.points, np.float64).reshape(-1, 2)
    colour, size = shape.colour, shape.size
    fixed = fix(pts)
    thick = max(int(round(size)), 1)
    if shape.kind == "rect":
        cv2.fillConvexPoly(image, fixed, colour, cv2.LINE_8, FIX_SHIFT)
    elif shape.kind == "circle":
        cv2.circle(image, (int(fixed[0, 0]), int(fixed[0, 1])), int(max(size, 1) * FIX_ONE),
                   colour, -1, cv2.LINE_8, FIX_SHIFT)
    elif shape.kind in ("line", "stripes"):
        for a, b in zip(fixed[0::2], fixed[1::2], strict=True):
            cv2.line(image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), colour, thick,
                     cv2.LINE_8, FIX_SHIFT)
    else:  # capsule: a limb-like distractor
        canvas = Canvas(image, labels if labels is not None else np.zeros((1, 1), np.uint16),
                        np.array([0.6, -0.8]))
        canvas.capsule(pts[0], pts[1], size, size * 0.75, colour, 0)


def render_background(layout: SceneLayout) -> np.ndarray:
    """(H, W, 3) uint8 background: smooth colour field, texture, clutter."""
    w, h = layout.size_wh
    grid = layout.background_grid
    if layout.mirrored:
        grid = grid[:, ::-1]
    grid = np.clip(np.ascontiguousarray(grid), 0, 255).astype(np.uint8)
    image = cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)
    if layout.texture_gain > 0:
        texture = _crop_tile(_noise_tile(True), layout.texture_offset, w, h, layout.mirrored)
        gain = layout.texture_gain
        image = cv2.addWeighted(image, 1.0, texture, gain, -128.0 * gain)
    for shape in layout.clutter:
        _paint_shape(image, None, shape)
    return image


def _crop_tile(tile: np.ndarray, offset: tuple[int, int], w: int, h: int,
               mirrored: bool) -> np.ndarray:
    """A (h, w, ...) window of a noise tile at `offset` (repeating the tile when too small)."""
    th, tw = tile.shape[:2]
    if w > tw or h > th:
        tile = np.tile(tile, (h // th + 1, w // tw + 1) + (1,) * (tile.ndim - 2))
        th, tw = tile.shape[:2]
    ox, oy = offset[0] % (tw - w + 1), offset[1] % (th - h + 1)
    crop = tile[oy:oy + h, ox:ox + w]
    return np.ascontiguousarray(crop[:, ::-1]) if mirrored else crop


def _finish(image: np.ndarray, layout: SceneLayout) -> np.ndarray:
    """Brightness / contrast, blur and noise."""
    alpha = layout.brightness * layout.contrast
    beta = 128.0 * (1.0 - layout.contrast) * layout.brightness
    if abs(alpha - 1.0) > 1e-3 or abs(beta) > 1e-3:
        image = cv2.convertScaleAbs(image, alpha=alpha, beta=beta)
    if layout.blur_sigma > 0.05:
        image = cv2.GaussianBlur(image, (0, 0), layout.blur_sigma)
    if layout.noise_sigma > 0:
        w, h = layout.size_wh
        noise = _crop_tile(_noise_tile(False), layout.noise_offset, w, h, layout.mirrored)
        gain = layout.noise_sigma / 32.0
        image = cv2.addWeighted(image, 1.0, noise, gain, -128.0 * gain)
    return image


def render_layout(layout: SceneLayout, only: Iterable[int] | None = None,
                  distractors: bool = True) -> SyntheticScene:
    """Paint a sampled layout and compute its exact annotations.

    Args:
        layout: from `sample_layout` (or `mirror_layout`, `SyntheticVideo`).
        only: indices into `layout.people` to paint (default all); used to check occlusions by
            rendering a person alone. Output arrays cover the painted people only.
        distractors: paint the limb-like distractors (front and back).

    Returns:
        The rendered scene (keypoints in the layout's keypoint set, "coco" or "crowdpose").
    """
    return render_with_background(layout, only, distractors, None)


def render_with_background(layout: SceneLayout, only: Iterable[int] | None, distractors: bool,
                           background: np.ndarray | None) -> SyntheticScene:
    """`render_layout` over a given (H, W, 3) background (None: paint the layout's own)."""
    w, h = layout.size_wh
    indices = list(range(len(layout.people))) if only is None else sorted(set(only))
    image = render_background(layout) if background is None else background.copy()
    labels = np.zeros((h, w), np.uint16)
    light = np.array([-0.55 * layout.light_sign, -0.83])
    canvas = Canvas(image, labels, light)
    if distractors:
        for shape in layout.distractors_back:
            _paint_shape(image, None, shape)
    bodies = []
    for k, i in enumerate(indices):
        person = layout.people[i]
        body = pose_body(person.pose)
        bodies.append(body)
        draw_person(canvas, body, person.style, k)
    if distractors:
        for shape in layout.distractors_front:
            _paint_shape(image, labels, shape)
    image = _finish(image, layout)

    points = COCO_POINTS if layout.keypoints == "coco" else CROWDPOSE_POINTS
    keypoints = _keypoints(bodies, points, labels)
    # label 1 + p * 16 + part  ->  p; background 0 -> -1
    person_map = ((labels.astype(np.int16) + (PART_STRIDE - 1)) >> 4) - 1
    boxes, areas = _silhouettes(bodies, person_map, keypoints)
    ids = np.array([layout.people[i].person_id for i in indices], np.int64)
    return SyntheticScene(
        image_bgr=image, keypoints=keypoints, boxes=boxes, areas=areas, ids=ids,
        mask=person_map, keypoints_name=layout.keypoints,
        crowd_index=crowd_index(keypoints, boxes),
    )


def _keypoints(bodies: list[Body], points: Sequence[int], labels: np.ndarray) -> np.ndarray:
    """(P, J, 3) float32 keypoints of the painted people, visibility read from `labels`."""
    h, w = labels.shape
    keypoints = np.zeros((len(bodies), len(points), 3), np.float32)
    for k, body in enumerate(bodies):
        for j, point in enumerate(points):
            x, y = float(body.points[point, 0]), float(body.points[point, 1])
            xi, yi = int(round(x)), int(round(y))
            if not (0 <= xi < w and 0 <= yi < h):
                continue
            value = int(labels[yi, xi])
            visible = False
            if value > 0:
                owner, part = divmod(value - 1, PART_STRIDE)
                visible = owner == k and bool(POINT_PARTS[point] >> part & 1)
            if point < 5 and body.hidden_face[point]:
                visible = False
            keypoints[k, j] = (x, y, 2.0 if visible else 1.0)
    return keypoints


def _silhouettes(bodies: list[Body], person_map: np.ndarray,
                 keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, 4) float32 xywh boxes and (P,) float32 areas of the visible silhouettes; the box of
    the labelled joints for a person with no visible pixel."""
    h, w = person_map.shape
    areas = np.zeros((len(bodies),), np.float32)
    boxes = np.zeros((len(bodies), 4), np.float32)
    for k, body in enumerate(bodies):
        # the person's pixels lie within its projected points grown by the largest radius
        pad = int(max(body.head_axes) + body.radii["thigh"] + body.radii["torso_depth"]) + 2
        x0 = max(int(body.points[:, 0].min()) - pad, 0)
        y0 = max(int(body.points[:, 1].min()) - pad, 0)
        x1 = min(int(body.points[:, 0].max()) + pad + 1, w)
        y1 = min(int(body.points[:, 1].max()) + pad + 1, h)
        count = 0
        if x1 > x0 and y1 > y0:
            roi = person_map[y0:y1, x0:x1] == k
            count = int(np.count_nonzero(roi))
        areas[k] = count
        if count > 0:
            ys = np.flatnonzero(roi.any(axis=1))
            xs = np.flatnonzero(roi.any(axis=0))
            boxes[k] = (x0 + xs[0], y0 + ys[0], xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1)
        else:
            labelled = keypoints[k, keypoints[k, :, 2] > 0, :2]
            if len(labelled):
                lx0, ly0 = labelled.min(axis=0)
                lx1, ly1 = labelled.max(axis=0)
                boxes[k] = (lx0, ly0, lx1 - lx0 + 1, ly1 - ly0 + 1)
    return boxes, areas


def render_scene(
    config: SyntheticSceneConfig, seed_or_rng: int | Sequence[int] | np.random.Generator
) -> SyntheticScene:
    """Sample and render one random scene (deterministic for a given seed)."""
    return render_layout(sample_layout(config, seed_or_rng))
