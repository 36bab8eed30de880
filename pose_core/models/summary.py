"""Parameter and multiply-add counts of the registered networks.

Usage: `python -m pose_core.models.summary [NAME ...] [--input WxH]` or `pose-model-summary`.

MACs are "true" multiply-adds of convolutions only (BN, ReLU, additions and upsampling are not
counted), measured with forward hooks on one (1, 3, H, W) input:
- Conv2d: H_out * W_out * C_out * (C_in / groups) * kh * kw;
- ConvTranspose2d: H_in * W_in * C_in * (C_out / groups) * kh * kw (every input pixel is
  multiplied into a kh x kw patch; the official counter's weight x output-size rule overcounts a
  stride-2 deconv by 4x);
- Linear: in_features * out_features per row.
The count is shape-only, so it runs on the "meta" device without computing anything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ModelSummary", "count_parameters", "count_macs", "summarize", "main"]


@dataclass(frozen=True)
class ModelSummary:
    """Counts for one network at one input size (w, h)."""

    name: str
    input_size: tuple[int, int]
    parameters: int
    macs: int


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def _macs_of(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        per_output = (module.in_channels // module.groups) * kh * kw
        return output.numel() * per_output
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        per_input = (module.out_channels // module.groups) * kh * kw
        return inputs[0].numel() * per_input
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def count_macs(model: nn.Module, input_size: tuple[int, int]) -> int:
    """Multiply-adds of one forward pass on a (1, 3, h, w) input; `input_size` is (w, h).

    The model is copied to the meta device, so this is fast and allocates nothing.
    """
    width, height = input_size
    meta_model = _to_meta(model)
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += _macs_of(module, inputs, output)

    handles = [
        m.register_forward_hook(hook)
        for m in meta_model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    ]
    try:
        meta_model.eval()
        with torch.no_grad():
            meta_model(torch.empty(1, 3, height, width, device="meta"))
    finally:
        for handle in handles:
            handle.remove()
    return total


def _to_meta(model: nn.Module) -> nn.Module:
    import copy

    clone = copy.deepcopy(model) if next(model.parameters()).device.type != "meta" else model
    return clone.to("meta")


def summarize(name: str, input_size: tuple[int, int] | None = None) -> ModelSummary:
    """Counts for a registered model at its own input size (or `input_size`, (w, h))."""
    from pose_core.models import build_model, model_info

    info = model_info(name)
    size = input_size or info.input_size
    with torch.device("meta"):
        model = build_model(name)
    return ModelSummary(name, size, count_parameters(model), count_macs(model, size))


def _parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height or width)


def main(argv: Sequence[str] | None = None) -> int:
    """Print a table of parameters and MACs (10^9 and 2^30 units) per model."""
    from pose_core.models import MODEL_NAMES

    parser = argparse.ArgumentParser(
        prog="pose-model-summary", description=__doc__.splitlines()[0]
    )
    parser.add_argument("names", nargs="*", help=f"model names (default: all): {MODEL_NAMES}")
    parser.add_argument("--input", type=_parse_size, default=None, help="input size WxH")
    args = parser.parse_args(argv)
    names = args.names or list(MODEL_NAMES)
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; known: {', '.join(MODEL_NAMES)}")
    header = (
        f"{'model':<32} {'input (w x h)':>13} {'params':>12} {'GMACs (1e9)':>12} "
        f"{'GMACs (2^30)':>13}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        s = summarize(name, args.input)
        size = f"{s.input_size[0]}x{s.input_size[1]}"
        print(
            f"{s.name:<32} {size:>13} {s.parameters:>12,} {s.macs / 1e9:>12.3f} "
            f"{s.macs / 2**30:>13.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
