"""Seeded order-one random weights for timing networks that have no checkpoint here.

The official random initialisation (conv weights N(0, 0.001^2)) drives eval-mode activations
into float denormals, which x86 CPUs process far slower, so timings of such a network say
nothing about a trained one. Order one: conv weights N(0, (0.5 / sqrt(fan_in))^2), BN gamma
near 1, beta / running mean near 0 (sd 0.1), running variance in [0.5, 1.5).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

__all__ = ["fill_order_one_weights_", "write_order_one_checkpoint"]


def fill_order_one_weights_(model: torch.nn.Module, seed: int = 0) -> None:
    """In place (see the module docstring)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if key.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif tensor.dim() >= 2:
                fan = tensor.numel() // tensor.shape[0]
                scale = 0.5 / math.sqrt(fan)
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * scale)
            elif key.endswith(".weight"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1 + 1.0)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)


def write_order_one_checkpoint(model_name: str, folder: str | os.PathLike[str],
                               seed: int = 0) -> Path:
    """`<folder>/<model>_order_one_seed<seed>.pt` (a plain state_dict), written once."""
    from pose_core.models import build_model

    path = Path(folder) / f"{model_name}_order_one_seed{seed}.pt"
    if not path.is_file():
        model = build_model(model_name)
        fill_order_one_weights_(model, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    return path
