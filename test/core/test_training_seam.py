"""The training-task seam: a task owns its forward pass, may run two views and two networks,
and the loop trains and checkpoints every network (semi-supervised training builds on this)."""

from __future__ import annotations

import pathlib
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from pose_core.engine.checkpointing import load_training_checkpoint
from pose_core.engine.trainer import MAIN_NETWORK, SingleNetworkTask, Trainer, as_training_task

from test_trainer import CPU, ToyDataset, ToyTask, toy_config


class TwoNetworkTask:
    """Student ("model") and a second network ("partner"), each supervised on its own view and
    pulled together by a consistency term between the views' predictions (PoseDual's shape)."""

    def __init__(self) -> None:
        self.forwards = 0

    def build_networks(self) -> dict[str, nn.Module]:
        torch.manual_seed(1)
        return {
            MAIN_NETWORK: nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                                        nn.Conv2d(4, 1, 1)),
            "partner": nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(4, 1, 1)),
        }

    def train_dataset(self) -> ToyDataset:
        return ToyDataset()

    def train_step(
        self, networks: Mapping[str, nn.Module], batch: Mapping[str, Any],
        device: torch.device, forward: Any,
    ) -> dict[str, Tensor]:
        image = batch["image"].to(device)
        target = batch["target"].to(device)
        easy = forward(networks[MAIN_NETWORK], image)
        hard = forward(networks["partner"], torch.flip(image, dims=[3]))
        self.forwards += 2
        return {
            "supervised": ((easy - target) ** 2).mean(),
            "partner": ((torch.flip(hard, dims=[3]) - target) ** 2).mean(),
            "consistency": ((easy - torch.flip(hard, dims=[3]).detach()) ** 2).mean(),
        }

    def validate(self, model: nn.Module, device: torch.device) -> None:
        return None


def test_one_network_tasks_are_adapted() -> None:
    assert isinstance(as_training_task(ToyTask()), SingleNetworkTask)
    task = TwoNetworkTask()
    assert as_training_task(task) is task


def test_two_networks_are_trained_checkpointed_and_resumed(tmp_path: pathlib.Path) -> None:
    task = TwoNetworkTask()
    trainer = Trainer(toy_config(epochs=1), task, tmp_path, context=CPU)
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in trainer.networks.items()}
    result = trainer.train()
    assert task.forwards == 2 * trainer.iterations_per_epoch
    for key, network in trainer.networks.items():  # both networks moved
        changed = [not torch.equal(a, b) for a, b in zip(before[key], network.parameters())]
        assert all(changed), key
    payload = load_training_checkpoint(tmp_path / "last.pt")
    assert set(payload["networks"]) == {"partner"}
    for name, value in trainer.networks["partner"].state_dict().items():
        assert torch.equal(payload["networks"]["partner"][name], value)
    resumed = Trainer(toy_config(epochs=1), TwoNetworkTask(), tmp_path, context=CPU)
    assert resumed.resume()
    for key in ("model", "partner"):
        for a, b in zip(trainer.networks[key].parameters(),
                        resumed.networks[key].parameters()):
            assert torch.equal(a, b)
    assert result.step == trainer.step


def test_single_network_checkpoints_have_no_networks_entry(tmp_path: pathlib.Path) -> None:
    Trainer(toy_config(epochs=1), ToyTask(), tmp_path, context=CPU).train()
    assert "networks" not in load_training_checkpoint(tmp_path / "last.pt")
