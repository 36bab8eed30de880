"""What a random scene may contain: `SyntheticSceneConfig` and the difficulty presets.

Sizes are pixels: `width` x `height` is the (H, W, 3) image; `size_wh` is the `(w, h)` tuple.
Person heights are standing heights (head top to soles) in pixels or fractions of the image
height; `overlap`, `truncation` and the effect probabilities are fractions in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pose_core.keypoint_specs import KeypointSpec, get_keypoint_spec

__all__ = ["DIFFICULTY_LEVELS", "MAX_PEOPLE_LIMIT", "SyntheticSceneConfig", "difficulty_config"]

MAX_PEOPLE_LIMIT = 30
DIFFICULTY_LEVELS = ("easy", "default", "hard", "crowd")


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

