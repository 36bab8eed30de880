"""The synthetic world: multi-person images and video with exact keypoint ground truth.

People are articulated 3D stick-bodies on the COCO skeleton (head with eyes, ears and nose, neck,
torso, tapered shaded capsule limbs, hands and feet), posed with joint angles inside human limits,
turned by a yaw angle (front, profile, back), projected orthographically and painted back to front
(painter's algorithm over body parts and people). A per-pixel part label map is painted with the
same primitives, so occlusion is known exactly:

- visibility 2: the joint's pixel shows one of the joint's own body parts (e.g. a wrist shows the
  forearm or the hand of the same person);
- visibility 1: inside the image but hidden behind another person, a distractor, another part of
  the same person, or a face point on the far side of the head (COCO: labelled, not visible);
- visibility 0: outside the image; x = y = 0 as in COCO.

Left and right are told apart the way they are in real images: by the 3D facing (face or back of
the head, feet pointing forward, which limbs are in front). There is no fixed chirality marker
(such as "the left sleeve is red"): the generator's distribution is mirror-symmetric, so a
horizontally flipped sample with flip-index-swapped keypoints is itself a valid sample
(`mirror_layout` renders exactly that scene).

Frames and shapes:
- images are BGR uint8 (H, W, 3); sizes are passed as `(w, h)` tuples named `*_wh`;
- keypoints are (P, J, 3) float32 (x, y, visibility) in image pixels, integer values at pixel
  centres (OpenCV drawing convention, so a horizontal flip maps x to W - 1 - x);
- boxes are (P, 4) float32 COCO xywh around the visible silhouette (around the labelled joints when
  nothing is visible); areas (P,) are visible silhouette pixel counts, so OKS scales as on COCO;
- `mask` (H, W) int16 is the index of the person seen at each pixel, -1 for none.

CrowdPose (14 joints) takes the 12 limb joints from the body and derives "head" (top of the head)
and "neck" (base of the neck) from it. Its per-image crowd index is CrowdPose's (Li et al.,
"CrowdPose: Efficient Crowded Scenes Pose Estimation and A New Benchmark", CVPR 2019):
`CI = 1/n * sum_i N_b(i) / N_a(i)`, with N_a(i) the number of labelled joints of person i inside
its own box and N_b(i) the number of labelled joints of other people inside that box (people with
N_a = 0 are skipped).

Randomness: every function takes a seed or a `numpy.random.Generator`; `write_dataset` seeds
image i with `(seed, i)`, so the output is byte-identical for a given seed.
"""

from __future__ import annotations

import colorsys
import functools
import json
import math
import os
import pathlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from pose_core.keypoint_specs import KeypointSpec, get_keypoint_spec

__all__ = [
    "MAX_PEOPLE_LIMIT",
    "DIFFICULTY_LEVELS",
    "SyntheticSceneConfig",
    "SyntheticScene",
    "SceneLayout",
    "PersonCrop",
    "SyntheticVideo",
    "difficulty_config",
    "sample_layout",
    "render_layout",
    "mirror_layout",
    "render_scene",
    "crowd_index",
    "crop_person",
    "top_down_crops",
    "write_dataset",
    "write_video_dataset",
    "write_crop_dataset",
    "coco_categories",
]

MAX_PEOPLE_LIMIT = 30
DIFFICULTY_LEVELS = ("easy", "default", "hard", "crowd")

# ----------------------------------------------------------------------------------------------
# Body model constants. Lengths are fractions of the standing height (head top to soles).
# ----------------------------------------------------------------------------------------------

# Named body points: the 17 COCO joints first (same indices as COCO_17), then helpers.
_HEAD_CENTER, _NECK_BASE, _HEAD_TOP = 17, 18, 19
_L_HAND_TIP, _R_HAND_TIP, _L_HEEL, _R_HEEL, _L_TOE, _R_TOE, _PELVIS = 20, 21, 22, 23, 24, 25, 26
_NUM_POINTS = 27

# Body parts (label value = 1 + person * _PART_STRIDE + part).
_TORSO, _HEAD, _NECK = 0, 1, 2
_L_UPPER_ARM, _L_FOREARM, _L_HAND, _R_UPPER_ARM, _R_FOREARM, _R_HAND = 3, 4, 5, 6, 7, 8
_L_THIGH, _L_SHIN, _L_FOOT, _R_THIGH, _R_SHIN, _R_FOOT = 9, 10, 11, 12, 13, 14
_PART_STRIDE = 16
# The distal body point of each limb part (used to order parts at equal depth).
_PART_END = {
    _L_UPPER_ARM: 7, _L_FOREARM: 9, _L_HAND: _L_HAND_TIP, _R_UPPER_ARM: 8, _R_FOREARM: 10,
    _R_HAND: _R_HAND_TIP, _L_THIGH: 13, _L_SHIN: 15, _L_FOOT: _L_TOE, _R_THIGH: 14,
    _R_SHIN: 16, _R_FOOT: _R_TOE,
}


def _bits(*parts: int) -> int:
    return sum(1 << p for p in parts)


# For each annotated point (COCO 0..16, then head top, neck base): parts that may show it.
_POINT_PARTS: dict[int, int] = {
    0: _bits(_HEAD), 1: _bits(_HEAD), 2: _bits(_HEAD), 3: _bits(_HEAD), 4: _bits(_HEAD),
    5: _bits(_TORSO, _L_UPPER_ARM, _NECK), 6: _bits(_TORSO, _R_UPPER_ARM, _NECK),
    7: _bits(_L_UPPER_ARM, _L_FOREARM), 8: _bits(_R_UPPER_ARM, _R_FOREARM),
    9: _bits(_L_FOREARM, _L_HAND), 10: _bits(_R_FOREARM, _R_HAND),
    11: _bits(_TORSO, _L_THIGH), 12: _bits(_TORSO, _R_THIGH),
    13: _bits(_L_THIGH, _L_SHIN), 14: _bits(_R_THIGH, _R_SHIN),
    15: _bits(_L_SHIN, _L_FOOT), 16: _bits(_R_SHIN, _R_FOOT),
    _HEAD_TOP: _bits(_HEAD), _NECK_BASE: _bits(_NECK, _TORSO, _HEAD),
}
# Body point index of each output joint, per keypoint layout.
_COCO_POINTS = tuple(range(17))
_CROWDPOSE_POINTS = (5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, _HEAD_TOP, _NECK_BASE)

# Face features on the head: (point, azimuth from the nose toward the person's left (rad),
# vertical offset in head radii, lowest cos(azimuth + head yaw) at which the feature is seen).
_FACE_FEATURES = (
    (0, 0.0, 0.25, -0.25),
    (1, 0.55, -0.05, -0.05),
    (2, -0.55, -0.05, -0.05),
    (3, math.pi / 2, 0.05, -0.2),
    (4, -math.pi / 2, 0.05, -0.2),
)

_SKIN_TONES = ((200, 215, 240), (150, 180, 225), (105, 145, 200), (70, 105, 160), (45, 65, 105))
_HAIR_COLOURS = ((20, 20, 25), (25, 40, 70), (40, 70, 120), (90, 150, 200), (150, 150, 150))


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


# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSceneConfig:
    """What a random scene may contain. The defaults are the "default" difficulty level.

    Attributes:
        width, height: image size in pixels.
        keypoints: "coco" (17 joints) or "crowdpose" (14 joints).
        min_people, max_people: people per image, drawn from `people_distribution` (1..30).
        people_distribution: "uniform" over [min, max], or "geometric" (few people more often).
        overlap: 0..1 crowding level: probability that a person is placed next to another one and
            how much of a person's box another person in front may cover.
        min_height_px: smallest standing height of a person in pixels.
        max_height_frac: largest standing height as a fraction of the image height.
        truncation: how far (fraction of the person's box) a person may stick out of the image.
        max_distractors: limb-like distractor shapes per image (0..n).
        occluder_prob: probability that a distractor is painted in front of the people.
        clutter: maximum number of background clutter shapes.
        back_facing_prob: probability that a person faces away from the camera.
        brightness_range: multiplicative brightness range.
        blur_prob, max_blur_sigma: probability and strength of a Gaussian blur.
        noise_prob, max_noise_sigma: probability and strength (grey levels) of pixel noise.
    """

    width: int = 256
    height: int = 256
    keypoints: str = "coco"
    min_people: int = 1
    max_people: int = 6
    people_distribution: str = "uniform"
    overlap: float = 0.3
    min_height_px: float = 48.0
    max_height_frac: float = 0.95
    truncation: float = 0.15
    max_distractors: int = 3
    occluder_prob: float = 0.25
    clutter: int = 10
    back_facing_prob: float = 0.3
    brightness_range: tuple[float, float] = (0.75, 1.25)
    blur_prob: float = 0.25
    max_blur_sigma: float = 1.2
    noise_prob: float = 0.5
    max_noise_sigma: float = 6.0

    def __post_init__(self) -> None:
        if int(self.width) < 16 or int(self.height) < 16:
            raise ValueError(f"image size must be at least 16x16, got {self.width}x{self.height}")
        get_keypoint_spec(self.keypoints)
        if not 0 <= self.min_people <= self.max_people:
            raise ValueError(
                f"need 0 <= min_people <= max_people, got {self.min_people}, {self.max_people}"
            )
        if self.max_people > MAX_PEOPLE_LIMIT:
            raise ValueError(f"max_people must be <= {MAX_PEOPLE_LIMIT}, got {self.max_people}")
        if self.people_distribution not in ("uniform", "geometric"):
            raise ValueError(f"unknown people_distribution {self.people_distribution!r}")
        for name in ("overlap", "truncation", "occluder_prob", "back_facing_prob", "blur_prob",
                     "noise_prob"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.min_height_px <= 0 or not 0 < self.max_height_frac <= 3.0:
            raise ValueError("min_height_px must be > 0 and max_height_frac in (0, 3]")
        if self.max_distractors < 0 or self.clutter < 0:
            raise ValueError("max_distractors and clutter must be >= 0")
        low, high = self.brightness_range
        if not 0 < low <= high:
            raise ValueError(f"bad brightness_range {self.brightness_range}")
        if self.max_blur_sigma < 0 or self.max_noise_sigma < 0:
            raise ValueError("max_blur_sigma and max_noise_sigma must be >= 0")

    @property
    def size_wh(self) -> tuple[int, int]:
        return (int(self.width), int(self.height))

    @property
    def spec(self) -> KeypointSpec:
        return get_keypoint_spec(self.keypoints)


def difficulty_config(
    level: str = "default",
    width: int = 256,
    height: int = 256,
    keypoints: str = "coco",
    max_people: int | None = None,
) -> SyntheticSceneConfig:
    """A preset crowding level: "easy", "default", "hard" or "crowd".

    "easy": 1-3 large people, little overlap, plain effects. "default": 1-6 people, some
    overlap (what the shipped small model trains on). "hard": 1-12 people, small scales, more
    occluders, blur and noise. "crowd": 4-20 people clustered with heavy overlap.
    `max_people` overrides the level's maximum (min_people is clipped to it).
    """
    base = SyntheticSceneConfig(width=width, height=height, keypoints=keypoints)
    min_side = min(width, height)
    if level == "easy":
        config = replace(base, min_people=1, max_people=3, overlap=0.1,
                         min_height_px=max(0.4 * height, 24.0), max_distractors=1,
                         occluder_prob=0.0, blur_prob=0.1, noise_prob=0.2,
                         back_facing_prob=0.2, truncation=0.05)
    elif level == "default":
        config = replace(base, min_height_px=max(0.19 * min_side, 32.0))
    elif level == "hard":
        config = replace(base, max_people=12, overlap=0.5, min_height_px=32.0,
                         max_height_frac=1.2, max_distractors=6, occluder_prob=0.4, clutter=20,
                         blur_prob=0.4, max_blur_sigma=2.0, noise_prob=0.7,
                         max_noise_sigma=12.0, truncation=0.3, brightness_range=(0.55, 1.4))
    elif level == "crowd":
        config = replace(base, min_people=4, max_people=20, overlap=0.85, min_height_px=32.0,
                         max_height_frac=0.8, max_distractors=3, occluder_prob=0.3,
                         truncation=0.25)
    else:
        raise ValueError(f"unknown difficulty {level!r}; expected one of {DIFFICULTY_LEVELS}")
    if max_people is not None:
        config = replace(config, max_people=max_people,
                         min_people=min(config.min_people, max_people))
    return config


# ----------------------------------------------------------------------------------------------
# Scene description (sampled) and result (rendered)
# ----------------------------------------------------------------------------------------------


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
    proportions: tuple[float, ...]  # 8 scale factors, see _SEGMENTS
    girth: float


# Nominal segment lengths (fraction of height): torso, neck, upper arm, forearm, hand,
# thigh, shin, shoulder half-width; `proportions` multiplies each.
_SEGMENTS = (0.29, 0.045, 0.18, 0.15, 0.075, 0.245, 0.245, 0.115)


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


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------


def _as_rng(seed_or_rng: int | Sequence[int] | np.random.Generator) -> np.random.Generator:
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    return np.random.default_rng(seed_or_rng)


def _hsv_bgr(h: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (b * 255.0, g * 255.0, r * 255.0)


def _jitter(colour: Sequence[float], rng: np.random.Generator, amount: float) -> tuple[
    float, float, float
]:
    c = np.clip(np.asarray(colour, np.float64) + rng.uniform(-amount, amount, 3), 0, 255)
    return (float(c[0]), float(c[1]), float(c[2]))


def _sample_style(rng: np.random.Generator) -> PersonStyle:
    tone = rng.uniform(0, len(_SKIN_TONES) - 1)
    i = int(tone)
    t = tone - i
    skin = tuple((1 - t) * a + t * b for a, b in
                 zip(_SKIN_TONES[i], _SKIN_TONES[min(i + 1, len(_SKIN_TONES) - 1)], strict=True))
    hair = _HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))]
    shirt = _hsv_bgr(rng.uniform(), rng.uniform(0.15, 0.95), rng.uniform(0.25, 0.95))
    pants = _hsv_bgr(rng.uniform(), rng.uniform(0.0, 0.7), rng.uniform(0.1, 0.7))
    shoes = _hsv_bgr(rng.uniform(), rng.uniform(0, 0.5), rng.uniform(0.05, 0.5))
    stripe = _hsv_bgr(rng.uniform(), rng.uniform(0, 1), rng.uniform(0.3, 1.0))
    return PersonStyle(
        skin=_jitter(skin, rng, 12), hair=_jitter(hair, rng, 10), shirt=shirt, pants=pants,
        shoes=shoes, long_sleeves=bool(rng.uniform() < 0.5),
        long_pants=bool(rng.uniform() < 0.7),
        stripes=int(rng.integers(2, 6)) if rng.uniform() < 0.3 else 0, stripe_colour=stripe,
        long_hair=bool(rng.uniform() < 0.35), skirt=bool(rng.uniform() < 0.12),
    )


def _sample_yaw(rng: np.random.Generator, back_facing_prob: float) -> float:
    u = rng.uniform()
    if u < back_facing_prob:
        return float(rng.uniform(125.0, 235.0))
    if rng.uniform() < 0.6:
        return float(rng.uniform(-40.0, 40.0))
    return float(rng.uniform(40.0, 125.0) * (1 if rng.uniform() < 0.5 else -1))


def _sample_pose(rng: np.random.Generator, center_xy: tuple[float, float], height_px: float,
                 back_facing_prob: float) -> PersonPose:
    """Joint angles inside human limits: mostly standing / walking, some raised arms, sitting."""

    def arm() -> tuple[float, float, float]:
        u = rng.uniform()
        if u < 0.6:
            flex, abd = rng.uniform(-30, 40), rng.uniform(3, 30)
        elif u < 0.85:
            flex, abd = rng.uniform(30, 120), rng.uniform(0, 60)
        elif u < 0.93:
            flex, abd = rng.uniform(-10, 30), rng.uniform(60, 110)
        else:
            flex, abd = rng.uniform(120, 175), rng.uniform(0, 40)
        elbow = 145.0 * rng.uniform() ** 1.5
        return float(flex), float(abd), float(elbow)

    left_arm, right_arm = arm(), arm()
    u = rng.uniform()
    if u < 0.55:  # standing
        hip_flex = (rng.uniform(-10, 15), rng.uniform(-10, 15))
        hip_abd = (rng.uniform(0, 15), rng.uniform(0, 15))
        knee = (rng.uniform(0, 15), rng.uniform(0, 15))
    elif u < 0.85:  # walking / running
        swing = rng.uniform(10, 40)
        hip_flex = (swing, -swing * rng.uniform(0.4, 1.0))
        if rng.uniform() < 0.5:
            hip_flex = hip_flex[::-1]
        hip_abd = (rng.uniform(0, 10), rng.uniform(0, 10))
        knee = (rng.uniform(0, 30), rng.uniform(10, 70))
        if rng.uniform() < 0.5:
            knee = knee[::-1]
    else:  # sitting, kneeling, kicking
        hip_flex = (rng.uniform(20, 100), rng.uniform(-10, 100))
        if rng.uniform() < 0.5:
            hip_flex = hip_flex[::-1]
        hip_abd = (rng.uniform(0, 35), rng.uniform(0, 35))
        knee = (rng.uniform(20, 130), rng.uniform(0, 130))
    proportions = tuple(float(x) for x in rng.uniform(0.92, 1.08, len(_SEGMENTS)))
    return PersonPose(
        center_xy=(float(center_xy[0]), float(center_xy[1])), height_px=float(height_px),
        yaw=_sample_yaw(rng, back_facing_prob),
        head_yaw=float(np.clip(rng.normal(0, 18), -45, 45)),
        roll=float(np.clip(rng.normal(0, 6), -25, 25)),
        pitch=float(np.clip(abs(rng.normal(0, 10)), 0, 40)),
        shoulder_flexion=(left_arm[0], right_arm[0]),
        shoulder_abduction=(left_arm[1], right_arm[1]),
        elbow_flexion=(left_arm[2], right_arm[2]),
        hip_flexion=(float(hip_flex[0]), float(hip_flex[1])),
        hip_abduction=(float(hip_abd[0]), float(hip_abd[1])),
        knee_flexion=(float(knee[0]), float(knee[1])),
        proportions=proportions, girth=float(rng.uniform(0.8, 1.3)),
    )


def _sample_shape(rng: np.random.Generator, kind: str, w: int, h: int, scale: float,
                  colour: tuple[float, float, float]) -> Shape:
    x0, y0 = rng.uniform(-0.1 * w, 1.1 * w), rng.uniform(-0.1 * h, 1.1 * h)
    angle = rng.uniform(0, 2 * math.pi)
    length = scale * rng.uniform(0.5, 1.5)
    ux, uy = math.cos(angle), math.sin(angle)
    x1, y1 = x0 + length * ux, y0 + length * uy
    size = scale * rng.uniform(0.06, 0.25)
    if kind == "rect":
        side = length * rng.uniform(0.3, 1.0)
        points = (x0, y0, x1, y1, x1 - uy * side, y1 + ux * side, x0 - uy * side, y0 + ux * side)
    elif kind == "circle":
        points, size = (x0, y0), 2 * size
    elif kind == "stripes":
        gap = 2 * size * (1 if rng.uniform() < 0.5 else -1)
        points = tuple(v for k in range(4) for v in (x0 - uy * gap * k, y0 + ux * gap * k,
                                                     x1 - uy * gap * k, y1 + ux * gap * k))
        size *= 0.6
    elif kind == "line":
        points, size = (x0, y0, x1, y1), 0.3 * size
    else:
        points = (x0, y0, x1, y1)
    return Shape(kind, tuple(float(v) for v in points), float(size), colour)


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    return _hsv_bgr(rng.uniform(), rng.uniform(0, 0.9), rng.uniform(0.15, 1.0))


def sample_layout(
    config: SyntheticSceneConfig, seed_or_rng: int | Sequence[int] | np.random.Generator
) -> SceneLayout:
    """Draw everything random about one scene (people, background, effects)."""
    rng = _as_rng(seed_or_rng)
    w, h = config.size_wh
    if config.people_distribution == "uniform":
        num_people = int(rng.integers(config.min_people, config.max_people + 1))
    else:
        span = config.max_people - config.min_people
        num_people = config.min_people + min(int(rng.geometric(0.35)) - 1, span)

    max_height = max(config.max_height_frac * h, config.min_height_px)
    placed: list[tuple[PersonPose, tuple[float, float, float, float]]] = []
    for _ in range(num_people):
        height_px = float(math.exp(rng.uniform(math.log(config.min_height_px),
                                               math.log(max_height))))
        candidate = _sample_pose(rng, (0.0, 0.0), height_px, config.back_facing_prob)
        found = _place(rng, candidate, placed, config)
        # no room: try the same person smaller (farther away), down to min_height_px
        while found is None and candidate.height_px > config.min_height_px * 1.01:
            candidate = replace(candidate, height_px=max(0.7 * candidate.height_px,
                                                         config.min_height_px))
            found = _place(rng, candidate, placed, config)
        if found is not None:
            placed.append(found)

    # painting order: smaller (farther) people first
    order = sorted(range(len(placed)), key=lambda i: placed[i][0].height_px)
    people = tuple(PersonSpec(placed[i][0], _sample_style(rng), person_id=k)
                   for k, i in enumerate(order))

    grid_h, grid_w = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    base = np.asarray(_random_colour(rng), np.float32)
    grid = np.clip(base + rng.normal(0, 35, (grid_h, grid_w, 3)), 0, 255).astype(np.float32)
    clutter = tuple(
        _sample_shape(rng, str(rng.choice(["rect", "circle", "line", "stripes"])), w, h,
                      min(w, h) * rng.uniform(0.1, 0.6), _random_colour(rng))
        for _ in range(int(rng.integers(0, config.clutter + 1)))
    )
    distractors_back: list[Shape] = []
    distractors_front: list[Shape] = []
    ref_height = float(np.median([p.pose.height_px for p in people])) if people else 0.4 * h
    for _ in range(int(rng.integers(0, config.max_distractors + 1))):
        colour = (_jitter(_SKIN_TONES[int(rng.integers(len(_SKIN_TONES)))], rng, 15)
                  if rng.uniform() < 0.5 else _random_colour(rng))
        shape = _sample_shape(rng, "capsule", w, h, 0.35 * ref_height, colour)
        shape = replace(shape, size=float(ref_height * rng.uniform(0.02, 0.06)))
        (distractors_front if rng.uniform() < config.occluder_prob else distractors_back).append(
            shape)

    brightness = float(rng.uniform(*config.brightness_range))
    blur = float(rng.uniform(0.3, 1.0) * config.max_blur_sigma) \
        if rng.uniform() < config.blur_prob else 0.0
    noise = float(rng.uniform(0.2, 1.0) * config.max_noise_sigma) \
        if rng.uniform() < config.noise_prob else 0.0
    return SceneLayout(
        size_wh=(w, h), keypoints=config.keypoints, people=people, background_grid=grid,
        texture_gain=float(rng.uniform(0.05, 0.45)),
        texture_offset=(int(rng.integers(0, 1024)), int(rng.integers(0, 1024))),
        clutter=clutter, distractors_back=tuple(distractors_back),
        distractors_front=tuple(distractors_front),
        light_sign=1.0 if rng.uniform() < 0.5 else -1.0, brightness=brightness,
        contrast=float(rng.uniform(0.8, 1.15)), blur_sigma=blur, noise_sigma=noise,
        noise_offset=(int(rng.integers(0, 1024)), int(rng.integers(0, 1024))),
    )


def _place(rng: np.random.Generator, candidate: PersonPose,
           placed: list[tuple[PersonPose, tuple[float, float, float, float]]],
           config: SyntheticSceneConfig, attempts: int = 8,
           ) -> tuple[PersonPose, tuple[float, float, float, float]] | None:
    """Find a position for `candidate` (near another person with probability `overlap`) whose
    box does not hide too much of the people already placed; None when every attempt fails."""
    w, h = config.size_wh
    x0, y0, x1, y1 = _pose_extent(candidate)
    bw, bh = x1 - x0, y1 - y0
    margin_x, margin_y = config.truncation * bw, config.truncation * bh
    boxes = [b for _, b in placed]
    for _attempt in range(attempts):
        if placed and rng.uniform() < config.overlap:
            anchor = boxes[int(rng.integers(len(boxes)))]
            ax, ay = anchor[0] + anchor[2] / 2, anchor[1] + anchor[3] / 2
            spread = (1.1 - config.overlap) * max(anchor[2], 0.35 * anchor[3])
            cx = ax + rng.normal(0, 1) * spread
            cy = ay + rng.normal(0, 0.3) * max(anchor[3], bh)
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        # put the box centre at (cx, cy), then keep truncation within limits
        left = min(max(float(cx) - bw / 2, -margin_x), max(w - bw + margin_x, -margin_x))
        top = min(max(float(cy) - bh / 2, -margin_y), max(h - bh + margin_y, -margin_y))
        box = (left, top, bw, bh)
        if not _too_covered(box, boxes, config.overlap):
            return replace(candidate, center_xy=(left - x0, top - y0)), box
    return None


def _too_covered(box: tuple[float, float, float, float],
                 behind: list[tuple[float, float, float, float]], overlap: float) -> bool:
    """True when `box` would hide too much of any box already placed."""
    limit = 0.25 + 0.6 * overlap
    x0, y0, bw, bh = box
    for bx, by, bbw, bbh in behind:
        iw = min(x0 + bw, bx + bbw) - max(x0, bx)
        ih = min(y0 + bh, by + bbh) - max(y0, by)
        if iw > 0 and ih > 0 and iw * ih > limit * min(bw * bh, bbw * bbh):
            return True
    return False


# ----------------------------------------------------------------------------------------------
# Body geometry (forward kinematics + orthographic projection)
# ----------------------------------------------------------------------------------------------


_Vec3 = tuple[float, float, float]


def _limb_dirs(flexion: float, abduction: float, bend: float, side: float,
               bend_forward: bool) -> tuple[_Vec3, _Vec3]:
    """Unit directions (body frame: X left, Y up, Z forward) of a proximal and distal segment.

    The proximal segment hangs down, swung forward by `flexion` and sideways (outward) by
    `abduction`; the distal one is bent by `bend` toward the front (elbow) or back (knee).
    """
    f, a = math.radians(flexion), math.radians(abduction)
    ux, uy, uz = side * math.sin(a) * math.cos(f), -math.cos(a) * math.cos(f), math.sin(f)
    norm = math.sqrt(ux * ux + uy * uy + uz * uz)
    ux, uy, uz = ux / norm, uy / norm, uz / norm
    tz = 1.0 if bend_forward else -1.0
    # component of the bend target (+-Z) orthogonal to the proximal segment
    px, py, pz = -ux * uz * tz, -uy * uz * tz, tz - uz * uz * tz
    norm = math.sqrt(px * px + py * py + pz * pz)
    if norm > 1e-6:
        px, py, pz = px / norm, py / norm, pz / norm
    else:
        px, py, pz = 0.0, 1.0, 0.0
    cb, sb = math.cos(math.radians(bend)), math.sin(math.radians(bend))
    upper = (ux, uy, uz)
    lower = (ux * cb + px * sb, uy * cb + py * sb, uz * cb + pz * sb)
    return upper, lower


@dataclass(frozen=True)
class _Body:
    """A posed person in image pixels: points (_NUM_POINTS, 2), depth (_NUM_POINTS,)."""

    points: np.ndarray
    depth: np.ndarray
    radii: dict[str, float]
    head_axes: tuple[float, float]
    head_yaw: float  # radians, total
    yaw: float  # radians, body
    roll: float  # radians
    hidden_face: tuple[bool, ...]  # per COCO face point 0..4


def _pose_body(pose: PersonPose) -> _Body:
    """The posed person in image pixels (the shape is memoised per pose, then translated)."""
    local = _local_body(replace(pose, center_xy=(0.0, 0.0)))
    points = local.points + np.array(pose.center_xy)
    return replace(local, points=points)


@functools.lru_cache(maxsize=256)
def _local_body(pose: PersonPose) -> _Body:
    """`_pose_body` for a pose whose pelvis is at the origin (arrays are read-only).

    Body frame: X = the person's left, Y = up, Z = forward, in units of the standing height;
    the upper body is bent forward by `pitch` about X at the pelvis.
    """
    torso, neck, upper_arm, forearm, hand, thigh, shin, shoulder_w = (
        n * p for n, p in zip(_SEGMENTS, pose.proportions, strict=True))
    hip_w = 0.085 * pose.proportions[7] ** 0.5
    girth = pose.girth
    bend = math.radians(-pose.pitch)
    cb, sb = math.cos(bend), math.sin(bend)

    def up(x: float, y: float, z: float) -> tuple[float, float, float]:
        """Rotate an upper-body vector by the forward bend."""
        return (x, cb * y - sb * z, sb * y + cb * z)

    def add(a: Sequence[float], b: Sequence[float], k: float = 1.0) -> tuple[float, float, float]:
        return (a[0] + k * b[0], a[1] + k * b[1], a[2] + k * b[2])

    pts: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * _NUM_POINTS
    head_r = 0.062
    neck_base = up(0.0, torso, 0.0)
    pts[_NECK_BASE] = neck_base
    head = add(neck_base, up(0.0, neck + head_r, 0.01))
    pts[_HEAD_CENTER] = head
    pts[_HEAD_TOP] = add(head, up(0.0, head_r * 1.08, 0.0))
    for side, sh, el, wr, tip, hp, kn, an, heel, toe, k in (
        (1.0, 5, 7, 9, _L_HAND_TIP, 11, 13, 15, _L_HEEL, _L_TOE, 0),
        (-1.0, 6, 8, 10, _R_HAND_TIP, 12, 14, 16, _R_HEEL, _R_TOE, 1),
    ):
        pts[sh] = up(side * shoulder_w, torso - 0.025, 0.0)
        d_up, d_low = _limb_dirs(pose.shoulder_flexion[k], pose.shoulder_abduction[k],
                                 pose.elbow_flexion[k], side, bend_forward=True)
        d_up, d_low = up(*d_up), up(*d_low)
        pts[el] = add(pts[sh], d_up, upper_arm)
        pts[wr] = add(pts[el], d_low, forearm)
        pts[tip] = add(pts[wr], d_low, hand)
        pts[hp] = (side * hip_w, 0.0, 0.0)
        d_th, d_sh = _limb_dirs(pose.hip_flexion[k], pose.hip_abduction[k],
                                pose.knee_flexion[k], side, bend_forward=False)
        pts[kn] = add(pts[hp], d_th, thigh)
        pts[an] = add(pts[kn], d_sh, shin)
        pts[heel] = add(pts[an], (0.0, -0.03, -0.03))
        pts[toe] = add(pts[an], (side * 0.02, -0.04, 0.11))
    # face points on the head surface, seen according to the head yaw
    yaw = math.radians(pose.yaw)
    head_yaw = yaw + math.radians(pose.head_yaw)
    hidden = []
    for point, azimuth, dy, min_cos in _FACE_FEATURES:
        a = azimuth + head_yaw - yaw  # relative to the body frame
        pts[point] = add(head, up(0.85 * head_r * math.sin(a), -dy * head_r,
                                  0.85 * head_r * math.cos(a)))
        hidden.append(math.cos(azimuth + head_yaw) < min_cos)
    # body frame -> camera: yaw about the vertical axis, then image-plane roll, then pixels
    cy, sy = math.cos(yaw), math.sin(yaw)
    roll = math.radians(pose.roll)
    cr, sr = math.cos(roll), math.sin(roll)
    s = pose.height_px
    xy = np.empty((_NUM_POINTS, 2))
    depth = np.empty(_NUM_POINTS)
    for i, (x, y, z) in enumerate(pts):
        x_img, y_img = x * cy + z * sy, -y
        xy[i, 0] = (x_img * cr - y_img * sr) * s
        xy[i, 1] = (x_img * sr + y_img * cr) * s
        depth[i] = (-x * sy + z * cy) * s
    radii = {
        "upper_arm": 0.034 * girth * s, "forearm": 0.027 * girth * s, "hand": 0.026 * s,
        "thigh": 0.056 * girth * s, "shin": 0.038 * girth * s, "foot": 0.026 * s,
        "neck": 0.028 * girth * s, "torso_depth": 0.065 * girth * s,
        "shoulder": shoulder_w * s, "hip": (hip_w + 0.035 * girth) * s,
    }
    xy.setflags(write=False)
    depth.setflags(write=False)
    return _Body(points=xy, depth=depth, radii=radii, head_axes=(0.058 * s, 0.066 * s),
                 head_yaw=head_yaw, yaw=yaw, roll=roll, hidden_face=tuple(hidden))


def _pose_extent(pose: PersonPose) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) image box of the posed person (pixels)."""
    body = _pose_body(pose)
    pad = max(body.head_axes) + body.radii["thigh"]
    p = body.points
    return (float(p[:, 0].min() - pad), float(p[:, 1].min() - pad),
            float(p[:, 0].max() + pad), float(p[:, 1].max() + pad))


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------

_SHIFT = 4
_ONE = 1 << _SHIFT


def _fix(xy: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(xy) * _ONE).astype(np.int32)


def _scaled(colour: Sequence[float], k: float) -> tuple[float, float, float]:
    return (min(colour[0] * k, 255.0), min(colour[1] * k, 255.0), min(colour[2] * k, 255.0))


class _Canvas:
    """An image and its part-label map, painted together."""

    def __init__(self, image: np.ndarray, labels: np.ndarray, light: np.ndarray) -> None:
        self.image = image
        self.labels = labels
        self.light = light  # unit 2-vector toward the light (image frame)
        self.light_x, self.light_y = float(light[0]), float(light[1])

    def capsule(self, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float,
                colour: Sequence[float], label: int, shade: bool = True) -> None:
        """A tapered capsule from p0 (radius r0) to p1 (radius r1), shaded like a cylinder."""
        x0, y0, x1, y1 = float(p0[0]), float(p0[1]), float(p1[0]), float(p1[1])
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy)
        nx, ny = (-dy / length, dx / length) if length > 1e-6 else (1.0, 0.0)
        if nx * self.light_x + ny * self.light_y < 0:
            nx, ny = -nx, -ny
        r0, r1 = max(r0, 0.5), max(r1, 0.5)
        one = _ONE
        quad = np.array([
            [round((x0 + nx * r0) * one), round((y0 + ny * r0) * one)],
            [round((x1 + nx * r1) * one), round((y1 + ny * r1) * one)],
            [round((x1 - nx * r1) * one), round((y1 - ny * r1) * one)],
            [round((x0 - nx * r0) * one), round((y0 - ny * r0) * one)],
        ], np.int32)
        c0, c1 = (round(x0 * one), round(y0 * one)), (round(x1 * one), round(y1 * one))
        ir0, ir1 = int(r0 * one), int(r1 * one)
        for target, value in ((self.labels, label), (self.image, _scaled(colour, 0.72)
                                                     if shade else colour)):
            cv2.fillConvexPoly(target, quad, value, cv2.LINE_8, _SHIFT)
            cv2.circle(target, c0, ir0, value, -1, cv2.LINE_8, _SHIFT)
            cv2.circle(target, c1, ir1, value, -1, cv2.LINE_8, _SHIFT)
        if shade and min(r0, r1) >= 1.5:
            a0, a1 = 0.25 * r0, 0.25 * r1
            b0, b1 = 0.45 * r0, 0.45 * r1
            quad = np.array([
                [round((x0 + nx * (a0 + b0)) * one), round((y0 + ny * (a0 + b0)) * one)],
                [round((x1 + nx * (a1 + b1)) * one), round((y1 + ny * (a1 + b1)) * one)],
                [round((x1 + nx * (a1 - b1)) * one), round((y1 + ny * (a1 - b1)) * one)],
                [round((x0 + nx * (a0 - b0)) * one), round((y0 + ny * (a0 - b0)) * one)],
            ], np.int32)
            cv2.fillConvexPoly(self.image, quad, _scaled(colour, 1.08), cv2.LINE_8, _SHIFT)

    def polygon(self, pts: np.ndarray, colour: Sequence[float], label: int) -> None:
        hull = cv2.convexHull(_fix(pts))
        cv2.fillConvexPoly(self.labels, hull, label, cv2.LINE_8, _SHIFT)
        cv2.fillConvexPoly(self.image, hull, _scaled(colour, 0.75), cv2.LINE_8, _SHIFT)
        center = pts.mean(axis=0)
        size = float(np.ptp(pts, axis=0).max())
        inner = center + (pts - center) * 0.7 + self.light * 0.08 * size
        cv2.fillConvexPoly(self.image, cv2.convexHull(_fix(inner)), _scaled(colour, 1.05),
                           cv2.LINE_8, _SHIFT)

    def ellipse(self, center: np.ndarray, axes: tuple[float, float], angle_deg: float,
                colour: Sequence[float], label: int | None) -> None:
        c = (round(float(center[0]) * _ONE), round(float(center[1]) * _ONE))
        ax = (max(int(axes[0] * _ONE), 1), max(int(axes[1] * _ONE), 1))
        if label is not None:
            cv2.ellipse(self.labels, c, ax, angle_deg, 0, 360, label, -1, cv2.LINE_8, _SHIFT)
        cv2.ellipse(self.image, c, ax, angle_deg, 0, 360, colour, -1, cv2.LINE_8, _SHIFT)


def _draw_person(canvas: _Canvas, body: _Body, style: PersonStyle, index: int) -> None:
    p, depth, r = body.points, body.depth, body.radii
    base = 1 + index * _PART_STRIDE
    sleeve = style.shirt if style.long_sleeves else style.skin
    shin_colour = style.pants if style.long_pants else style.skin
    parts: list[tuple[float, int]] = []

    def mean_depth(*ids: int) -> float:
        return float(sum(depth[i] for i in ids) / len(ids))

    def order_key(entry: tuple[float, int]) -> tuple[float, float]:
        # depth first; at equal depth the lower part in the image is in front (a rule that
        # does not depend on left / right, so mirrored people paint the same way)
        end = _PART_END.get(entry[1])
        return (round(entry[0], 6), 0.0 if end is None else float(p[end, 1]))

    arm_bias = 0.02 * r["shoulder"]
    parts += [
        (mean_depth(5, 7) + arm_bias, _L_UPPER_ARM), (mean_depth(7, 9) + arm_bias, _L_FOREARM),
        (mean_depth(9, _L_HAND_TIP) + arm_bias, _L_HAND),
        (mean_depth(6, 8) + arm_bias, _R_UPPER_ARM), (mean_depth(8, 10) + arm_bias, _R_FOREARM),
        (mean_depth(10, _R_HAND_TIP) + arm_bias, _R_HAND),
        (mean_depth(11, 13) - 0.01, _L_THIGH), (mean_depth(13, 15) - 0.01, _L_SHIN),
        (mean_depth(15, _L_TOE) - 0.01, _L_FOOT), (mean_depth(12, 14) - 0.01, _R_THIGH),
        (mean_depth(14, 16) - 0.01, _R_SHIN), (mean_depth(16, _R_TOE) - 0.01, _R_FOOT),
        (0.0, _TORSO), (0.001, _NECK), (0.002, _HEAD),
    ]
    # a limb reaching across the body in front is painted after the torso by its depth; ties
    # keep the list order (legs, then torso, neck, head before the arms at equal depth)
    parts.sort(key=order_key)
    cos_yaw = math.cos(body.head_yaw)
    sin_yaw = math.sin(body.head_yaw)
    for _, part in parts:
        label = base + part
        if part == _TORSO:
            depth_half = r["torso_depth"]
            axis_x = (p[5] - p[6])
            width_axis = axis_x / max(float(np.linalg.norm(axis_x)), 1e-6)
            # the torso seen from any yaw: its front width shrinks, its depth shows
            roll_dir = np.array([math.cos(body.roll), math.sin(body.roll)])
            sh_c = (p[5] + p[6]) / 2
            hp_c = (p[11] + p[12]) / 2
            span_sh = float(np.linalg.norm(p[5] - p[6])) / 2 + 0.6 * r["upper_arm"]
            span_hp = float(np.linalg.norm(p[11] - p[12])) / 2 + 0.4 * r["thigh"]
            span_sh = max(span_sh, depth_half)
            span_hp = max(span_hp, depth_half * 0.9)
            if float(np.linalg.norm(axis_x)) < 1e-3:
                width_axis = roll_dir
            down = hp_c - sh_c
            pts = np.stack([
                sh_c + width_axis * span_sh - down * 0.04,
                sh_c - width_axis * span_sh - down * 0.04,
                hp_c + width_axis * span_hp + down * 0.06,
                hp_c - width_axis * span_hp + down * 0.06,
                (sh_c + hp_c) / 2 + width_axis * span_hp * 0.95,
                (sh_c + hp_c) / 2 - width_axis * span_hp * 0.95,
            ])
            canvas.polygon(pts, style.shirt, label)
            cos_body, sin_body = math.cos(body.yaw), math.sin(body.yaw)
            if cos_body > 0.25:  # the front of the shirt: a neckline toward the viewer
                top = sh_c - down * 0.03 + width_axis * (0.45 * span_sh * sin_body)
                half = width_axis * (0.22 * span_sh * cos_body)
                neckline = np.stack([top + half, top - half,
                                     top + down * 0.2 + width_axis * (0.1 * span_sh * sin_body)])
                cv2.fillConvexPoly(canvas.image, _fix(neckline), _scaled(style.skin, 0.9),
                                   cv2.LINE_8, _SHIFT)
            if style.stripes:
                thick = max(int(round(0.35 * r["forearm"])), 1)
                for k in range(1, style.stripes + 1):
                    t = k / (style.stripes + 1)
                    c = sh_c + (hp_c - sh_c) * t * 0.9
                    span = (span_sh * (1 - t) + span_hp * t) * 0.85
                    a, b = _fix(c + width_axis * span), _fix(c - width_axis * span)
                    cv2.line(canvas.image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])),
                             style.stripe_colour, thick, cv2.LINE_8, _SHIFT)
            # trousers / skirt over the pelvis, then a waist band
            waist = hp_c - down * 0.14
            if style.skirt:
                bottom = hp_c + down * 0.75
                flare = span_hp * 1.2 + 0.5 * abs(float((p[13] - p[14]) @ width_axis))
                hem = np.stack([waist + width_axis * span_hp * 0.95,
                                waist - width_axis * span_hp * 0.95,
                                bottom + width_axis * flare, bottom - width_axis * flare])
            else:
                hem = np.stack([waist + width_axis * span_hp * 0.97,
                                waist - width_axis * span_hp * 0.97,
                                hp_c + width_axis * span_hp + down * 0.07,
                                hp_c - width_axis * span_hp + down * 0.07])
            canvas.polygon(hem, style.pants, label)
            a, b = _fix(waist + width_axis * span_hp * 0.95), _fix(
                waist - width_axis * span_hp * 0.95)
            cv2.line(canvas.image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])),
                     _scaled(style.pants, 0.55), max(int(round(0.25 * r["thigh"])), 1),
                     cv2.LINE_8, _SHIFT)
        elif part == _NECK:
            canvas.capsule(p[_NECK_BASE], (p[_NECK_BASE] + p[_HEAD_CENTER]) / 2, r["neck"],
                           r["neck"] * 0.9, style.skin, label)
        elif part == _HEAD:
            _draw_head(canvas, body, style, label, cos_yaw, sin_yaw)
        elif part in (_L_UPPER_ARM, _R_UPPER_ARM):
            a, b = (5, 7) if part == _L_UPPER_ARM else (6, 8)
            canvas.capsule(p[a], p[b], r["upper_arm"], r["forearm"] * 1.05, style.shirt, label)
        elif part in (_L_FOREARM, _R_FOREARM):
            a, b = (7, 9) if part == _L_FOREARM else (8, 10)
            canvas.capsule(p[a], p[b], r["forearm"], r["forearm"] * 0.8, sleeve, label)
        elif part in (_L_HAND, _R_HAND):
            a, b = (9, _L_HAND_TIP) if part == _L_HAND else (10, _R_HAND_TIP)
            canvas.capsule(p[a], p[b] * 0.6 + p[a] * 0.4, r["hand"] * 0.8, r["hand"],
                           style.skin, label)
        elif part in (_L_THIGH, _R_THIGH):
            a, b = (11, 13) if part == _L_THIGH else (12, 14)
            canvas.capsule(p[a], p[b], r["thigh"], r["shin"] * 1.1, style.pants, label)
        elif part in (_L_SHIN, _R_SHIN):
            a, b = (13, 15) if part == _L_SHIN else (14, 16)
            canvas.capsule(p[a], p[b], r["shin"] * 1.05, r["shin"] * 0.7, shin_colour, label)
        else:
            a, heel, toe = (15, _L_HEEL, _L_TOE) if part == _L_FOOT else (16, _R_HEEL, _R_TOE)
            canvas.capsule(p[heel], p[toe], r["foot"], r["foot"] * 0.8, style.shoes, label)
            canvas.capsule(p[a], p[heel], r["shin"] * 0.6, r["foot"], style.shoes, label,
                           shade=False)


def _draw_head(canvas: _Canvas, body: _Body, style: PersonStyle, label: int, cos_yaw: float,
               sin_yaw: float) -> None:
    p = body.points
    center = p[_HEAD_CENTER]
    ax_w, ax_h = body.head_axes
    angle = math.degrees(body.roll)
    right = np.array([math.cos(body.roll), math.sin(body.roll)])
    down = np.array([-math.sin(body.roll), math.cos(body.roll)])
    # ears first (they stick out at the sides)
    for point, hidden in ((3, body.hidden_face[3]), (4, body.hidden_face[4])):
        if not hidden:
            canvas.ellipse(p[point], (0.22 * ax_w, 0.32 * ax_h), angle, _scaled(style.skin, 0.85),
                           label)
    long_hair = style.long_hair
    if long_hair:  # hair falling behind the head
        canvas.ellipse(center + down * 0.45 * ax_h - right * 0.35 * ax_w * sin_yaw,
                       (ax_w * 1.05, ax_h * 1.05), angle, style.hair, label)
    if cos_yaw > -0.35:
        canvas.ellipse(center, (ax_w, ax_h), angle, style.hair, label)
        # face: a skin ellipse shifted toward where the head looks
        face_c = center + right * (0.3 * ax_w * sin_yaw) + down * 0.16 * ax_h
        face_w = ax_w * (0.55 + 0.3 * abs(cos_yaw))
        canvas.ellipse(face_c, (face_w, ax_h * 0.84), angle, style.skin, label)
        canvas.ellipse(face_c + right * (0.2 * face_w * (1 if canvas.light[0] < 0 else -1)),
                       (face_w * 0.55, ax_h * 0.55), angle, _scaled(style.skin, 1.07), None)
        eye_r = max(0.13 * ax_w, 0.6)
        for point in (1, 2):
            if not body.hidden_face[point]:
                canvas.ellipse(p[point], (eye_r, eye_r * 0.8), angle, (30.0, 25.0, 25.0), None)
        if not body.hidden_face[0]:
            canvas.ellipse(p[0], (0.14 * ax_w, 0.11 * ax_h), angle, _scaled(style.skin, 0.7),
                           label)
            mouth = p[0] + down * 0.3 * ax_h
            canvas.ellipse(mouth, (0.22 * ax_w * max(abs(cos_yaw), 0.4), 0.05 * ax_h), angle,
                           (60.0, 60.0, 150.0), None)
    else:  # seen from behind: the back of the head is hair, with a darker crown
        canvas.ellipse(center, (ax_w, ax_h), angle, style.hair, label)
        canvas.ellipse(center - down * 0.2 * ax_h, (ax_w * 0.6, ax_h * 0.5), angle,
                       _scaled(style.hair, 0.8), None)


def _paint_shape(image: np.ndarray, labels: np.ndarray | None, shape: Shape) -> None:
    """Paint a shape; a capsule also clears `labels` under it (an occluder) when given."""
    pts = np.asarray(shape.points, np.float64).reshape(-1, 2)
    colour, size = shape.colour, shape.size
    fixed = _fix(pts)
    thick = max(int(round(size)), 1)
    if shape.kind == "rect":
        cv2.fillConvexPoly(image, fixed, colour, cv2.LINE_8, _SHIFT)
    elif shape.kind == "circle":
        cv2.circle(image, (int(fixed[0, 0]), int(fixed[0, 1])), int(max(size, 1) * _ONE), colour,
                   -1, cv2.LINE_8, _SHIFT)
    elif shape.kind in ("line", "stripes"):
        for a, b in zip(fixed[0::2], fixed[1::2], strict=True):
            cv2.line(image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), colour, thick,
                     cv2.LINE_8, _SHIFT)
    else:  # capsule: a limb-like distractor
        canvas = _Canvas(image, labels if labels is not None else np.zeros((1, 1), np.uint16),
                         np.array([0.6, -0.8]))
        canvas.capsule(pts[0], pts[1], size, size * 0.75, colour, 0)


def _background(layout: SceneLayout) -> np.ndarray:
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
    return _render(layout, only, distractors, None)


def _render(layout: SceneLayout, only: Iterable[int] | None, distractors: bool,
            background: np.ndarray | None) -> SyntheticScene:
    w, h = layout.size_wh
    indices = list(range(len(layout.people))) if only is None else sorted(set(only))
    image = _background(layout) if background is None else background.copy()
    labels = np.zeros((h, w), np.uint16)
    light = np.array([-0.55 * layout.light_sign, -0.83])
    canvas = _Canvas(image, labels, light)
    if distractors:
        for shape in layout.distractors_back:
            _paint_shape(image, None, shape)
    bodies = []
    for k, i in enumerate(indices):
        person = layout.people[i]
        body = _pose_body(person.pose)
        bodies.append(body)
        _draw_person(canvas, body, person.style, k)
    if distractors:
        for shape in layout.distractors_front:
            _paint_shape(image, labels, shape)
    image = _finish(image, layout)

    num = len(indices)
    points = _COCO_POINTS if layout.keypoints == "coco" else _CROWDPOSE_POINTS
    num_joints = len(points)
    keypoints = np.zeros((num, num_joints, 3), np.float32)
    # label 1 + p * 16 + part  ->  p; background 0 -> -1
    person_map = ((labels.astype(np.int16) + (_PART_STRIDE - 1)) >> 4) - 1
    for k, body in enumerate(bodies):
        for j, point in enumerate(points):
            x, y = float(body.points[point, 0]), float(body.points[point, 1])
            xi, yi = int(round(x)), int(round(y))
            if not (0 <= xi < w and 0 <= yi < h):
                continue
            value = int(labels[yi, xi])
            visible = False
            if value > 0:
                owner, part = divmod(value - 1, _PART_STRIDE)
                visible = owner == k and bool(_POINT_PARTS[point] >> part & 1)
            if point < 5 and body.hidden_face[point]:
                visible = False
            keypoints[k, j] = (x, y, 2.0 if visible else 1.0)

    areas = np.zeros((num,), np.float32)
    boxes = np.zeros((num, 4), np.float32)
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
    ids = np.array([layout.people[i].person_id for i in indices], np.int64)
    return SyntheticScene(
        image_bgr=image, keypoints=keypoints, boxes=boxes, areas=areas, ids=ids,
        mask=person_map, keypoints_name=layout.keypoints,
        crowd_index=crowd_index(keypoints, boxes),
    )


def render_scene(
    config: SyntheticSceneConfig, seed_or_rng: int | Sequence[int] | np.random.Generator
) -> SyntheticScene:
    """Sample and render one random scene (deterministic for a given seed)."""
    return render_layout(sample_layout(config, seed_or_rng))


def crowd_index(keypoints: np.ndarray, boxes: np.ndarray) -> float:
    """CrowdPose crowd index of one image (see the module docstring).

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


# ----------------------------------------------------------------------------------------------
# Mirroring (flip consistency)
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Top-down crops
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Video
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Life:
    """One walker crossing the frame: frames [start, start + duration)."""

    start: int
    duration: int
    person_id: int
    height_px: float
    ground_y: float
    x0: float
    velocity: float  # pixels per frame, signed
    yaw0: float
    turn_amplitude: float
    turn_period: float
    stride_frames: float
    phase0: float
    swing: float
    style: PersonStyle
    proportions: tuple[float, ...]
    girth: float


class SyntheticVideo:
    """People walking across a fixed scene: smooth motion, walk cycles, turning, entering and
    leaving, persistent ids. Frames are a pure function of (seed, index), so they can be read in
    any order; the first visit to frame i creates the walkers up to i (memoised per instance,
    about 0.05 ms per frame), later visits cost one render (about 5 ms at 640x480, 5 people).

    Args:
        width, height: frame size in pixels.
        num_people: people slots; each slot always holds one walker (a new id when the previous
            one has left the frame).
        fps: frame rate, sets the walking speed per frame.
        seed: random seed.
        keypoints: "coco" or "crowdpose".
    """

    def __init__(self, width: int = 640, height: int = 480, num_people: int = 5,
                 fps: float = 30.0, seed: int = 0, keypoints: str = "coco") -> None:
        if int(width) < 16 or int(height) < 16:
            raise ValueError(f"frame size must be at least 16x16, got {width}x{height}")
        if not 0 <= int(num_people) <= MAX_PEOPLE_LIMIT:
            raise ValueError(f"num_people must be in [0, {MAX_PEOPLE_LIMIT}], got {num_people}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        get_keypoint_spec(keypoints)
        self.width, self.height = int(width), int(height)
        self.num_people, self.fps, self.seed = int(num_people), float(fps), int(seed)
        self.keypoints = keypoints
        rng = np.random.default_rng([self.seed, 7])
        config = SyntheticSceneConfig(width=self.width, height=self.height, keypoints=keypoints,
                                      min_people=0, max_people=0, max_distractors=0,
                                      blur_prob=0.0, noise_prob=0.0)
        still = sample_layout(config, rng)
        self._scene = replace(still, brightness=1.0, contrast=1.0, noise_sigma=2.0)
        self._background = _background(self._scene)
        self._lives: list[list[_Life]] = [[] for _ in range(self.num_people)]
        self._horizon = float(rng.uniform(0.3, 0.5) * self.height)

    def _new_life(self, slot: int, number: int, start: int) -> _Life:
        rng = np.random.default_rng([self.seed, 11, slot, number])
        w, h = self.width, self.height
        near = rng.uniform(0.0, 1.0)
        height_px = float(h * (0.22 + 0.6 * near))
        ground_y = float(self._horizon + (h * 1.02 - self._horizon) * (0.25 + 0.75 * near))
        direction = 1.0 if rng.uniform() < 0.5 else -1.0
        speed_m_s = rng.uniform(0.6, 1.6)
        velocity = direction * speed_m_s * height_px / 1.7 / self.fps
        margin = 0.5 * height_px
        x0 = -margin if direction > 0 else w + margin
        travel = w + 2 * margin
        duration = max(int(math.ceil(travel / abs(velocity))), 2)
        if number == 0:  # already on stage at frame 0
            start = -int(rng.uniform(0.1, 0.9) * duration)
        stride_s = rng.uniform(0.9, 1.2) / speed_m_s ** 0.5
        return _Life(
            start=start, duration=duration, person_id=slot * 100000 + number,
            height_px=height_px, ground_y=ground_y, x0=x0, velocity=velocity,
            yaw0=direction * float(rng.uniform(55, 125)),
            turn_amplitude=float(rng.uniform(0, 60) if rng.uniform() < 0.5 else 0.0),
            turn_period=float(rng.uniform(2.0, 6.0) * self.fps),
            stride_frames=float(stride_s * self.fps), phase0=float(rng.uniform(0, 2 * math.pi)),
            swing=float(rng.uniform(15, 30) * min(speed_m_s, 1.3)),
            style=_sample_style(rng),
            proportions=tuple(float(x) for x in rng.uniform(0.92, 1.08, len(_SEGMENTS))),
            girth=float(rng.uniform(0.8, 1.3)),
        )

    def _life_at(self, slot: int, index: int) -> _Life:
        lives = self._lives[slot]
        if not lives:
            lives.append(self._new_life(slot, 0, 0))
        while lives[-1].start + lives[-1].duration <= index:
            last = lives[-1]
            gap = int(np.random.default_rng([self.seed, 13, slot, len(lives)]).integers(
                0, int(self.fps)))
            lives.append(self._new_life(slot, len(lives), last.start + last.duration + gap))
        for life in reversed(lives):
            if life.start <= index:
                return life
        return lives[0]

    def _pose(self, life: _Life, index: int) -> PersonPose | None:
        t = index - life.start
        if not 0 <= t < life.duration:
            return None  # between two walkers
        phase = life.phase0 + 2 * math.pi * t / life.stride_frames
        s = math.sin(phase)
        swing = life.swing
        hip = (swing * s, -swing * s)
        lift = math.sin(phase - 1.2)
        knee = (5 + 35 * max(0.0, lift), 5 + 35 * max(0.0, -lift))
        arm = (-0.7 * swing * s, 0.7 * swing * s)
        yaw = life.yaw0 + life.turn_amplitude * math.sin(2 * math.pi * t / life.turn_period)
        x = life.x0 + life.velocity * t
        bob = 0.01 * life.height_px * abs(math.cos(phase))
        pelvis_y = life.ground_y - 0.53 * life.height_px - bob
        return PersonPose(
            center_xy=(x, pelvis_y), height_px=life.height_px, yaw=yaw,
            head_yaw=15.0 * math.sin(2 * math.pi * t / (life.turn_period * 0.7)),
            roll=0.0, pitch=4.0, shoulder_flexion=arm, shoulder_abduction=(8.0, 8.0),
            elbow_flexion=(15 + 10 * max(0.0, s), 15 + 10 * max(0.0, -s)), hip_flexion=hip,
            hip_abduction=(3.0, 3.0), knee_flexion=knee, proportions=life.proportions,
            girth=life.girth,
        )

    def layout(self, index: int) -> SceneLayout:
        """The scene layout of frame `index` (people back to front)."""
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        people = []
        for slot in range(self.num_people):
            life = self._life_at(slot, index)
            pose = self._pose(life, index)
            if pose is not None:
                people.append(PersonSpec(pose, life.style, life.person_id))
        people.sort(key=lambda p: (p.pose.height_px, p.person_id))
        rng = np.random.default_rng([self.seed, 17, index])
        return replace(self._scene, people=tuple(people),
                       noise_offset=(int(rng.integers(0, 512)), int(rng.integers(0, 512))))

    def frame(self, index: int) -> SyntheticScene:
        """Render frame `index` (ids persistent while a person stays in the frame)."""
        return _render(self.layout(index), None, True, self._background)


# ----------------------------------------------------------------------------------------------
# Writing datasets
# ----------------------------------------------------------------------------------------------


def coco_categories(spec: KeypointSpec) -> list[dict]:
    """COCO `categories` for a keypoint layout (person, names, 1-based skeleton)."""
    return [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": list(spec.names), "skeleton": spec.skeleton_1based}]


def _annotations_for(scene: SyntheticScene, image_id: int, first_ann_id: int,
                     track: bool = False) -> list[dict]:
    anns = []
    for k in range(scene.num_people):
        kps = scene.keypoints[k]
        num_labelled = int((kps[:, 2] > 0).sum())
        if num_labelled == 0 and scene.areas[k] == 0:
            continue
        flat = []
        for x, y, v in kps:
            if v > 0:
                flat += [round(float(x), 2), round(float(y), 2), int(v)]
            else:
                flat += [0, 0, 0]
        ann = {
            "id": first_ann_id + len(anns), "image_id": image_id, "category_id": 1,
            "iscrowd": 0, "num_keypoints": num_labelled, "keypoints": flat,
            "bbox": [round(float(v), 2) for v in scene.boxes[k]],
            "area": float(scene.areas[k]),
        }
        if track:
            ann["track_id"] = int(scene.ids[k])
        anns.append(ann)
    return anns


def _check_size(size_wh: Sequence[int]) -> tuple[int, int]:
    if len(size_wh) != 2:
        raise ValueError(f"size must be (width, height), got {size_wh}")
    w, h = int(size_wh[0]), int(size_wh[1])
    if w < 16 or h < 16 or w > 8192 or h > 8192:
        raise ValueError(f"image size must be between 16 and 8192 pixels per side, got {w}x{h}")
    return w, h


def _write_json(path: pathlib.Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")))
    os.replace(tmp, path)


def _write_coco_annotations(
    out: pathlib.Path,
    description: str,
    images: list[dict],
    annotations: list[dict],
    spec: KeypointSpec,
) -> pathlib.Path:
    """Write `out/annotations.json` (COCO keypoints layout) atomically; returns its path."""
    path = out / "annotations.json"
    _write_json(path, {
        "info": {"description": description, "version": "1"},
        "licenses": [], "images": images, "annotations": annotations,
        "categories": coco_categories(spec),
    })
    return path


def _progress(total: int, enabled: bool, desc: str):  # noqa: ANN202 - tqdm or a stub
    if enabled:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="img")
    return None


def write_dataset(
    out_dir: str | os.PathLike[str],
    num_images: int,
    seed: int,
    size_wh: Sequence[int] = (256, 256),
    keypoints: str = "coco",
    max_people: int | None = None,
    difficulty: str = "default",
    config: SyntheticSceneConfig | None = None,
    jpeg_quality: int = 92,
    progress: bool = False,
) -> pathlib.Path:
    """Write `num_images` random scenes as a COCO-format keypoint dataset.

    Writes `out_dir/images/%06d.jpg` and `out_dir/annotations.json`. Image i is seeded with
    `(seed, i)`. `config` (when given) overrides `size_wh`, `keypoints`, `difficulty`.
    CrowdPose images carry `crowdIndex`.

    Returns:
        The path of annotations.json.
    """
    if int(num_images) < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    if config is None:
        w, h = _check_size(size_wh)
        if max_people is not None and not 0 <= int(max_people) <= MAX_PEOPLE_LIMIT:
            raise ValueError(f"max_people must be in [0, {MAX_PEOPLE_LIMIT}], got {max_people}")
        config = difficulty_config(difficulty, w, h, keypoints, max_people)
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in [1, 100], got {jpeg_quality}")
    out = pathlib.Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    spec = config.spec
    images, annotations = [], []
    bar = _progress(int(num_images), progress, "pose-synth")
    try:
        for i in range(int(num_images)):
            scene = render_scene(config, [int(seed), i])
            file_name = f"{i:06d}.jpg"
            _imwrite(out / "images" / file_name, scene.image_bgr, jpeg_quality)
            image = {"id": i + 1, "file_name": file_name, "width": config.width,
                     "height": config.height}
            if spec.name == "crowdpose":
                image["crowdIndex"] = round(scene.crowd_index, 4)
            images.append(image)
            annotations += _annotations_for(scene, i + 1, len(annotations) + 1)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return _write_coco_annotations(
        out, f"pose_core synthetic world ({spec.name}, seed {seed})", images, annotations, spec
    )


def write_crop_dataset(
    out_dir: str | os.PathLike[str],
    num_images: int,
    seed: int,
    size_wh: Sequence[int] = (256, 256),
    keypoints: str = "coco",
    crop_wh: Sequence[int] = (192, 256),
    padding: float = 1.25,
    max_people: int | None = None,
    difficulty: str = "default",
    config: SyntheticSceneConfig | None = None,
    jpeg_quality: int = 92,
    progress: bool = False,
) -> pathlib.Path:
    """Top-down crop mode: one crop per person of `num_images` random scenes.

    Scene i is seeded with `(seed, i)` (the same scenes as `write_dataset`); every person with a
    labelled joint becomes one `crop_wh` image (`top_down_crops`) holding one annotation in crop
    pixels: keypoints (v=0 outside the crop), bbox of the person's visible silhouette, area
    scaled to the crop. Other people may show in a crop, unannotated, as in top-down training.
    Images carry `source_image` (scene index) and `person_id`. `config` (when given) overrides
    `size_wh`, `keypoints`, `max_people` and `difficulty`.
    """
    if int(num_images) < 0:
        raise ValueError(f"num_images must be >= 0, got {num_images}")
    crop_w, crop_h = _check_size(crop_wh)
    if not padding > 0:
        raise ValueError(f"padding must be > 0, got {padding}")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in [1, 100], got {jpeg_quality}")
    if config is None:
        w, h = _check_size(size_wh)
        if max_people is not None and not 0 <= int(max_people) <= MAX_PEOPLE_LIMIT:
            raise ValueError(f"max_people must be in [0, {MAX_PEOPLE_LIMIT}], got {max_people}")
        config = difficulty_config(difficulty, w, h, keypoints, max_people)
    out = pathlib.Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    spec = config.spec
    images: list[dict] = []
    annotations: list[dict] = []
    bar = _progress(int(num_images), progress, "pose-synth crops")
    try:
        for i in range(int(num_images)):
            scene = render_scene(config, [int(seed), i])
            for crop in top_down_crops(scene, (crop_w, crop_h), padding):
                index = len(images) + 1
                file_name = f"{index - 1:07d}.jpg"
                _imwrite(out / "images" / file_name, crop.image_bgr, jpeg_quality)
                images.append({"id": index, "file_name": file_name, "width": crop_w,
                               "height": crop_h, "source_image": i,
                               "person_id": crop.person_id})
                scale = float(crop.affine[0, 0])
                x, y, bw, bh = (float(v) for v in crop.box)
                x0, y0 = x * scale + crop.affine[0, 2], y * scale + crop.affine[1, 2]
                person = int(np.flatnonzero(scene.ids == crop.person_id)[0])
                flat: list[float | int] = []
                for kx, ky, v in crop.keypoints:
                    flat += ([round(float(kx), 2), round(float(ky), 2), int(v)] if v > 0
                             else [0, 0, 0])
                annotations.append({
                    "id": len(annotations) + 1, "image_id": index, "category_id": 1,
                    "iscrowd": 0, "num_keypoints": int((crop.keypoints[:, 2] > 0).sum()),
                    "keypoints": flat,
                    "bbox": [round(x0, 2), round(y0, 2), round(bw * scale, 2),
                             round(bh * scale, 2)],
                    "area": round(float(scene.areas[person]) * scale * scale, 2),
                })
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return _write_coco_annotations(
        out, f"pose_core synthetic top-down crops ({spec.name}, seed {seed})", images,
        annotations, spec,
    )


def write_video_dataset(
    out_dir: str | os.PathLike[str],
    num_frames: int,
    seed: int,
    size_wh: Sequence[int] = (640, 480),
    keypoints: str = "coco",
    num_people: int = 5,
    fps: float = 30.0,
    jpeg_quality: int = 92,
    progress: bool = False,
) -> pathlib.Path:
    """Write `num_frames` consecutive frames of a `SyntheticVideo` (COCO format plus
    `track_id` per annotation and `frame_id` / `vid_id` per image)."""
    if int(num_frames) < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    w, h = _check_size(size_wh)
    video = SyntheticVideo(w, h, num_people, fps, seed, keypoints)
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in [1, 100], got {jpeg_quality}")
    out = pathlib.Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    spec = get_keypoint_spec(keypoints)
    images, annotations = [], []
    bar = _progress(int(num_frames), progress, "pose-synth video")
    try:
        for i in range(int(num_frames)):
            scene = video.frame(i)
            file_name = f"{i:06d}.jpg"
            _imwrite(out / "images" / file_name, scene.image_bgr, jpeg_quality)
            image = {"id": i + 1, "file_name": file_name, "width": w, "height": h,
                     "frame_id": i, "vid_id": 1}
            if spec.name == "crowdpose":
                image["crowdIndex"] = round(scene.crowd_index, 4)
            images.append(image)
            annotations += _annotations_for(scene, i + 1, len(annotations) + 1, track=True)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return _write_coco_annotations(
        out, f"pose_core synthetic video ({spec.name}, seed {seed}, {fps} fps)", images,
        annotations, spec,
    )


def _imwrite(path: pathlib.Path, image: np.ndarray, quality: int) -> None:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    path.write_bytes(data.tobytes())

