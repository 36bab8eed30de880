"""Training checkpoints: atomic writes, resume from the last complete file.

Format (format_version 1), a plain dict saved with `torch.save` and loaded with
`torch.load(..., weights_only=True)` (no pickled modules or classes)::

    {"format_version": 1,
     "model": state_dict,          # official key names, no "module." prefix
     "networks": {name: state_dict},   # the task's other networks (absent with one network)
     "optimizer": ..., "scheduler": ..., "scaler": ... | None,
     "epoch": int,                 # epochs completed
     "step": int,                  # optimiser steps completed
     "best_metric": float | None,
     "config": dict}               # the resolved TrainConfig as plain data

Atomicity: the file is written to a temporary name in the same directory, flushed and fsynced,
then moved into place with `os.replace`, so a reader sees either the previous or the new
complete file. Temporary files left by a killed writer (`*.tmp`) are never read.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Any

import torch
from torch import nn

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "unwrap_model",
    "model_state_dict",
    "atomic_save",
    "save_training_checkpoint",
    "load_training_checkpoint",
    "find_resume_checkpoint",
]

FORMAT_VERSION = 1
_REQUIRED_KEYS = ("format_version", "model", "epoch", "step")


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or of an unknown format."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel / DataParallel wrappers."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def model_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with official key names (no `module.` prefix), tensors detached on CPU."""
    return {
        k: v.detach().cpu().contiguous().clone()
        for k, v in unwrap_model(model).state_dict().items()
    }


def atomic_save(obj: Any, path: str | pathlib.Path) -> pathlib.Path:
    """`torch.save` to a temp file in the same directory, fsync, then `os.replace`."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            torch.save(obj, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def save_training_checkpoint(
    path: str | pathlib.Path,
    *,
    model: nn.Module,
    networks: dict[str, nn.Module] | None = None,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    scaler: Any | None,
    epoch: int,
    step: int,
    best_metric: float | None,
    config: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> pathlib.Path:
    """Writes a format-1 training checkpoint atomically.

    Args:
        path: destination file.
        model: the (possibly DDP-wrapped) main network.
        networks: the task's other networks by name (e.g. a teacher), stored under
            "networks"; None or empty for one network.
        optimizer / scheduler / scaler: their `state_dict()`s are stored (None allowed).
        epoch: epochs completed.
        step: optimiser steps completed.
        best_metric: best validation metric so far.
        config: the resolved config as plain data.
        extra: additional plain-data entries (e.g. RNG states).
    """
    payload: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "model": model_state_dict(model),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "epoch": int(epoch),
        "step": int(step),
        "best_metric": None if best_metric is None else float(best_metric),
        "config": config,
    }
    if networks:
        payload["networks"] = {k: model_state_dict(v) for k, v in networks.items()}
    if extra:
        payload.update(extra)
    return atomic_save(payload, path)


def load_training_checkpoint(
    path: str | pathlib.Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Loads and checks a format-1 checkpoint (weights_only=True).

    Raises:
        CheckpointError: the file is missing, unreadable/truncated or not format 1.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated zip, wrong pickle, ...
        raise CheckpointError(f"{path}: unreadable checkpoint ({error})") from error
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: not a training checkpoint (top level is not a dict)")
    missing = [k for k in _REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (missing {missing})")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {payload['format_version']} (expected {FORMAT_VERSION})"
        )
    return payload


def find_resume_checkpoint(run_dir: str | pathlib.Path) -> pathlib.Path | None:
    """The newest complete checkpoint of a run directory, or None.

    Looks at `last.pt` and `epoch_*.pt` (never at `*.tmp`), tries them newest step first and
    returns the first that loads. Safe to call on a live run: a checkpoint that the trainer
    prunes while it is being looked at is skipped.
    """
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        return None
    candidates: list[tuple[int, float, pathlib.Path]] = []
    for path in [run_dir / "last.pt", *run_dir.glob("epoch_*.pt")]:
        if not path.is_file():
            continue
        try:
            payload = load_training_checkpoint(path)
            modified = path.stat().st_mtime
        except (CheckpointError, FileNotFoundError):
            continue
        candidates.append((int(payload["step"]), modified, path))
    if not candidates:
        return None
    candidates.sort(key=lambda item: (item[0], item[1]))
    return candidates[-1][2]
