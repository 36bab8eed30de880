"""Inference: pre-processing, test-time augmentation, backends and `PoseEstimator`.

Images in: BGR uint8 (H, W, 3). Results out: `Poses` in original-image pixels.

The names below resolve lazily: the codecs (`pose_core.codecs`) build on this package's
building blocks (`preprocess`, `test_time_aug`, `buffers`) while `PoseEstimator` builds on the
codecs, so importing a building block must not import the estimator.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["InferenceBackend", "PoseEstimator", "TorchBackend"]

_EXPORTS = {
    "InferenceBackend": "pose_core.inference.backends",
    "TorchBackend": "pose_core.inference.backends",
    "PoseEstimator": "pose_core.inference.estimator",
}


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pose_core.inference' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
