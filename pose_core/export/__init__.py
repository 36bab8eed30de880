"""Deployment: ONNX export (`onnx_export`), its metadata (`metadata`), the export cache
(`onnx_cache`) and the TensorRT engine builder (`tensorrt_builder`, TensorRT imported lazily).

The names below resolve lazily, so importing `pose_core.export` imports neither onnx nor
TensorRT.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ExportResult",
    "MetadataMismatch",
    "OnnxMetadata",
    "cached_onnx",
    "export_onnx",
    "onnx_metadata",
]

_EXPORTS = {
    "ExportResult": "pose_core.export.onnx_export",
    "export_onnx": "pose_core.export.onnx_export",
    "onnx_metadata": "pose_core.export.onnx_export",
    "MetadataMismatch": "pose_core.export.metadata",
    "OnnxMetadata": "pose_core.export.metadata",
    "cached_onnx": "pose_core.export.onnx_cache",
}


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'pose_core.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
