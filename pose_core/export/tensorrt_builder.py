"""ONNX file -> serialized TensorRT engine + `EngineMetadata`, for TensorRT 10 and TensorRT 11.

TensorRT is imported only inside `build_engine` (or passed in as `trt`), never at module import.

Version branch (`tensorrt_major`):
- TensorRT 10 (Jetson's only one): weakly typed network; precision from builder flags (FP16,
  INT8 with an entropy calibrator fed by `calibration_batches`); the layers writing the tag
  output are pinned to FP32 (`layer.precision`, `set_output_type`, OBEY_PRECISION_CONSTRAINTS).
- TensorRT 11: the FP16 / INT8 flags and the calibrators are gone; the network is created
  STRONGLY_TYPED and precision comes from the ONNX itself: fp16 builds from the FP16 ONNX that
  `pose_core.export.onnx_fp16.convert_to_fp16` writes first (tag output kept FP32 there);
  int8 needs an ONNX with explicit QuantizeLinear / DequantizeLinear nodes.

After building, the engine inspector's per-layer information is summarised per layer type
(`layer_precision_report`), and an engine asked to be fp16 (int8) in which no layer runs fp16
(int8) is refused instead of being labelled so.

NEVER RUN against a real TensorRT (none can be installed where this was written): every call
into `trt` here follows the TensorRT 10 / 11 Python API documentation and is exercised only
against a stand-in module in test/core/test_tensorrt_boundary.py.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pose_core.export.engine_metadata import EngineMetadata, RuntimeFacts, ShapeProfile
from pose_core.export.metadata import file_sha256
from pose_core.export.onnx_fp16 import FP16_MARK, convert_to_fp16

__all__ = [
    "ENGINE_PRECISIONS",
    "BuildOptions",
    "build_engine",
    "calibration_batches",
    "layer_precision_report",
    "runtime_facts",
    "tensorrt_major",
]

ENGINE_PRECISIONS = ("fp32", "fp16", "int8")
INPUT_NAME = "image"
TAG_OUTPUT = "output_0"  # HigherHRNet: heatmaps and tags of the 1/4 resolution (HeadLayout)


@dataclass(frozen=True)
class BuildOptions:
    """Engine build settings.

    Attributes:
        precision: "fp32" | "fp16" | "int8".
        profiles: optimisation profiles (at least one).
        workspace_mib: builder workspace limit.
        timing_cache: file read before and written after the build (None: none).
        tags_fp32: keep the layers writing the tag output in FP32 (TensorRT 10 flags path; the
            TensorRT 11 FP16 ONNX keeps them FP32 itself).
        calibration: TensorRT 10 int8: network inputs (N, 3, H, W) float32 batches.
        calibration_cache: TensorRT 10 int8 calibration cache file.
    """

    precision: str = "fp16"
    profiles: tuple[ShapeProfile, ...] = ()
    workspace_mib: int = 2048
    timing_cache: str | None = None
    tags_fp32: bool = True
    calibration: tuple[np.ndarray, ...] = ()
    calibration_cache: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in ENGINE_PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(ENGINE_PRECISIONS)}")
        if not self.profiles:
            raise ValueError("an engine needs at least one optimisation profile")
        if self.workspace_mib <= 0:
            raise ValueError("workspace_mib must be positive")


def tensorrt_major(trt: Any) -> int:
    """10 or 11 from `trt.__version__`; other versions are refused."""
    major = int(str(trt.__version__).split(".")[0])
    if major not in (10, 11):
        raise RuntimeError(f"TensorRT {trt.__version__} is not supported (10.x or 11.x)")
    return major


def runtime_facts(trt: Any, device: int = 0) -> RuntimeFacts:
    """TensorRT version, GPU name and compute capability of this machine (through torch)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("TensorRT engines need a CUDA device; torch sees none")
    major, minor = torch.cuda.get_device_capability(device)
    return RuntimeFacts(str(trt.__version__), torch.cuda.get_device_name(device),
                        f"{major}.{minor}")


def calibration_batches(images_bgr: Sequence[np.ndarray], model_name: str, input_size: int,
                        batch: int) -> tuple[np.ndarray, ...]:
    """INT8 calibration inputs: the images through the model's own pre-processing (the codec's
    `prepare`, same as inference), grouped by equal input size into batches of <= `batch`."""
    from pose_core.codecs import build_decoder
    from pose_core.codecs.base import TestOptions
    from pose_core.models import model_info

    codec = build_decoder(model_info(model_name), input_size, TestOptions(flip_test=False))
    by_shape: dict[tuple[int, ...], list[np.ndarray]] = {}
    for image in images_bgr:
        tensor = codec.prepare(image, None).inputs[0]
        by_shape.setdefault(tuple(tensor.shape[1:]), []).append(tensor.numpy())
    batches = []
    for arrays in by_shape.values():
        for start in range(0, len(arrays), batch):
            batches.append(np.ascontiguousarray(np.concatenate(arrays[start:start + batch])))
    return tuple(batches)


def _datatype(text: str) -> str:
    lowered = text.lower()
    for needle, name in (("int8", "int8"), ("half", "fp16"), ("fp16", "fp16"),
                         ("bf16", "bf16"), ("float", "fp32"), ("fp32", "fp32")):
        if needle in lowered:
            return name
    return "other"


def layer_precision_report(engine_information: str) -> dict[str, dict[str, int]]:
    """{layer type: {output precision: count}} from the inspector's JSON (ProfilingVerbosity
    DETAILED: "Layers" entries with "LayerType" and "Outputs"[i]["Format/Datatype"])."""
    layers = json.loads(engine_information).get("Layers", [])
    report: dict[str, dict[str, int]] = {}
    for layer in layers:
        if not isinstance(layer, dict):
            raise ValueError("the engine information has no per-layer details; build with "
                             "ProfilingVerbosity.DETAILED")
        kind = str(layer.get("LayerType", "unknown"))
        for output in layer.get("Outputs", []):
            precision = _datatype(str(output.get("Format/Datatype", "")))
            counts = report.setdefault(kind, {})
            counts[precision] = counts.get(precision, 0) + 1
    return report


def _check_precision_used(report: dict[str, dict[str, int]], precision: str) -> None:
    if precision == "fp32":
        return
    used = sum(counts.get(precision, 0) for counts in report.values())
    if used == 0:
        raise RuntimeError(
            f"the engine asked to be {precision} runs no layer in {precision} (per layer type: "
            f"{report}); refusing to label it {precision}"
        )


def _parse(trt: Any, network: Any, logger: Any, onnx_bytes: bytes) -> None:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ValueError(f"TensorRT could not parse the ONNX file: {errors}")


def _pin_tag_layers_fp32(trt: Any, network: Any) -> int:
    """TensorRT 10: the layers writing the tag output run and write FP32; returns their count."""
    pinned = 0
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        for slot in range(layer.num_outputs):
            if layer.get_output(slot).name == TAG_OUTPUT:
                layer.precision = trt.float32
                layer.set_output_type(slot, trt.float32)
                pinned += 1
    return pinned


def _configure_precision(trt: Any, major: int, network: Any, config: Any, options: BuildOptions,
                         onnx_has_qdq: bool) -> None:
    """The version branch (see the module docstring)."""
    if major >= 11:
        if options.precision == "int8" and not onnx_has_qdq:
            raise ValueError("TensorRT 11 has no INT8 calibrators: give an ONNX file with "
                             "explicit QuantizeLinear/DequantizeLinear nodes")
        return  # strongly typed: the ONNX's own types decide
    if options.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    if options.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.set_flag(trt.BuilderFlag.FP16)  # layers without int8 kernels fall back to fp16
        if not onnx_has_qdq:
            if not options.calibration:
                raise ValueError("TensorRT 10 int8 without Q/DQ nodes needs calibration batches")
            from pose_core.export.tensorrt_calibrator import entropy_calibrator

            config.int8_calibrator = entropy_calibrator(trt, options.calibration,
                                                        options.calibration_cache)
    if options.tags_fp32 and options.precision != "fp32":
        if _pin_tag_layers_fp32(trt, network):
            config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)


def build_engine(
    onnx_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: BuildOptions,
    trt: Any = None,
    facts: RuntimeFacts | None = None,
) -> EngineMetadata:
    """Build, inspect and write `out` + `out.json`; returns the metadata written.

    For TensorRT 11 with precision fp16 an FP32 `onnx_path` is first converted to
    `<out>.fp16.onnx` (`onnx_fp16.convert_to_fp16`); the metadata records the SHA-256 of
    `onnx_path` itself. `trt` / `facts`: the
    tensorrt module and this machine's `RuntimeFacts` (default: imported / read through torch).
    """
    from pose_core.export.onnx_export import onnx_metadata

    trt = trt if trt is not None else importlib.import_module("tensorrt")
    major = tensorrt_major(trt)
    facts = facts if facts is not None else runtime_facts(trt)
    onnx_info = onnx_metadata(onnx_path)
    for profile in options.profiles:
        profile.check_multiple(onnx_info.size_multiple)
    onnx_sha256 = file_sha256(onnx_path)
    onnx_bytes = Path(onnx_path).read_bytes()
    onnx_has_qdq = b"QuantizeLinear" in onnx_bytes
    if major >= 11 and options.precision == "fp16" and FP16_MARK.encode() not in onnx_bytes:
        # strongly typed: the FP16 ONNX states the precision (tag output kept FP32 there)
        fp16_path = convert_to_fp16(onnx_path, Path(f"{out}.fp16.onnx"),
                                    keep_fp32=(TAG_OUTPUT,) if options.tags_fp32 else ())
        onnx_bytes = fp16_path.read_bytes()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if major >= 11:
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    _parse(trt, network, logger, onnx_bytes)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    _configure_precision(trt, major, network, config, options, onnx_has_qdq)
    for shape_profile in options.profiles:
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT_NAME, shape_profile.min, shape_profile.opt, shape_profile.max)
        config.add_optimization_profile(profile)
    cache_path = Path(options.timing_cache) if options.timing_cache else None
    if cache_path is not None:
        cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.is_file()
                                           else b"")
        config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build the engine (see its log above)")
    engine_bytes = bytes(serialized)
    engine = trt.Runtime(logger).deserialize_cuda_engine(engine_bytes)
    if engine is None:
        raise RuntimeError("TensorRT could not load the engine it just built")
    inspector = engine.create_engine_inspector()
    report = layer_precision_report(
        inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    _check_precision_used(report, options.precision)
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(engine_bytes)
    if cache_path is not None:
        cache_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    metadata = EngineMetadata(
        tensorrt_version=facts.tensorrt_version, gpu_name=facts.gpu_name,
        compute_capability=facts.compute_capability, precision=options.precision,
        profiles=tuple(options.profiles), model=onnx_info.model,
        keypoint_set=onnx_info.keypoint_set, onnx_sha256=onnx_sha256,
        checkpoint_sha256=onnx_info.checkpoint_sha256, flip_folded=onnx_info.flip_folded,
        tags_fp32=options.tags_fp32, workspace_mib=options.workspace_mib,
        layer_precisions=report,
    )
    metadata.write(out_path)
    return metadata
