"""Sampling a scene: people (pose, placement, clothing), background, distractors and effects.

Everything random about a scene is drawn here into a `SceneLayout`; rendering it is
deterministic. Every function takes a seed or a `numpy.random.Generator`. Positions and sizes
are image pixels (x, y) with integer values at pixel centres; angles are degrees; colours are
BGR floats in [0, 255]. People are listed back to front (smaller, farther people first).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from pose_core.data.synthetic.body import SEGMENTS, pose_extent
from pose_core.data.synthetic.config import SyntheticSceneConfig
from pose_core.data.synthetic.scene import PersonPose, PersonSpec, PersonStyle, SceneLayout, Shape

__all__ = ["sample_layout", "sample_style"]

_SKIN_TONES = ((200, 215, 240), (150, 180, 225), (105, 145, 200), (70, 105, 160), (45, 65, 105))
_HAIR_COLOURS = ((20, 20, 25), (25, 40, 70), (40, 70, 120), (90, 150, 200), (150, 150, 150))


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


def sample_style(rng: np.random.Generator) -> PersonStyle:
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
    proportions = tuple(float(x) for x in rng.uniform(0.92, 1.08, len(SEGMENTS)))
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
    people = tuple(PersonSpec(placed[i][0], sample_style(rng), person_id=k)
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
    x0, y0, x1, y1 = pose_extent(candidate)
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

