"""Synthetic video: people walking across a fixed scene, with persistent ids.

Frames are `SyntheticScene`s (BGR uint8 (H, W, 3), keypoints (P, J, 3) in image pixels, ids
(P,) int64 that stay with a person while it is in the frame). Walkers move on a ground plane
seen from a fixed camera: nearer is larger and lower in the image; speeds are in pixels per frame,
derived from a walking speed in m/s and the person's height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from pose_core.data.synthetic.body import SEGMENTS
from pose_core.data.synthetic.config import MAX_PEOPLE_LIMIT, SyntheticSceneConfig
from pose_core.data.synthetic.render import render_background, render_with_background
from pose_core.data.synthetic.sampling import sample_layout, sample_style
from pose_core.data.synthetic.scene import (
    PersonPose,
    PersonSpec,
    PersonStyle,
    SceneLayout,
    SyntheticScene,
)
from pose_core.keypoint_specs import get_keypoint_spec

__all__ = ["SyntheticVideo"]



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
    any order; the first visit to frame i creates the walkers up to i (memoised per instance, so
    this costs little next to a render), later visits cost one render over the cached
    background.

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
        self._background = render_background(self._scene)
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
            style=sample_style(rng),
            proportions=tuple(float(x) for x in rng.uniform(0.92, 1.08, len(SEGMENTS))),
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
        return render_with_background(self.layout(index), None, True, self._background)

