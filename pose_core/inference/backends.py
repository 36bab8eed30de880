"""Network backends behind one tiny protocol.

`InferenceBackend.__call__(batch (N, 3, h, w) float32 tensor) -> tuple of output tensors`
(HigherHRNet: 2 outputs, top-down HRNet: 1). `TorchBackend` runs an `nn.Module`;
`onnxruntime_backend.OnnxRuntimeBackend` and `tensorrt_backend.TensorRTBackend` run exported
files with lazily imported runtimes; `backend_factory.build_backend` picks one by name. A backend
whose graph holds the flip test (`flip_folded = True`) returns 2N rows for N input rows: the
normal passes, then the mirrored ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

__all__ = ["PRECISIONS", "InferenceBackend", "TorchBackend"]

PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}


class InferenceBackend(Protocol):
    """Runs the network: (N, 3, h, w) float32 -> tuple of float32 outputs on `device`."""

    device: torch.device

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


class TorchBackend:
    """PyTorch eager backend (optionally compiled).

    Args:
        model: network in any state; it is put in eval mode on `device`.
        device: torch device.
        fp16: run in float16 (CUDA only); outputs are returned as float32. Same as
            `precision="fp16"`.
        channels_last: NHWC memory layout for the convolutions (None = on the CPU, where oneDNN
            runs HRNet faster that way: docs/models.md, "CPU forward time"). Outputs are
            contiguous.
        precision: "fp32", "fp16" (CUDA only) or "bf16" (CUDA, or CPUs with bf16 kernels);
            None: from `fp16`.
        compile: wrap the model in `torch.compile` (off by default; the first call of each
            input shape compiles).
        cuda_graphs: CUDA only: `torch.compile(mode="reduce-overhead")`, which records CUDA
            graphs per input shape (fixed camera shapes); off by default.
    """

    flip_folded = False
    uses_torch_threads = True  # its CPU forward runs on torch's intra-op pool

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu", fp16: bool = False,
                 channels_last: bool | None = None, *, precision: str | None = None,
                 compile: bool = False, cuda_graphs: bool = False):
        self.device = torch.device(device)
        precision = precision or ("fp16" if fp16 else "fp32")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}: {precision!r}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ValueError("fp16 inference needs a CUDA device")
        if cuda_graphs and self.device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device")
        self.precision = precision
        self.dtype = PRECISIONS[precision]
        self.channels_last = self.device.type == "cpu" if channels_last is None else channels_last
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, self.dtype, memory_format=self.memory_format)
        self.network: Callable[[torch.Tensor], object] = self.model
        if compile or cuda_graphs:
            mode = "reduce-overhead" if cuda_graphs else None
            self.network = torch.compile(self.model, mode=mode, dynamic=False)
        if self.device.type == "cpu":
            # Untrained or badly scaled weights drive activations into float denormals, which
            # x86 CPUs process far slower (a random-weight lite model stalled for seconds);
            # flushing them to zero changes nothing a heatmap can show. Process-wide setting.
            torch.set_flush_denormal(True)

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = batch.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        outputs = self.network(batch)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return tuple(out.float().contiguous() for out in outputs)  # type: ignore[union-attr]
