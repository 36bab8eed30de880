"""A synthetic depth camera aligned with the synthetic colour camera, with exact 3D truth.

The colour camera is an ideal pinhole (the one `pose_ros.synthetic_camera` announces in its
CameraInfo: fx = fy = `focal_px`, principal point at the image centre). Every person is
`PERSON_HEIGHT_M` tall, so a person drawn `height_px` tall stands at z = focal_px x 1.7 /
height_px; its silhouette pixels (the scene's `mask`) get that depth. Behind the people, rows
below the horizon see a floor (z = focal_px x camera height / (v - horizon)), the rest a wall at
`wall_m`. Ground-truth 3D keypoints are the scene's 2D keypoints back-projected at their
person's depth. Optional sensor effects: Gaussian noise growing with z^2 (structured-light and
stereo cameras) and holes (pixels without a reading).

Frames: depth (H, W) float32 metres in the colour camera's optical frame (x right, y down,
z forward), NaN for a hole; positions (P, J, 3) metres, in the scene's person order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_core.data.synthetic.scene import SceneLayout, SyntheticScene

__all__ = ["PERSON_HEIGHT_M", "DepthFrame", "pinhole_matrix", "render_depth"]

PERSON_HEIGHT_M = 1.7


@dataclass(frozen=True)
class DepthFrame:
    """An aligned depth image and the truth behind it.

    Attributes:
        depth: (H, W) float32 metres, NaN where the sensor has no reading.
        camera_matrix: (3, 3) K of the colour (= depth) camera.
        positions: (P, J, 3) float64 ground-truth 3D keypoints (metres).
        person_depth: (P,) float64 z of each person.
    """

    depth: np.ndarray
    camera_matrix: np.ndarray
    positions: np.ndarray
    person_depth: np.ndarray

    def millimetres(self) -> np.ndarray:
        """The depth as a `16UC1` image: uint16 millimetres, 0 = no reading."""
        mm = np.nan_to_num(self.depth * 1000.0, nan=0.0)
        return np.clip(np.round(mm), 0, 65535).astype(np.uint16)


def pinhole_matrix(width: int, height: int, focal_px: float | None = None) -> np.ndarray:
    """K of an ideal pinhole: fx = fy = focal_px (default: the width), centre of the image."""
    f = float(focal_px or width)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def render_depth(
    layout: SceneLayout,
    scene: SyntheticScene,
    focal_px: float | None = None,
    *,
    horizon_y: float | None = None,
    camera_height_m: float = 1.3,
    wall_m: float = 12.0,
    noise_m: float = 0.0,
    hole_fraction: float = 0.0,
    seed: int = 0,
) -> DepthFrame:
    """The aligned depth of a rendered scene (see the module docstring).

    Args:
        layout / scene: a layout and its rendering (`SyntheticVideo.layout(i)` / `.frame(i)`).
        focal_px: pinhole focal length (default: the image width).
        horizon_y: image row of the horizon (default: 0.4 x height).
        camera_height_m: camera height above the floor.
        wall_m: depth of the background wall (and the farthest floor).
        noise_m: noise sigma at 1 m; it grows with z^2.
        hole_fraction: share of pixels without a reading.
        seed: noise and holes generator seed.
    """
    width, height = layout.size_wh
    k = pinhole_matrix(width, height, focal_px)
    f = k[0, 0]
    ids = [spec.person_id for spec in layout.people]
    if list(scene.ids) != ids:
        raise ValueError("scene and layout list different people (render the same layout)")
    person_depth = np.array([f * PERSON_HEIGHT_M / spec.pose.height_px for spec in layout.people])
    depth = _background(width, height, f, horizon_y, camera_height_m, wall_m)
    people = scene.mask >= 0
    depth[people] = person_depth[scene.mask[people]]
    rng = np.random.default_rng(seed)
    if noise_m > 0:
        depth = depth + rng.normal(0.0, 1.0, depth.shape) * noise_m * depth**2
    if hole_fraction > 0:
        depth[rng.random(depth.shape) < hole_fraction] = np.nan
    positions = np.zeros(scene.keypoints.shape[:2] + (3,))
    for p, z in enumerate(person_depth):
        u, v = scene.keypoints[p, :, 0], scene.keypoints[p, :, 1]
        positions[p] = np.column_stack([(u - k[0, 2]) / f * z, (v - k[1, 2]) / f * z,
                                        np.full(len(u), z)])
    return DepthFrame(depth.astype(np.float32), k, positions, person_depth)


def _background(
    width: int, height: int, f: float, horizon_y: float | None, camera_height: float,
    wall: float,
) -> np.ndarray:
    horizon = 0.4 * height if horizon_y is None else float(horizon_y)
    rows = np.arange(height, dtype=np.float64)
    below = rows - horizon
    floor = np.where(below > 0, f * camera_height / np.maximum(below, 1e-9), np.inf)
    column = np.minimum(floor, wall)
    return np.repeat(column[:, None], width, axis=1)
