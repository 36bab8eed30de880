"""torchrun / DistributedDataParallel helpers (a few functions, not a runner).

`torchrun --nproc_per_node N -m pose_core.engine.cli --config ...` sets RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR and MASTER_PORT; `init_distributed()` reads them and initialises the
process group with NCCL on CUDA and gloo on CPU. Without those variables everything runs as a
single process (rank 0 of 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler, SequentialSampler

__all__ = [
    "DistributedContext",
    "init_distributed",
    "destroy_distributed",
    "is_main_process",
    "get_rank",
    "get_world_size",
    "barrier",
    "wrap_model",
    "build_sampler",
    "all_reduce_mean",
    "any_rank",
    "broadcast_object",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job.

    Attributes:
        rank / world_size / local_rank: from the torchrun environment (0 / 1 / 0 alone).
        device: the device this process uses.
        backend: "nccl", "gloo" or "" when not distributed.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _select_device(requested: str, local_rank: int) -> torch.device:
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def init_distributed(device: str = "auto") -> DistributedContext:
    """Initialises the process group from the torchrun environment when WORLD_SIZE > 1.

    Args:
        device: "auto", "cpu" or "cuda".
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = _select_device(device, local_rank)
    backend = ""
    if world_size > 1:
        backend = "nccl" if torch_device.type == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, torch_device, backend)


def destroy_distributed() -> None:
    """Tears the process group down (no-op when not initialised)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 (and when not distributed)."""
    return get_rank() == 0


def barrier() -> None:
    if get_world_size() > 1:
        dist.barrier()


def wrap_model(model: nn.Module, context: DistributedContext) -> nn.Module:
    """Moves the model to the device and wraps it in DDP when distributed (SyncBN not used)."""
    model = model.to(context.device)
    if not context.distributed:
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def build_sampler(
    dataset: Dataset, context: DistributedContext, shuffle: bool, seed: int
) -> Sampler:
    """A DistributedSampler (one replica when not distributed) for training, so the shuffle
    order depends only on (seed, epoch) via `set_epoch`; a sequential sampler otherwise."""
    if shuffle or context.distributed:
        return DistributedSampler(
            dataset,
            num_replicas=context.world_size,
            rank=context.rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=shuffle and context.distributed,
        )
    return SequentialSampler(dataset)


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor over ranks (identity when not distributed)."""
    if get_world_size() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / get_world_size()


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is True on at least one (identity when not distributed).

    Decisions that end a loop (the `max_minutes` budget) must be taken by all ranks together:
    a rank that leaves the loop alone waits at the next barrier while the others wait in the
    gradient all-reduce, and the job hangs.
    """
    if get_world_size() == 1:
        return bool(flag)
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def broadcast_object(value: object, src: int = 0) -> object:
    """Sends a picklable object from `src` to every rank (identity when not distributed)."""
    if get_world_size() == 1:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]
