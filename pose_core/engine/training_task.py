"""The training-task seam: what the loop needs from a task, and the one-network adapter.

A task owns its networks and its forward pass: `train_step(networks, batch, device, forward)`
may run several views and several networks (a semi-supervised teacher and student, two
networks that teach each other) and returns the loss terms. The loop (`trainer.Trainer`)
optimises every network's parameters and checkpoints them all; `MAIN_NETWORK` is the one it
validates and writes as the checkpoint's `model`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

__all__ = ["MAIN_NETWORK", "MONITOR_PREFIX", "Forward", "TrainingTask", "SingleNetworkTask", "as_training_task"]

MAIN_NETWORK = "model"
# train_step terms whose key starts with this are logged but not optimised (e.g. a collapse
# indicator); return them detached
MONITOR_PREFIX = "monitor/"

# forward(network, inputs) -> outputs: the loop's forward (memory format, autocast, float outputs)
Forward = Callable[[nn.Module, Tensor], Any]


class TrainingTask(Protocol):
    """What the loop needs from a task.

    `build_networks()` returns the networks by name, `MAIN_NETWORK` ("model") among them;
    `train_step(networks, batch, device, forward)` runs the task's forward passes (each
    through `forward(network, inputs)`) and returns the loss terms (scalar tensors whose sum
    is minimised); `validate(model, device)` scores the main network (rank 0 only) or returns
    None when there is no validation set.
    """

    def build_networks(self) -> dict[str, nn.Module]: ...

    def train_dataset(self) -> Dataset: ...

    def train_step(
        self,
        networks: Mapping[str, nn.Module],
        batch: Mapping[str, Any],
        device: torch.device,
        forward: Forward,
    ) -> dict[str, Tensor]: ...

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float] | None: ...


class SingleNetworkTask:
    """Adapts a one-network task (`build_model`, `inputs`, `loss`, `train_dataset`,
    `validate`) to `TrainingTask`: one forward of the main network on `inputs(batch)`."""

    def __init__(self, task: Any) -> None:
        self.task = task

    def build_networks(self) -> dict[str, nn.Module]:
        return {MAIN_NETWORK: self.task.build_model()}

    def train_dataset(self) -> Dataset:
        return self.task.train_dataset()

    def train_step(
        self,
        networks: Mapping[str, nn.Module],
        batch: Mapping[str, Any],
        device: torch.device,
        forward: Forward,
    ) -> dict[str, Tensor]:
        outputs = forward(networks[MAIN_NETWORK], self.task.inputs(batch, device))
        return self.task.loss(outputs, batch, device)

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float] | None:
        return self.task.validate(model, device)


def as_training_task(task: Any) -> TrainingTask:
    """`task` itself when it has `build_networks` and `train_step`, else `SingleNetworkTask`."""
    if hasattr(task, "build_networks") and hasattr(task, "train_step"):
        return task
    return SingleNetworkTask(task)
