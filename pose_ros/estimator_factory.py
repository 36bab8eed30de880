"""How the pose node gets its estimator: `build_estimator` (any model + checkpoint from the
node parameters) and the `Estimator` protocol the node relies on."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from pose_core.keypoint_specs import KeypointSpec
from pose_core.structures import Poses
from pose_ros.params import NodeParams

__all__ = ["Estimator", "build_estimator", "resolve_device"]


class Estimator(Protocol):
    """What the node needs from `pose_core.PoseEstimator`."""

    keypoint_spec: KeypointSpec
    last_timings: dict[str, float]

    def __call__(self, image_bgr: np.ndarray) -> Poses: ...


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when torch sees a GPU, else 'cpu'; other values unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_estimator(
    params: NodeParams, grouping_overrides: dict[str, Any] | None = None
) -> Estimator:
    """The one place where the node's estimator is made: any model + checkpoint.

    `checkpoint == ''` means the shipped weights of `pose_core.DEFAULT_MODEL`.
    `grouping_overrides` replace `GroupingParams` fields the node has no parameter for (tuning
    scripts: adjust, nms_kernel, ...).
    """
    from dataclasses import asdict, replace

    from pose_core import PoseEstimator
    from pose_core.models import model_info

    grouping = replace(params.grouping_params(), **(grouping_overrides or {}))
    options: dict[str, Any] = asdict(grouping)
    if model_info(params.model).decoder == "double_embedding":
        options["dem_mode"] = params.dem_mode
    return PoseEstimator(
        params.model,
        checkpoint=params.checkpoint or None,
        device=resolve_device(params.device),
        flip_test=params.flip_test,
        flip_scale=params.flip_scale if params.flip_test else 1.0,
        scales=params.scales,
        input_size=params.max_input_size or None,
        fp16=params.fp16,
        backend=params.backend,
        threads=params.thread_policy(),
        **options,
    )
