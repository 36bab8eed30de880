"""TensorRT 10 INT8 entropy calibrator over prepared batches (TensorRT 11 has no calibrators).

`entropy_calibrator(trt, batches, cache_path)` subclasses `trt.IInt8EntropyCalibrator2` at call
time (TensorRT is never imported here) and feeds it the batches (N, 3, H, W) float32 of
`tensorrt_builder.calibration_batches` through one CUDA buffer (torch). The calibration cache is
read when present and written after calibration.

NEVER RUN against a real TensorRT; exercised only against the stand-in module of
test/core/test_tensorrt_boundary.py (without CUDA: the batches are then handed over as host
arrays, which only the stand-in accepts).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["entropy_calibrator"]


def entropy_calibrator(trt: Any, batches: Sequence[np.ndarray],
                       cache_path: str | os.PathLike[str] | None) -> Any:
    """An `IInt8EntropyCalibrator2` instance over `batches` (all of one batch size)."""
    sizes = {int(b.shape[0]) for b in batches}
    if len(sizes) != 1:
        raise ValueError(f"calibration batches must share one batch size, got {sorted(sizes)}")
    batch_size = sizes.pop()
    cache = Path(cache_path) if cache_path else None

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.remaining = list(batches)
            self.device_buffer: Any = None
            self.served = 0

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: Sequence[str]) -> list[int] | None:
            if not self.remaining:
                return None
            array = np.ascontiguousarray(self.remaining.pop(0), dtype=np.float32)
            self.served += 1
            import torch

            if not torch.cuda.is_available():
                self.device_buffer = array
                return [array.ctypes.data]
            self.device_buffer = torch.from_numpy(array).cuda()
            return [int(self.device_buffer.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache is not None and cache.is_file() else None

        def write_calibration_cache(self, data: bytes) -> None:
            if cache is not None:
                cache.write_bytes(bytes(data))

    return EntropyCalibrator()
