"""`pose-eval` on several processes (`torchrun`): each rank runs the model on a shard of the
images, rank 0 gathers the people and evaluates once.

Shard of rank r of W: the images at positions r, r + W, r + 2W, ... of the annotation file's
`images` list. `gather_in_order` brings every rank's (position, image id, Poses) to rank 0 and
sorts them by position, so rank 0 feeds the evaluator in the single-process order and the
metrics are the single-process ones to the last digit.
"""

from __future__ import annotations

import os
from typing import Any

import torch.distributed as dist

__all__ = [
    "finish_evaluation_ranks",
    "gather_in_order",
    "init_evaluation_ranks",
    "is_main_rank",
    "shard_positions",
]


def is_main_rank() -> bool:
    """True on rank 0 of a torchrun job and in a single process (from RANK, so it holds after
    the process group is gone)."""
    return int(os.environ.get("RANK", "0")) == 0


def finish_evaluation_ranks() -> None:
    """Tear the process group down after the gather (no-op alone)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_positions(count: int, rank: int, world_size: int) -> range:
    """Positions of the images rank `rank` processes."""
    return range(rank, count, world_size)


def init_evaluation_ranks(device: str) -> tuple[int, int, str]:
    """(rank, world size, device of this rank) from the torchrun environment (gloo on the
    CPU, NCCL on CUDA: `cuda` becomes `cuda:<LOCAL_RANK>`); (0, 1, device) alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, device
    from pose_core.engine.distributed import init_distributed

    context = init_distributed("cpu" if device == "cpu" else "cuda")
    rank_device = "cpu" if context.device.type == "cpu" else str(context.device)
    return context.rank, context.world_size, rank_device


def gather_in_order(items: list[tuple[int, Any, Any]]) -> list[tuple[int, Any, Any]]:
    """Rank 0: every rank's (position, ...) items sorted by position; other ranks: []."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return sorted(items, key=lambda item: item[0])
    gathered: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(items, gathered, dst=0)
    if gathered is None:
        return []
    return sorted((item for part in gathered for item in part), key=lambda item: item[0])
