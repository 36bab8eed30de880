"""TensorRT engine metadata and shape profiles (pure Python: no TensorRT needed).

An engine file `x.engine` is written with `x.engine.json` beside it (`EngineMetadata`): TensorRT
version, GPU name and compute capability, precision, optimisation profiles, model name, keypoint
set, SHA-256 of the ONNX file, the precision report per layer type. `check_engine` compares it
with what runs now (`RuntimeFacts`) and with the model asked for, and raises `EngineMismatch`
naming every differing field and the command that rebuilds the engine.

Shapes are NCHW of the network input `image`: (N, 3, H, W).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pose_core.export.metadata import read_json_file

__all__ = [
    "ENGINE_METADATA_VERSION",
    "EngineMetadata",
    "EngineMismatch",
    "RuntimeFacts",
    "ShapeProfile",
    "camera_profile",
    "check_engine",
    "check_shape",
    "metadata_path",
    "rebuild_command",
]

ENGINE_METADATA_VERSION = "1"
Shape = tuple[int, int, int, int]


class EngineMismatch(ValueError):
    """An engine that cannot run here or is not the model asked for (the message says how to
    rebuild it)."""


@dataclass(frozen=True)
class ShapeProfile:
    """One optimisation profile: min <= opt <= max per dimension, H and W multiples of 64."""

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        for name in ("min", "opt", "max"):
            shape = tuple(int(v) for v in getattr(self, name))
            if len(shape) != 4 or shape[1] != 3 or min(shape) < 1:
                raise ValueError(f"profile {name} shape {shape} is not (N, 3, H, W)")
            object.__setattr__(self, name, shape)
        if not all(a <= b <= c for a, b, c in zip(self.min, self.opt, self.max)):
            raise ValueError(f"profile needs min <= opt <= max: {self.min} {self.opt} {self.max}")

    def check_multiple(self, multiple: int) -> None:
        for shape in (self.min, self.opt, self.max):
            if shape[2] % multiple or shape[3] % multiple:
                raise ValueError(f"profile shape {shape}: H and W must be multiples of {multiple}")

    def contains(self, shape: Sequence[int]) -> bool:
        return len(shape) == 4 and all(a <= s <= b for a, s, b in zip(self.min, shape, self.max))

    def describe(self) -> str:
        return "x".join(map(str, self.min)) + ".." + "x".join(map(str, self.max))

    @classmethod
    def parse(cls, text: str) -> ShapeProfile:
        """"NxCxHxW" (fixed) or "min:opt:max" with each part "NxCxHxW"."""
        parts = [tuple(int(v) for v in part.lower().split("x")) for part in text.split(":")]
        if len(parts) == 1:
            parts = parts * 3
        if len(parts) != 3:
            raise ValueError(f"profile {text!r} is not SHAPE or MIN:OPT:MAX")
        return cls(*parts)  # type: ignore[arg-type]


def camera_profile(frame_wh: tuple[int, int], input_size: int, batch: int = 1,
                   multiple: int = 64) -> ShapeProfile:
    """Fixed-shape profile of a camera: the short side becomes `input_size`, the long side
    keeps the aspect ratio and is rounded up to `multiple` (the bottom-up resize rule)."""
    width, height = frame_wh
    if input_size % multiple:
        raise ValueError(f"input size {input_size} is not a multiple of {multiple}")
    short, long_ = sorted((width, height))
    long_side = int(math.ceil(input_size * long_ / short / multiple) * multiple)
    h, w = (input_size, long_side) if width >= height else (long_side, input_size)
    shape = (int(batch), 3, h, w)
    return ShapeProfile(shape, shape, shape)


@dataclass(frozen=True)
class RuntimeFacts:
    """What the engine must match at load time."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str


@dataclass(frozen=True)
class EngineMetadata:
    """What an engine was built from and for (written as JSON beside the engine)."""

    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profiles: tuple[ShapeProfile, ...]
    model: str
    keypoint_set: str
    onnx_sha256: str
    checkpoint_sha256: str
    flip_folded: bool
    tags_fp32: bool
    workspace_mib: int
    layer_precisions: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    version: str = ENGINE_METADATA_VERSION

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["profiles"] = [[list(p.min), list(p.opt), list(p.max)] for p in self.profiles]
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "metadata") -> EngineMetadata:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - set(data) - {"layer_precisions"})
        if missing:
            raise EngineMismatch(f"{source} lacks {', '.join(missing)}: not written by "
                                 "`pose-export tensorrt`; rebuild the engine")
        values = {k: v for k, v in data.items() if k in names}
        values["profiles"] = tuple(ShapeProfile(*p) for p in data["profiles"])
        return cls(**values)

    def write(self, engine_path: str | os.PathLike[str]) -> Path:
        path = metadata_path(engine_path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def read(cls, engine_path: str | os.PathLike[str]) -> EngineMetadata:
        path = metadata_path(engine_path)
        if not path.is_file():
            raise EngineMismatch(f"engine {engine_path} has no metadata file {path}; rebuild it "
                                 "with `pose-export tensorrt`")
        return cls.from_dict(read_json_file(path), source=str(path))


def metadata_path(engine_path: str | os.PathLike[str]) -> Path:
    """`<engine>.json`."""
    return Path(f"{engine_path}.json")


def rebuild_command(metadata: EngineMetadata, engine_path: str | os.PathLike[str]) -> str:
    profiles = " ".join(
        "--profile " + ":".join("x".join(map(str, s)) for s in (p.min, p.opt, p.max))
        for p in metadata.profiles
    )
    return (f"pose-export tensorrt --onnx MODEL.onnx --out {engine_path} --precision "
            f"{metadata.precision} {profiles}".strip())


def check_engine(
    metadata: EngineMetadata,
    engine_path: str | os.PathLike[str],
    running: RuntimeFacts,
    model: str,
    keypoint_set: str,
    onnx_sha256: str | None = None,
    precision: str | None = None,
) -> None:
    """EngineMismatch naming every field that differs (None skips that comparison)."""
    expected: dict[str, Any] = {
        "version": ENGINE_METADATA_VERSION,
        "tensorrt_version": running.tensorrt_version,
        "gpu_name": running.gpu_name,
        "compute_capability": running.compute_capability,
        "model": model,
        "keypoint_set": keypoint_set,
        "onnx_sha256": onnx_sha256,
        "precision": precision,
    }
    problems = [
        f"{name}: engine has {getattr(metadata, name)!r}, here {value!r}"
        for name, value in expected.items()
        if value is not None and getattr(metadata, name) != value
    ]
    if problems:
        raise EngineMismatch(
            f"TensorRT engine {engine_path} does not match ({'; '.join(problems)}). Rebuild it "
            f"here: {rebuild_command(metadata, engine_path)} (or set engine_policy: rebuild)"
        )


def check_shape(metadata: EngineMetadata, shape: Sequence[int],
                engine_path: str | os.PathLike[str]) -> int:
    """Index of the first profile holding `shape`; EngineMismatch naming the ranges if none."""
    for index, profile in enumerate(metadata.profiles):
        if profile.contains(shape):
            return index
    ranges = ", ".join(p.describe() for p in metadata.profiles)
    raise EngineMismatch(
        f"input shape {'x'.join(map(str, shape))} is outside the shape range the engine "
        f"{engine_path} was built for ({ranges}); rebuild it with a profile that holds it, e.g. "
        f"pose-export tensorrt ... --profile {'x'.join(map(str, shape))}"
    )
