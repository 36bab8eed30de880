"""Optimiser and learning-rate schedule builders (official HigherHRNet / HRNet recipe).

Official recipe (HigherHRNet `lib/utils/utils.py::get_optimizer` and `tools/dist_train.py`,
the `experiments/*.yaml` TRAIN section): Adam, lr 1e-3, no weight decay (the yaml lists one but
the code never passes it to Adam), MultiStepLR with milestones [200, 260] and gamma 0.1 stepped
per epoch. An optional linear warm-up over the first iterations is added on top.

The schedule is one `LambdaLR` stepped once per *iteration*; its factor is
`warmup(iteration) * gamma ** (number of milestones <= epoch)` with
`epoch = iteration // iterations_per_epoch`, which is exactly MultiStepLR-per-epoch when the
warm-up is off, and keeps a single resumable `state_dict`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable

import torch

from pose_core.engine.config import OptimConfig

__all__ = ["build_optimizer", "build_scheduler", "EpochStepSchedule"]


def build_optimizer(
    parameters: Iterable[torch.nn.Parameter], config: OptimConfig
) -> torch.optim.Optimizer:
    """Adam / AdamW over the trainable parameters with the configured lr and weight decay."""
    params = [p for p in parameters if p.requires_grad]
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


@dataclass(frozen=True)
class EpochStepSchedule:
    """LR multiplier as a function of the iteration: warm-up, then per-epoch milestones.

    Attributes:
        iterations_per_epoch: optimiser steps per epoch.
        milestones: epochs at which the LR is multiplied by `gamma`.
        gamma: the multiplier.
        warmup_iters: linear warm-up length (0 = none).
        warmup_factor: multiplier at iteration 0.
    """

    iterations_per_epoch: int
    milestones: tuple[int, ...]
    gamma: float
    warmup_iters: int = 0
    warmup_factor: float = 0.001

    def __call__(self, iteration: int) -> float:
        epoch = iteration // max(1, self.iterations_per_epoch)
        factor = self.gamma ** bisect.bisect_right(sorted(self.milestones), epoch)
        if self.warmup_iters > 0 and iteration < self.warmup_iters:
            alpha = iteration / self.warmup_iters
            factor *= self.warmup_factor * (1.0 - alpha) + alpha
        return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, iterations_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-iteration LambdaLR implementing warm-up + MultiStepLR-per-epoch."""
    schedule = EpochStepSchedule(
        iterations_per_epoch=iterations_per_epoch,
        milestones=tuple(config.lr_milestones),
        gamma=config.lr_gamma,
        warmup_iters=config.warmup_iters,
        warmup_factor=config.warmup_factor,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
