"""Backends by name: `build_backend("torch" | "onnxruntime" | "tensorrt" | "auto", model,
checkpoint, ...)`; "auto" is torch on CUDA and `CPU_DEFAULT_BACKEND` on the CPU (torch, with a
warning, when that backend cannot be built for the model, and for random weights).

- "torch": the registered network with the checkpoint's weights (`TorchBackend`; precision,
  channels-last, torch.compile / CUDA graphs from `BackendOptions`).
- "onnxruntime": `options.onnx_path` when given (its metadata must name the model, keypoint set,
  head layout and checkpoint), else the export cache (`pose_core.export.onnx_cache`: exported on
  first use, reused after; precision "int8": its statically quantized form, also cached)
  -> `OnnxRuntimeBackend`.
- "tensorrt": `options.engine_path` with its metadata file -> `TensorRTBackend` (TensorRT is
  imported only there); `engine_policy` "error" | "rebuild" decides what a stale engine does.

Weights: `checkpoint=None` means the shipped weights for `DEFAULT_MODEL`; for another model the
torch backend keeps random weights (with a warning) and the exported backends refuse (an export
of random weights could not be cached or checked against anything).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pose_core.inference.backends import PRECISIONS, InferenceBackend, TorchBackend

__all__ = [
    "BACKEND_CHOICES",
    "BACKEND_NAMES",
    "CPU_DEFAULT_BACKEND",
    "BackendOptions",
    "add_backend_arguments",
    "backend_options_from_args",
    "build_backend",
    "default_backend",
    "resolve_checkpoint",
]

BACKEND_NAMES: tuple[str, ...] = ("torch", "onnxruntime", "tensorrt")
BACKEND_CHOICES: tuple[str, ...] = ("auto", *BACKEND_NAMES)
# What "auto" runs on the CPU: the faster of torch eager and ONNX Runtime for the W32-512
# forward measured side by side on the project's CPU machine (docs/deployment.md).
CPU_DEFAULT_BACKEND = "onnxruntime"


def default_backend(device: str) -> str:
    """What backend "auto" means on `device`: torch on CUDA, `CPU_DEFAULT_BACKEND` on the CPU."""
    return "torch" if str(device).startswith("cuda") else CPU_DEFAULT_BACKEND


@dataclass(frozen=True)
class BackendOptions:
    """Options of the named backends (each backend reads its own; see the module docstring).

    Attributes:
        precision: "fp32" | "fp16" | "bf16" (torch; the TensorRT engine's own precision is
            checked against it when not "fp32") | "int8" (onnxruntime: the statically
            quantized graph, `pose_core.export.onnx_int8`, from the cache unless `onnx_path`).
        channels_last: torch: NHWC convolutions (None: on the CPU).
        compile: torch: torch.compile.
        cuda_graphs: torch on CUDA: CUDA graphs through torch.compile's reduce-overhead mode.
        providers: onnxruntime: short provider names ("cpu", "cuda", "tensorrt") in order of
            preference (empty: the best available).
        intra_op_threads / inter_op_threads: onnxruntime thread counts (None: its default).
        onnx_path: onnxruntime: run this file instead of the cached export.
        flip_folded: onnxruntime: export / expect the flip test inside the graph.
        cache_dir: folder of the ONNX export cache (None: `default_cache_dir()`).
        engine_path: tensorrt: the serialized engine (its metadata beside it); None: the
            engine cache (`onnx_cache.engine_cache_path`: model, checkpoint, precision).
        engine_policy: tensorrt: "error" (stale engine -> error saying how to rebuild) or
            "rebuild" (rebuild it from `onnx_path` / the cached export).
    """

    precision: str = "fp32"
    channels_last: bool | None = None
    compile: bool = False
    cuda_graphs: bool = False
    providers: tuple[str, ...] = ()
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    onnx_path: str | None = None
    flip_folded: bool = False
    cache_dir: str | None = None
    engine_path: str | None = None
    engine_policy: Literal["error", "rebuild"] = "error"

    def __post_init__(self) -> None:
        if self.precision not in (*PRECISIONS, "int8"):
            raise ValueError(f"precision must be one of {', '.join((*PRECISIONS, 'int8'))}")
        if self.engine_policy not in ("error", "rebuild"):
            raise ValueError("engine_policy must be 'error' or 'rebuild'")
        object.__setattr__(self, "providers", tuple(self.providers))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> BackendOptions:
        """From a dict (TypeError naming unknown keys)."""
        values = dict(values or {})
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown backend options: {', '.join(unknown)}")
        return cls(**values)


def resolve_checkpoint(model_name: str, checkpoint: str | os.PathLike[str] | None) -> Path | None:
    """The weights file to use: the given one, the shipped one of `DEFAULT_MODEL`, or None
    (random weights, with a warning) for another model."""
    if checkpoint is not None:
        return Path(checkpoint)
    from pose_core.default_model import (
        DEFAULT_MODEL,
        default_checkpoint_path,
        warn_synthetic_only,
    )

    if model_name != DEFAULT_MODEL:
        warnings.warn(
            f"PoseEstimator({model_name!r}) without a checkpoint keeps RANDOM weights",
            stacklevel=4,
        )
        return None
    path = default_checkpoint_path()  # raises FileNotFoundError with a message
    warn_synthetic_only()
    return path


def build_backend(
    name: str,
    model_name: str,
    checkpoint: str | os.PathLike[str] | None,
    device: str = "cpu",
    options: BackendOptions | Mapping[str, Any] | None = None,
) -> InferenceBackend:
    """The backend `name` running `model_name` with `checkpoint` (see the module docstring)."""
    if not isinstance(options, BackendOptions):
        options = BackendOptions.from_mapping(options)
    if name not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(BACKEND_CHOICES)}")
    weights = resolve_checkpoint(model_name, checkpoint)
    if name == "auto":  # random weights cannot be exported: torch then
        name = default_backend(device) if weights is not None else "torch"
        if name != "torch":
            try:
                return build_backend(name, model_name, weights, device, options)
            except Exception as error:  # noqa: BLE001 - auto means the fastest that works
                warnings.warn(f"backend auto: {name} failed for {model_name} "
                              f"({type(error).__name__}: {error}); running torch", stacklevel=2)
                name = "torch"
        if name == "torch" and options.precision == "int8":  # an onnxruntime-only precision
            options = dataclasses.replace(options, precision="fp32")
    if name == "torch":
        if options.precision == "int8":
            raise ValueError("precision int8 is an onnxruntime graph; the torch backend runs "
                             "fp32 / fp16 / bf16 (use backend onnxruntime)")
        from pose_core.models import build_model
        from pose_core.models.checkpoint import load_checkpoint

        model = build_model(model_name)
        if weights is not None:
            load_checkpoint(model, weights)
        return TorchBackend(model, device, channels_last=options.channels_last,
                            precision=options.precision, compile=options.compile,
                            cuda_graphs=options.cuda_graphs)
    if weights is None:
        raise ValueError(f"the {name} backend needs a checkpoint for {model_name} (an export "
                         "of random weights is neither cached nor checked)")
    if name == "onnxruntime":
        from pose_core.inference.onnxruntime_backend import OnnxRuntimeBackend

        if options.precision not in ("fp32", "int8"):
            raise ValueError(f"the onnxruntime backend runs fp32 or int8 graphs, not "
                             f"{options.precision} (fp16 / bf16: torch or tensorrt on CUDA)")
        return OnnxRuntimeBackend(_onnx_file(model_name, weights, options), options.providers,
                                  options.intra_op_threads, options.inter_op_threads)
    from pose_core.inference.tensorrt_backend import TensorRTBackend

    from pose_core.export.onnx_cache import engine_cache_path

    engine_path = options.engine_path or engine_cache_path(
        model_name, weights, options.precision, options.cache_dir)
    return TensorRTBackend.for_model(
        model_name, engine_path, lambda: _onnx_file(model_name, weights, options), options,
        device,
    )


def _onnx_file(model_name: str, weights: Path, options: BackendOptions) -> Path:
    """The ONNX file of the model: `options.onnx_path` (checked) or the cached export."""
    from pose_core.export.metadata import file_sha256
    from pose_core.export.onnx_cache import cached_onnx
    from pose_core.export.onnx_export import onnx_metadata
    from pose_core.models import model_info

    if options.onnx_path is None:
        return cached_onnx(model_name, weights, flip_folded=options.flip_folded,
                           cache_dir=options.cache_dir,
                           precision="int8" if options.precision == "int8" else "fp32")
    path = Path(options.onnx_path)
    onnx_metadata(path).check_matches(model_info(model_name), file_sha256(weights),
                                      source=str(path))
    return path


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """--backend, --precision, --onnx, --onnx-threads, --engine, --engine-policy (for the CLIs)."""
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                        help=f"network backend (auto: torch on CUDA, {CPU_DEFAULT_BACKEND} on "
                        "the CPU when the weights can be exported)")
    parser.add_argument("--precision", choices=(*PRECISIONS, "int8"), default="fp32",
                        help="torch backend precision (fp16: CUDA only); int8: the quantized "
                        "onnxruntime graph")
    parser.add_argument("--onnx", default=None,
                        help="onnxruntime: this exported file instead of the export cache")
    parser.add_argument("--onnx-threads", type=int, default=None,
                        help="onnxruntime intra-op threads (default: its own)")
    parser.add_argument("--engine", default=None, help="tensorrt: serialized engine file")
    parser.add_argument("--engine-policy", choices=("error", "rebuild"), default="error",
                        help="tensorrt: a stale engine is an error or is rebuilt")


def backend_options_from_args(args: argparse.Namespace) -> BackendOptions:
    """The `BackendOptions` of `add_backend_arguments`' options."""
    return BackendOptions(precision=args.precision, onnx_path=args.onnx,
                          intra_op_threads=args.onnx_threads, engine_path=args.engine,
                          engine_policy=args.engine_policy)
