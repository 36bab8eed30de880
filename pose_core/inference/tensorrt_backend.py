"""TensorRT backend: runs an engine of `pose-export tensorrt` behind `InferenceBackend`.

Loading checks, before any engine byte is deserialized, the metadata beside the engine
(`pose_core.export.engine_metadata`): TensorRT version, GPU name, compute capability, model,
keypoint set (and ONNX hash / precision when given). A mismatch is an `EngineMismatch` saying how
to rebuild, or, with `engine_policy="rebuild"`, the engine is rebuilt from the model's ONNX with
the same precision and profiles. A file TensorRT cannot deserialize is reported as corrupt. Each
call checks the input shape against the engine's profiles (`check_shape`).

Tensors: input (N, 3, H, W) float32 on the engine's CUDA device; outputs float32 CUDA tensors
(I/O stay FP32 in every precision). tensorrt is imported here only, when a backend is built.

NEVER RUN against a real TensorRT or GPU: loading is exercised against the stand-in module of
test/core/test_tensorrt_boundary.py; `__call__` (execute_async_v3) has never executed.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pose_core.export.engine_metadata import (
    EngineMetadata,
    EngineMismatch,
    RuntimeFacts,
    ShapeProfile,
    check_engine,
    check_shape,
)

__all__ = ["TensorRTBackend", "default_profiles", "import_tensorrt"]


def import_tensorrt() -> Any:
    try:
        return importlib.import_module("tensorrt")
    except ImportError as error:
        raise RuntimeError("TensorRT (NVIDIA's `tensorrt` Python package) is not installed; "
                           "the tensorrt backend and `pose-export tensorrt` need it (use "
                           "backend onnxruntime or torch)") from error


def default_profiles(input_wh: tuple[int, int], multiple: int = 64) -> tuple[ShapeProfile, ...]:
    """One dynamic profile: batch 1..2 (flip test), sides from 256 to 2x the model's size."""
    width, height = input_wh
    top = max(2 * width, 2 * height, 256)
    top -= top % multiple
    return (ShapeProfile((1, 3, 256, 256), (2, 3, height, width), (2, 3, top, top)),)


class TensorRTBackend:
    """A deserialized engine with its checked metadata (see the module docstring)."""

    def __init__(self, engine_path: str | os.PathLike[str], model_name: str, *,
                 precision: str | None = None, onnx_sha256: str | None = None,
                 device: str = "cuda", trt: Any = None, facts: RuntimeFacts | None = None):
        from pose_core.export.tensorrt_builder import runtime_facts
        from pose_core.models import model_info

        self.trt = trt if trt is not None else import_tensorrt()
        self.path = Path(engine_path)
        self.metadata = EngineMetadata.read(self.path)
        facts = facts if facts is not None else runtime_facts(self.trt)
        check_engine(self.metadata, self.path, facts, model_name,
                     model_info(model_name).keypoints.name, onnx_sha256,
                     None if precision in (None, "fp32") else precision)
        self.flip_folded = self.metadata.flip_folded
        logger = self.trt.Logger(self.trt.Logger.WARNING)
        self.engine = self.trt.Runtime(logger).deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise EngineMismatch(f"TensorRT engine {self.path} is corrupt or was not serialized "
                                 f"by TensorRT {facts.tensorrt_version}; rebuild it with "
                                 "`pose-export tensorrt` (or set engine_policy: rebuild)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        output_mode = self.trt.TensorIOMode.OUTPUT
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == output_mode]
        self.device = torch.device(device)
        self.profile_index = 0

    @classmethod
    def for_model(cls, model_name: str, engine_path: str | os.PathLike[str],
                  onnx_file: Callable[[], Path], options: Any, device: str, *,
                  trt: Any = None, facts: RuntimeFacts | None = None) -> TensorRTBackend:
        """The backend of `BackendOptions` (engine_policy, precision) for `engine_path`; with
        policy "rebuild" a missing, stale or corrupt engine is built again from `onnx_file()`;
        with "error" the `EngineMismatch` says how to build it."""
        precision = options.precision if options.precision != "fp32" else None
        trt = trt if trt is not None else import_tensorrt()
        try:
            return cls(engine_path, model_name, precision=precision, device=device, trt=trt,
                       facts=facts)
        except EngineMismatch:
            if options.engine_policy != "rebuild":
                raise
        cls.rebuild(model_name, engine_path, onnx_file(), options.precision, trt, facts)
        return cls(engine_path, model_name, device=device, trt=trt, facts=facts)

    @staticmethod
    def rebuild(model_name: str, engine_path: str | os.PathLike[str], onnx_path: Path,
                precision: str, trt: Any, facts: RuntimeFacts | None) -> EngineMetadata:
        """Build `engine_path` again: the old engine's precision and profiles when its metadata
        is readable, else `precision` (bf16 -> fp16) and `default_profiles`."""
        from pose_core.export.engine_metadata import metadata_path
        from pose_core.export.tensorrt_builder import BuildOptions, build_engine
        from pose_core.models import model_info

        try:
            old = EngineMetadata.read(engine_path)
            profiles, precision = old.profiles, old.precision
        except (EngineMismatch, ValueError, TypeError):
            profiles = default_profiles(model_info(model_name).input_size)
            precision = {"bf16": "fp16"}.get(precision, precision)
        metadata_path(engine_path).unlink(missing_ok=True)
        return build_engine(onnx_path, engine_path,
                            BuildOptions(precision=precision, profiles=profiles), trt, facts)

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        shape = tuple(int(v) for v in batch.shape)
        profile = check_shape(self.metadata, shape, self.path)
        stream = torch.cuda.current_stream(self.device)
        if profile != self.profile_index:
            self.context.set_optimization_profile_async(profile, stream.cuda_stream)
            self.profile_index = profile
        image = batch.to(self.device, torch.float32).contiguous()
        self.context.set_input_shape("image", shape)
        self.context.set_tensor_address("image", image.data_ptr())
        outputs = []
        for name in self.output_names:
            out = torch.empty(tuple(self.context.get_tensor_shape(name)), device=self.device,
                              dtype=torch.float32)
            self.context.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT engine {self.path} failed to run")
        return tuple(outputs)
