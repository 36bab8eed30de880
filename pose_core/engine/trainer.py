"""The training loop: explicit, short, with three hook points (checkpoint, validate, log).

One iteration is `train_step(batch) -> dict[str, Tensor]` (forward + loss terms), then the sum
is checked for finiteness, back-propagated (through a GradScaler for fp16), optionally clipped,
and the optimiser and the per-iteration LR schedule step. After each epoch: validation every
`validation.every_epochs` epochs (rank 0; best-model tracking on `validation.metric`), then an
atomic checkpoint (`last.pt`, `epoch_XXXX.pt`, `best.pt` when improved). Scalars go to
TensorBoard (`tb/`) and CSV (`train_log.csv`, `val_log.csv`) in the run directory, with a tqdm
bar on rank 0.

Determinism: at the start of epoch e every RNG (python, numpy, torch, the sampler and the
DataLoader generator) is seeded from (seed, e, rank), so a run resumed from the checkpoint of
epoch e continues with exactly the batches -- and on CPU the losses -- of an uninterrupted run.

The task-specific parts (networks, dataset, forward pass and loss, validation) are injected
as a `TrainingTask` (`pose_core.engine.tasks`), so the loop itself knows nothing about bottom-up
or top-down. The task owns its forward pass: `task.train_step(networks, batch, device, forward)`
may run several views and several networks (semi-supervised teacher / student); the loop
optimises the parameters of every network and checkpoints them all ("model" is the main
network: validated and written as the checkpoint's `model`; the others under `networks`). A
task with only `build_model` / `inputs` / `loss` (one network, one forward) is adapted by
`SingleNetworkTask`.
"""

from __future__ import annotations

import contextlib
import csv
import math
import pathlib
import random
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from pose_core.engine import distributed
from pose_core.engine.checkpointing import (
    CheckpointError,
    find_resume_checkpoint,
    load_training_checkpoint,
    save_training_checkpoint,
    unwrap_model,
)
from pose_core.engine.config import TrainConfig, to_dict, to_yaml
from pose_core.engine.optim import build_optimizer, build_scheduler
from pose_core.engine.training_task import (
    MAIN_NETWORK,
    MONITOR_PREFIX,
    SingleNetworkTask,
    TrainingTask,
    as_training_task,
)

__all__ = [
    "NonFiniteLossError",
    "TrainingTask",
    "SingleNetworkTask",
    "as_training_task",
    "MAIN_NETWORK",
    "TrainResult",
    "Trainer",
    "seed_everything",
    "CsvLogger",
]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainResult:
    """Summary of a `Trainer.train()` call.

    Attributes:
        epoch: epochs completed.
        step: optimiser steps completed.
        best_metric: best validation metric (None when never validated).
        last_metrics: metrics of the last validation (empty when none).
        losses: total loss of every iteration run by this call, in order.
        stopped_early: True when `max_minutes` ended the run.
        run_dir: the run directory.
    """

    epoch: int
    step: int
    best_metric: float | None
    last_metrics: dict[str, float]
    losses: list[float]
    stopped_early: bool
    run_dir: pathlib.Path


def seed_everything(seed: int) -> None:
    """Seeds python, numpy and torch global RNGs."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _epoch_seed(base: int, epoch: int, rank: int) -> int:
    return (base * 1_000_003 + epoch * 1_009 + rank * 7_919) % (2**31 - 1)


def _seed_worker(worker_id: int) -> None:
    """DataLoader worker init: numpy / python RNGs follow the worker's torch seed."""
    seed = torch.initial_seed() % (2**32)
    np.random.seed(seed)
    random.seed(seed)


class CsvLogger:
    """Appends rows to a CSV file; the header is fixed by the first row ever written."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if path.is_file() and path.stat().st_size > 0:
            with path.open("r", newline="") as stream:
                self.fields = next(csv.reader(stream), None)

    def write(self, row: Mapping[str, Any]) -> None:
        new = self.fields is None
        if self.fields is None:
            self.fields = list(row)
        with self.path.open("a", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _csv_value(row.get(k, "")) for k in self.fields})


def _csv_value(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class Trainer:
    """Runs one experiment described by a `TrainConfig`.

    Args:
        config: the resolved experiment config.
        task: a `TrainingTask` (or a one-network task, see `as_training_task`).
        run_dir: where checkpoints and logs go (created).
        context: distributed context (default: from the torchrun environment).
    """

    def __init__(
        self,
        config: TrainConfig,
        task: Any,
        run_dir: str | pathlib.Path,
        context: distributed.DistributedContext | None = None,
    ) -> None:
        self.config = config
        self.task = as_training_task(task)
        self.run_dir = pathlib.Path(run_dir)
        self.context = context or distributed.init_distributed(config.device)
        self.device = self.context.device
        if config.num_threads > 0:
            torch.set_num_threads(config.num_threads)
        seed_everything(_epoch_seed(config.seed, -1, self.context.rank))
        networks = self.task.build_networks()
        if MAIN_NETWORK not in networks:
            raise ValueError(f"the task's networks {sorted(networks)} lack {MAIN_NETWORK!r}")
        self.networks: dict[str, nn.Module] = {}
        for key, network in networks.items():
            if config.channels_last:
                network = network.to(memory_format=torch.channels_last)
            self.networks[key] = distributed.wrap_model(network, self.context)
        self.model = self.networks[MAIN_NETWORK]
        self.dataset = self.task.train_dataset()
        self.sampler = distributed.build_sampler(
            self.dataset, self.context, shuffle=True, seed=config.seed
        )
        self.loader_generator = torch.Generator()
        self.train_loader = DataLoader(
            self.dataset,
            batch_size=config.batch_size,
            sampler=self.sampler,
            num_workers=config.data.num_workers,
            worker_init_fn=_seed_worker if config.data.num_workers > 0 else None,
            generator=self.loader_generator,
            drop_last=len(self.dataset) >= config.batch_size,
            persistent_workers=False,
        )
        self.iterations_per_epoch = len(self.train_loader)
        if config.max_steps_per_epoch > 0:
            self.iterations_per_epoch = min(self.iterations_per_epoch, config.max_steps_per_epoch)
        if self.iterations_per_epoch == 0:
            raise ValueError("the training set is empty (no batch per epoch)")
        self.optimizer = build_optimizer(self._parameters(), config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, self.iterations_per_epoch)
        self.amp_dtype = {"none": None, "fp16": torch.float16, "bf16": torch.bfloat16}[config.amp]
        self.scaler = (
            torch.amp.GradScaler(self.device.type)
            if config.amp == "fp16"
            else None
        )
        self.epoch = 0
        self.step = 0
        self.best_metric: float | None = None
        self.elapsed_before = 0.0  # training seconds spent by earlier (resumed) runs
        self.last_metrics: dict[str, float] = {}
        self._start = time.monotonic()
        self._writer: Any = None
        self._train_csv: CsvLogger | None = None
        self._val_csv: CsvLogger | None = None

    # ---------------------------------------------------------------- one iteration

    def _parameters(self) -> list[nn.Parameter]:
        """Every network's parameters, each once (networks may share modules)."""
        seen: set[int] = set()
        params = []
        for network in self.networks.values():
            for param in network.parameters():
                if id(param) not in seen:
                    seen.add(id(param))
                    params.append(param)
        return params

    def forward(self, network: nn.Module, inputs: Tensor) -> Any:
        """One forward as the loop runs it: channels-last inputs when configured, autocast
        under AMP, float outputs."""
        if self.config.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            outputs = network(inputs)
        return _to_float(outputs)

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """The task's forward passes and loss terms for one batch (no backward)."""
        return self.task.train_step(self.networks, batch, self.device, self.forward)

    def run_iteration(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """train_step + backward + (clip) + optimiser and schedule step; returns the values."""
        for network in self.networks.values():
            network.train()
        losses = self.train_step(batch)
        total = torch.stack(
            [v.float() for k, v in losses.items() if not k.startswith(MONITOR_PREFIX)]
        ).sum()
        if not torch.isfinite(total):
            detail = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items())
            raise NonFiniteLossError(
                f"non-finite loss at epoch {self.epoch} step {self.step}: {detail}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        clip = self.config.optim.grad_clip_norm
        grad_norm = float("nan")
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            if clip > 0:
                self.scaler.unscale_(self.optimizer)
                grad_norm = float(nn.utils.clip_grad_norm_(self._parameters(), clip))
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            total.backward()
            if clip > 0:
                grad_norm = float(nn.utils.clip_grad_norm_(self._parameters(), clip))
            self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        values = {k: float(v.detach()) for k, v in losses.items()}
        values["loss"] = float(total.detach())
        if clip > 0:
            values["grad_norm"] = grad_norm
        return values

    # ---------------------------------------------------------------- checkpoints

    def state_extra(self) -> dict[str, Any]:
        return {"elapsed_s": float(self.elapsed_before), "iterations_per_epoch":
                self.iterations_per_epoch}

    def save_checkpoint(self, name: str = "last.pt") -> pathlib.Path | None:
        """Writes `run_dir/name` atomically (rank 0 only; returns None on other ranks)."""
        if not self.context.is_main:
            return None
        return save_training_checkpoint(
            self.run_dir / name,
            model=self.model,
            networks={k: v for k, v in self.networks.items() if k != MAIN_NETWORK},
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
            epoch=self.epoch,
            step=self.step,
            best_metric=self.best_metric,
            config=to_dict(self.config),
            extra=self.state_extra(),
        )

    def resume(self, path: str | pathlib.Path | None = None) -> bool:
        """Restores the state from `path` or the newest complete checkpoint of the run dir.

        Returns:
            True when a checkpoint was loaded.
        """
        path = pathlib.Path(path) if path is not None else find_resume_checkpoint(self.run_dir)
        if path is None:
            return False
        payload = load_training_checkpoint(path, map_location=self.device)
        unwrap_model(self.model).load_state_dict(payload["model"], strict=True)
        saved = payload.get("networks") or {}
        for key, network in self.networks.items():
            if key == MAIN_NETWORK:
                continue
            if key not in saved:
                raise CheckpointError(f"{path}: no weights for the task's network {key!r}")
            unwrap_model(network).load_state_dict(saved[key], strict=True)
        if payload.get("optimizer") is not None:
            self.optimizer.load_state_dict(payload["optimizer"])
        if payload.get("scheduler") is not None:
            self.scheduler.load_state_dict(payload["scheduler"])
        if self.scaler is not None and payload.get("scaler") is not None:
            self.scaler.load_state_dict(payload["scaler"])
        self.epoch = int(payload["epoch"])
        self.step = int(payload["step"])
        self.best_metric = payload.get("best_metric")
        self.elapsed_before = float(payload.get("elapsed_s", 0.0))
        if self.context.is_main:
            print(f"resumed from {path} (epoch {self.epoch}, step {self.step})", flush=True)
        return True

    def _prune_epoch_checkpoints(self) -> None:
        keep = self.config.keep_checkpoints
        files = sorted(self.run_dir.glob("epoch_*.pt"))
        for old in files[: max(0, len(files) - keep)]:
            old.unlink(missing_ok=True)

    # ---------------------------------------------------------------- logging

    def _open_logs(self) -> None:
        if not self.context.is_main or self._train_csv is not None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._train_csv = CsvLogger(self.run_dir / "train_log.csv")
        self._val_csv = CsvLogger(self.run_dir / "val_log.csv")
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional extra
            self._writer = None
        else:
            self._writer = SummaryWriter(log_dir=str(self.run_dir / "tb"), purge_step=self.step)

    def _log_train(self, values: Mapping[str, float], elapsed: float, images: int) -> None:
        if not self.context.is_main:
            return
        row = {"epoch": self.epoch, "step": self.step,
               "lr": self.optimizer.param_groups[0]["lr"], **values,
               "images_per_s": images / max(elapsed, 1e-9),
               "elapsed_s": self.elapsed_before + self._elapsed()}
        assert self._train_csv is not None
        self._train_csv.write(row)
        if self._writer is not None:
            for key, value in row.items():
                if key not in ("epoch", "step"):
                    self._writer.add_scalar(f"train/{key}", value, self.step)

    def _log_val(self, metrics: Mapping[str, float]) -> None:
        if not self.context.is_main:
            return
        row = {"epoch": self.epoch, "step": self.step, **metrics,
               "elapsed_s": self.elapsed_before + self._elapsed()}
        assert self._val_csv is not None
        self._val_csv.write(row)
        if self._writer is not None:
            for key, value in metrics.items():
                self._writer.add_scalar(f"val/{key}", value, self.epoch)
            self._writer.flush()
        text = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        print(f"[val] epoch {self.epoch} step {self.step}: {text}", flush=True)

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    # ---------------------------------------------------------------- validation

    def validate(self) -> dict[str, float]:
        """Runs the task's validation on rank 0 and updates best-model tracking."""
        metrics: dict[str, float] | None = None
        if self.context.is_main:
            model = unwrap_model(self.model)
            was_training = model.training
            model.eval()
            with torch.no_grad():
                metrics = self.task.validate(model, self.device)
            model.train(was_training)
        metrics = distributed.broadcast_object(metrics)  # type: ignore[assignment]
        if not metrics:
            return {}
        self.last_metrics = dict(metrics)
        self._log_val(metrics)
        key = self.config.validation.metric
        if key in metrics and (self.best_metric is None or metrics[key] > self.best_metric):
            self.best_metric = float(metrics[key])
            self.save_checkpoint("best.pt")
        return dict(metrics)

    # ---------------------------------------------------------------- the loop

    def _iterate_epoch(self, epoch: int) -> Iterable[Mapping[str, Any]]:
        seed = _epoch_seed(self.config.seed, epoch, self.context.rank)
        seed_everything(seed)
        self.loader_generator.manual_seed(seed)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        for index, batch in enumerate(self.train_loader):
            if index >= self.iterations_per_epoch:
                break
            yield batch

    def train(self, resume: bool = True, stop_after_steps: int = 0) -> TrainResult:
        """Runs (or continues) the experiment.

        Args:
            resume: continue from the newest complete checkpoint of the run directory.
            stop_after_steps: testing aid: return after this many iterations of this call
                (0 = run to the end); no checkpoint is written at that point.
        """
        config = self.config
        self._start = time.monotonic()
        if resume:
            self.resume()
        self._open_logs()
        if self.context.is_main:
            to_yaml(config, self.run_dir / "config.yaml")
        budget_s = config.max_minutes * 60.0 if config.max_minutes > 0 else math.inf
        losses: list[float] = []
        stopped_early = False
        show_bar = self.context.is_main
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is a declared training dependency
            tqdm = None
        while self.epoch < config.epochs and not stopped_early:
            epoch = self.epoch
            bar = None
            if show_bar and tqdm is not None:
                bar = tqdm(
                    total=self.iterations_per_epoch,
                    desc=f"epoch {epoch + 1}/{config.epochs}",
                    file=sys.stderr,
                    mininterval=1.0 if sys.stderr.isatty() else 60.0,
                    dynamic_ncols=True,
                    leave=False,
                )
            window_start = time.monotonic()
            window_images = 0
            window_sums: dict[str, float] = {}
            window_count = 0
            for batch in self._iterate_epoch(epoch):
                values = self.run_iteration(batch)
                losses.append(values["loss"])
                window_images += _batch_size(batch)
                window_count += 1
                for key, value in values.items():
                    window_sums[key] = window_sums.get(key, 0.0) + value
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{values['loss']:.5f}", refresh=False)
                if self.step % max(1, config.log_every) == 0:
                    # logged values are means over the iterations since the previous log line
                    means = {k: v / window_count for k, v in window_sums.items()}
                    seconds = time.monotonic() - window_start
                    self._log_train(means, seconds, window_images)
                    if self.context.is_main and not sys.stderr.isatty():
                        terms = " ".join(f"{k}={v:.5f}" for k, v in means.items())
                        print(f"epoch {epoch + 1} step {self.step}: {terms} "
                              f"({window_images / max(seconds, 1e-9):.2f} img/s)", flush=True)
                    window_start = time.monotonic()
                    window_images = 0
                    window_sums = {}
                    window_count = 0
                if stop_after_steps and len(losses) >= stop_after_steps:
                    if bar is not None:
                        bar.close()
                    return self._result(losses, stopped_early=True)
                # every rank takes the budget decision together (see distributed.any_rank)
                if budget_s < math.inf and distributed.any_rank(
                    self.elapsed_before + self._elapsed() > budget_s
                ):
                    stopped_early = True
                    break
            if bar is not None:
                bar.close()
            self.epoch = epoch + 1
            every = config.validation.every_epochs
            last = self.epoch >= config.epochs or stopped_early
            if every > 0 and (self.epoch % every == 0 or last):
                self.validate()
            self._checkpoint_epoch()
            if not last and budget_s < math.inf and distributed.any_rank(
                self.elapsed_before + self._elapsed() > budget_s
            ):
                stopped_early = True
                if every > 0 and self.epoch % every != 0:
                    self.validate()
                    self._checkpoint_epoch()
        if self._writer is not None:
            self._writer.flush()
        return self._result(losses, stopped_early)

    def _checkpoint_epoch(self) -> None:
        elapsed_now = self._elapsed()
        self.elapsed_before += elapsed_now
        self._start = time.monotonic()
        if self.context.is_main:
            self.save_checkpoint("last.pt")
            if self.config.keep_checkpoints > 0:
                self.save_checkpoint(f"epoch_{self.epoch:04d}.pt")
                self._prune_epoch_checkpoints()
        distributed.barrier()

    def _result(self, losses: list[float], stopped_early: bool) -> TrainResult:
        return TrainResult(
            epoch=self.epoch,
            step=self.step,
            best_metric=self.best_metric,
            last_metrics=dict(self.last_metrics),
            losses=losses,
            stopped_early=stopped_early,
            run_dir=self.run_dir,
        )

    def close(self) -> None:
        """Flushes and closes the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _batch_size(batch: Mapping[str, Any]) -> int:
    for value in batch.values():
        if isinstance(value, Tensor):
            return int(value.shape[0])
    return 0


def _to_float(outputs: Any) -> Any:
    """Casts network outputs (tensor, list or tuple of tensors) to float32 for the loss."""
    if isinstance(outputs, Tensor):
        return outputs.float()
    if isinstance(outputs, list):
        return [_to_float(o) for o in outputs]
    if isinstance(outputs, tuple):
        return tuple(_to_float(o) for o in outputs)
    return outputs
