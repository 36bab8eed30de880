"""What a scene is: the sampled description (`SceneLayout`) and the rendered result
(`SyntheticScene`), the crowd index, and the mirrored layout.

Frames and shapes: image points are pixels (x, y), integer values at pixel centres, so a
horizontal flip maps x to W - 1 - x. `SyntheticScene` holds the BGR uint8 image (H, W, 3),
keypoints (P, J, 3) float32 (x, y, visibility), boxes (P, 4) float32 xywh, areas (P,) float32,
ids (P,) int64 and the person-index mask (H, W) int16 (-1 for none). Angles of a `PersonPose`
are degrees, its lengths fractions of the standing height.

The crowd index is CrowdPose's (Li et al., "CrowdPose: Efficient Crowded Scenes Pose Estimation
and A New Benchmark", CVPR 2019): `CI = 1/n * sum_i N_b(i) / N_a(i)`, with N_a(i) the number of
labelled joints of person i inside its own box and N_b(i) the number of labelled joints of
other people inside that box (people with N_a = 0 are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from pose_core.keypoint_specs import KeypointSpec, get_keypoint_spec

__all__ = [
    "PersonPose",
    "PersonSpec",
    "PersonStyle",
    "SceneLayout",
    "Shape",
    "SyntheticScene",
    "crowd_index",
    "mirror_layout",
]


@dataclass(frozen=True)
class PersonStyle:
    """Colours (BGR) and clothing of one person."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    shirt: tuple[float, float, float]
    pants: tuple[float, float, float]
    shoes: tuple[float, float, float]
    long_sleeves: bool
    long_pants: bool
    stripes: int  # 0 = plain shirt
    stripe_colour: tuple[float, float, float]
    long_hair: bool
    skirt: bool


@dataclass(frozen=True)
class PersonPose:
    """Shape and pose of one person; angles in degrees, lengths in fractions of height.

    Per-side tuples are (left, right) of the person.
    """

    center_xy: tuple[float, float]  # pelvis, image pixels
    height_px: float
    yaw: float  # 0 = facing the camera, +90 = facing image right, 180 = back
    head_yaw: float  # relative to the body
    roll: float  # image-plane lean (degrees, clockwise positive in image coordinates)
    pitch: float  # forward bend of the upper body
    shoulder_flexion: tuple[float, float]
    shoulder_abduction: tuple[float, float]
    elbow_flexion: tuple[float, float]
    hip_flexion: tuple[float, float]
    hip_abduction: tuple[float, float]
    knee_flexion: tuple[float, float]
    proportions: tuple[float, ...]  # 8 scale factors of body.SEGMENTS
    girth: float


@dataclass(frozen=True)
class PersonSpec:
    """One person of a layout: pose, clothing and persistent id."""

    pose: PersonPose
    style: PersonStyle
    person_id: int


@dataclass(frozen=True)
class Shape:
    """A background clutter shape or a distractor.

    `points` is a flat tuple of image points (x0, y0, x1, y1, ...): rect = 4 corners,
    circle = centre, line / capsule = 2 end points, stripes = 2 end points per stripe; `size`
    is a radius (circle, capsule) or a line thickness. All geometry is in the points, so
    mirroring a shape is mirroring its points.
    """

    kind: str
    points: tuple[float, ...]
    size: float
    colour: tuple[float, float, float]


@dataclass(frozen=True)
class SceneLayout:
    """Everything random about a scene; `render_layout` turns it into pixels deterministically.

    People are listed back to front (painting order).
    """

    size_wh: tuple[int, int]
    keypoints: str
    people: tuple[PersonSpec, ...]
    background_grid: np.ndarray = field(repr=False)  # (gh, gw, 3) float32 colours
    texture_gain: float = 0.0
    texture_offset: tuple[int, int] = (0, 0)
    clutter: tuple[Shape, ...] = ()
    distractors_back: tuple[Shape, ...] = ()
    distractors_front: tuple[Shape, ...] = ()
    light_sign: float = 1.0  # light from the upper left (+1) or upper right (-1)
    brightness: float = 1.0
    contrast: float = 1.0
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    noise_offset: tuple[int, int] = (0, 0)
    mirrored: bool = False


@dataclass(frozen=True)
class SyntheticScene:
    """A rendered scene with exact ground truth (see the module docstring for frames).

    Attributes:
        image_bgr: (H, W, 3) uint8.
        keypoints: (P, J, 3) float32 x, y, visibility (0 outside, 1 hidden, 2 visible).
        boxes: (P, 4) float32 xywh around the visible silhouette.
        areas: (P,) float32 visible silhouette pixel counts.
        ids: (P,) int64 person ids (persistent across the frames of a SyntheticVideo).
        mask: (H, W) int16 person index seen at each pixel, -1 where none.
        keypoints_name: "coco" or "crowdpose".
        crowd_index: CrowdPose crowd index of the image.
    """

    image_bgr: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    ids: np.ndarray
    mask: np.ndarray
    keypoints_name: str
    crowd_index: float

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def spec(self) -> KeypointSpec:
        return get_keypoint_spec(self.keypoints_name)


def crowd_index(keypoints: np.ndarray, boxes: np.ndarray) -> float:
    """CrowdPose crowd index of one image (definition in the module docstring).

    Args:
        keypoints: (P, J, 3) x, y, visibility; labelled joints have visibility > 0.
        boxes: (P, 4) xywh.
    """
    total, counted = 0.0, 0
    labelled = keypoints[:, :, 2] > 0
    for i, (x, y, bw, bh) in enumerate(np.asarray(boxes, np.float64)):
        inside = ((keypoints[:, :, 0] >= x) & (keypoints[:, :, 0] <= x + bw)
                  & (keypoints[:, :, 1] >= y) & (keypoints[:, :, 1] <= y + bh) & labelled)
        own = int(inside[i].sum())
        if own == 0:
            continue
        others = int(inside.sum()) - own
        total += others / own
        counted += 1
    return total / counted if counted else 0.0


def _swap(pair: tuple[float, float]) -> tuple[float, float]:
    return (pair[1], pair[0])


def mirror_layout(layout: SceneLayout) -> SceneLayout:
    """The horizontally mirrored scene: rendering it gives the flipped image, whose keypoints
    are the flipped keypoints (x -> W - 1 - x) with left and right swapped (`flip_index`)."""
    w = layout.size_wh[0]

    def mirror_shape(shape: Shape) -> Shape:
        return replace(shape, points=tuple(
            (w - 1 - v) if k % 2 == 0 else v for k, v in enumerate(shape.points)))

    people = []
    for person in layout.people:
        pose = person.pose
        proportions = list(pose.proportions)
        people.append(replace(person, pose=replace(
            pose, center_xy=(w - 1 - pose.center_xy[0], pose.center_xy[1]), yaw=-pose.yaw,
            head_yaw=-pose.head_yaw, roll=-pose.roll,
            shoulder_flexion=_swap(pose.shoulder_flexion),
            shoulder_abduction=_swap(pose.shoulder_abduction),
            elbow_flexion=_swap(pose.elbow_flexion), hip_flexion=_swap(pose.hip_flexion),
            hip_abduction=_swap(pose.hip_abduction), knee_flexion=_swap(pose.knee_flexion),
            proportions=tuple(proportions))))
    return replace(
        layout, people=tuple(people), clutter=tuple(mirror_shape(s) for s in layout.clutter),
        distractors_back=tuple(mirror_shape(s) for s in layout.distractors_back),
        distractors_front=tuple(mirror_shape(s) for s in layout.distractors_front),
        light_sign=-layout.light_sign, mirrored=not layout.mirrored,
    )

