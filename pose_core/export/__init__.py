"""Deployment: ONNX export (`onnx_export`, CLI `cli`), its metadata (`metadata`), the export
and engine caches (`onnx_cache`), the FP16 ONNX for TensorRT 11 (`onnx_fp16`) and the TensorRT
engine builder (`tensorrt_builder`, `tensorrt_calibrator`, `engine_metadata`, `tensorrt_cli`).

Import the modules themselves; importing this package imports neither onnx nor TensorRT.
"""

from __future__ import annotations

__all__: list[str] = []
