"""ONNX Runtime backend: runs a `pose-export onnx` file behind `InferenceBackend`.

`OnnxRuntimeBackend(path)(batch (N, 3, h, w) float32 tensor) -> tuple of float32 CPU tensors`
shaped as the model's `HeadLayout` says (2N rows when the file has the flip test folded in:
`flip_folded`). onnxruntime is imported when a backend is built, never at module import.

Execution providers by short name: "cpu" (CPUExecutionProvider), "cuda" (CUDAExecutionProvider),
"tensorrt" (TensorrtExecutionProvider); the default takes, in that order of preference,
TensorRT, CUDA, then CPU, among those the installed onnxruntime has. Asking for a provider the
installed onnxruntime lacks is an error that names the ones it has.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pose_core.export.metadata import OnnxMetadata

__all__ = ["PROVIDER_NAMES", "OnnxRuntimeBackend", "resolve_providers"]

PROVIDER_NAMES: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


def resolve_providers(requested: Sequence[str] | None, available: Sequence[str]) -> list[str]:
    """Provider class names for short names (None: every available one, best first)."""
    if not requested:
        return [full for full in PROVIDER_NAMES.values() if full in available]
    chosen = []
    for name in requested:
        full = PROVIDER_NAMES.get(name, name)
        if full not in available:
            raise ValueError(f"onnxruntime execution provider {name!r} is not available here; "
                             f"available: {', '.join(available)}")
        chosen.append(full)
    return chosen


class OnnxRuntimeBackend:
    """Runs an exported ONNX file with ONNX Runtime.

    Args:
        path: ONNX file written by `pose-export onnx` (its metadata is read: `metadata`).
        providers: short provider names in order of preference (None: best available).
        intra_op_threads / inter_op_threads: ONNX Runtime thread counts (None: its default).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        providers: Sequence[str] | None = None,
        intra_op_threads: int | None = None,
        inter_op_threads: int | None = None,
    ):
        import onnxruntime as ort

        from pose_core.export.onnx_export import onnx_metadata

        self.path = Path(path)
        self.metadata: OnnxMetadata = onnx_metadata(self.path)
        self.flip_folded = self.metadata.flip_folded
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting worker threads between runs: on a robot's CPU the camera driver, DDS
        # and the node's other threads share the cores with the network.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if intra_op_threads is not None:
            options.intra_op_num_threads = int(intra_op_threads)
        if inter_op_threads is not None:
            options.inter_op_num_threads = int(inter_op_threads)
        self.providers = resolve_providers(providers, ort.get_available_providers())
        session = ort.InferenceSession(str(self.path), options, providers=self.providers)
        self.input_name = session.get_inputs()[0].name
        # The session (and its C++ thread pool) is released at interpreter exit at the latest,
        # while the interpreter still runs: destroyed during the final teardown (a node stopped
        # by SIGINT keeps its estimator) its threads abort the process ("terminate called
        # without an active exception").
        self._sessions = [session]
        weakref.finalize(self, self._sessions.clear)
        self.device = torch.device("cpu")

    @property
    def session(self) -> Any:
        """The `onnxruntime.InferenceSession`."""
        if not self._sessions:
            raise RuntimeError("the ONNX Runtime session was released (interpreter exit)")
        return self._sessions[0]

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        array = np.ascontiguousarray(batch.detach().to("cpu", torch.float32).numpy())
        outputs = self.session.run(None, {self.input_name: array})
        return tuple(torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))
                     for out in outputs)
