"""Inference: pre-processing, test-time augmentation, backends and `PoseEstimator`.

Images in: BGR uint8 (H, W, 3). Results out: `Poses` in original-image pixels.
"""

from __future__ import annotations

from pose_core.inference.backends import InferenceBackend, TorchBackend
from pose_core.inference.estimator import PoseEstimator

__all__ = ["InferenceBackend", "PoseEstimator", "TorchBackend"]
