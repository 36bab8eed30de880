"""How the pose node gets its estimator: `build_estimator` (any model + checkpoint from the
node parameters) and the `Estimator` protocol the node relies on."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from pose_core.default_model import DEFAULT_MODEL
from pose_core.keypoint_specs import KeypointSpec
from pose_core.structures import Poses
from pose_ros.params import NodeParams

__all__ = ["Estimator", "build_estimator", "network_precision", "resolve_device"]


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


def network_precision(params: NodeParams, device: str) -> str:
    """The backend precision of `params.precision` on `device`: "auto" is int8 where the
    network runs in onnxruntime on the CPU with the shipped weights (int8 measured as accurate
    as fp32 for them: docs/deployment.md), fp32 otherwise; fp16 is the `fp16` parameter's."""
    if params.precision != "auto":
        return params.precision
    on_onnxruntime = params.backend == "onnxruntime" or (
        params.backend == "auto" and not device.startswith("cuda"))
    shipped = params.model == DEFAULT_MODEL and not params.checkpoint
    return "int8" if on_onnxruntime and shipped and not params.fp16 else "fp32"


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
    device = resolve_device(params.device)
    return PoseEstimator(
        params.model,
        checkpoint=params.checkpoint or None,
        device=device,
        flip_test=params.flip_test,
        flip_scale=params.effective_flip_scale() if params.flip_test else 1.0,
        scales=params.scales,
        input_size=params.max_input_size or None,
        fp16=params.fp16,
        backend=params.backend,
        backend_options={"precision": network_precision(params, device)},
        threads=params.thread_policy(),
        **options,
    )
