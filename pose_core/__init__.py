"""pose_core: multi-person human pose estimation (HRNet, HigherHRNet, AE grouping, DARK).

Pure library: torch, numpy, OpenCV, scipy. It never imports ROS.

The public API is resolved lazily, so `import pose_core` stays cheap (no torch import) until a
name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Poses": "pose_core.structures",
    "KeypointSpec": "pose_core.keypoint_specs",
    "COCO_17": "pose_core.keypoint_specs",
    "CROWDPOSE_14": "pose_core.keypoint_specs",
    "get_keypoint_spec": "pose_core.keypoint_specs",
    "build_model": "pose_core.models",
    "model_info": "pose_core.models",
    "MODEL_NAMES": "pose_core.models",
    "load_checkpoint": "pose_core.models.checkpoint",
    "ModelInfo": "pose_core.models",
    "CheckpointError": "pose_core.models.checkpoint",
    "LoadReport": "pose_core.models.checkpoint",
    "build_higher_hrnet": "pose_core.models.higher_hrnet",
    "group_bottom_up": "pose_core.grouping",
    "dark_decode": "pose_core.codecs.refinement",
    "PoseEstimator": "pose_core.inference",
    "draw_poses": "pose_core.visualization",
    "keypoints_from_depth": "pose_core.depth",
    "PoseTracker": "pose_core.tracking",
    "TrackerConfig": "pose_core.tracking",
    "DEFAULT_MODEL": "pose_core.default_model",
    "default_checkpoint_path": "pose_core.default_model",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pose_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
