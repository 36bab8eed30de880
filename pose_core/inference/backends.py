"""Network backends behind one tiny protocol.

`InferenceBackend.__call__(batch (N, 3, h, w) float32 tensor) -> tuple of output tensors`
(HigherHRNet: 2 outputs, top-down HRNet: 1). `TorchBackend` runs an `nn.Module`; ONNX Runtime
and TensorRT backends (numpy in, numpy out, wrapped to tensors) can implement the same protocol
with lazily imported runtimes.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

__all__ = ["InferenceBackend", "TorchBackend"]


class InferenceBackend(Protocol):
    """Runs the network: (N, 3, h, w) float32 -> tuple of float32 outputs on `device`."""

    device: torch.device

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


class TorchBackend:
    """PyTorch eager backend.

    Args:
        model: network in any state; it is put in eval mode on `device`.
        device: torch device.
        fp16: run in float16 (CUDA only); outputs are returned as float32.
        channels_last: NHWC memory layout for the convolutions (None = on the CPU, where oneDNN
            runs HRNet faster that way: docs/models.md, "CPU forward time"). Outputs are
            contiguous.
    """

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu", fp16: bool = False,
                 channels_last: bool | None = None):
        self.device = torch.device(device)
        if fp16 and self.device.type != "cuda":
            raise ValueError("fp16 inference needs a CUDA device")
        self.dtype = torch.float16 if fp16 else torch.float32
        self.channels_last = self.device.type == "cpu" if channels_last is None else channels_last
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, self.dtype, memory_format=self.memory_format)
        if self.device.type == "cpu":
            # Untrained or badly scaled weights drive activations into float denormals, which
            # x86 CPUs process far slower (a random-weight lite model stalled for seconds);
            # flushing them to zero changes nothing a heatmap can show. Process-wide setting.
            torch.set_flush_denormal(True)

    @torch.inference_mode()
    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = batch.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)
        outputs = self.model(batch)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return tuple(out.float().contiguous() for out in outputs)
