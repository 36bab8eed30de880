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

Modules: `config` (what a scene may contain, difficulty presets), `scene` (layout and result
records, crowd index, mirroring), `body` (body model, kinematics, painting a person),
`sampling` (random layouts), `render` (painting a layout, annotations), `video`
(`SyntheticVideo`), `crops` (top-down crops), `writers` (COCO-format datasets), `cli`
(`pose-synth`).
"""

from __future__ import annotations

from pose_core.data.synthetic.config import (
    DIFFICULTY_LEVELS,
    MAX_PEOPLE_LIMIT,
    SyntheticSceneConfig,
    difficulty_config,
)
from pose_core.data.synthetic.crops import PersonCrop, crop_person, top_down_crops
from pose_core.data.synthetic.render import render_layout, render_scene
from pose_core.data.synthetic.sampling import sample_layout
from pose_core.data.synthetic.scene import (
    PersonPose,
    PersonSpec,
    PersonStyle,
    SceneLayout,
    Shape,
    SyntheticScene,
    crowd_index,
    mirror_layout,
)
from pose_core.data.synthetic.video import SyntheticVideo
from pose_core.data.synthetic.writers import (
    coco_categories,
    write_crop_dataset,
    write_dataset,
    write_video_dataset,
)

__all__ = [
    "DIFFICULTY_LEVELS",
    "MAX_PEOPLE_LIMIT",
    "PersonCrop",
    "PersonPose",
    "PersonSpec",
    "PersonStyle",
    "SceneLayout",
    "Shape",
    "SyntheticScene",
    "SyntheticSceneConfig",
    "SyntheticVideo",
    "coco_categories",
    "crop_person",
    "crowd_index",
    "difficulty_config",
    "mirror_layout",
    "render_layout",
    "render_scene",
    "sample_layout",
    "top_down_crops",
    "write_crop_dataset",
    "write_dataset",
    "write_video_dataset",
]
