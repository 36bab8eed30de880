"""How many CPU threads the network and the grouping use, and where the processing thread runs.

On a robot the perception process shares its cores with drivers, planners and other nodes.
Libraries size their thread pools to the whole machine and, between parallel regions, their
OpenMP workers busy-wait for each other; when another process holds one of the cores, every
parallel region waits for the worker that is not running, and latency collapses (measured in
docs/benchmark_node.md). A `ThreadPolicy` sets, per stage:

- `network_threads`: intra-op threads of the network (onnxruntime session; torch during the
  forward); `network_inter_op_threads`: onnxruntime inter-op threads;
- `grouping_threads`: torch intra-op threads of the merge / grouping stage;
- `worker_cpus`: CPUs the processing thread is pinned to (empty: not pinned).

0 leaves a library its default. `omp_wait_policy` (PASSIVE / ACTIVE) only takes effect when set
in the environment before torch is imported: `set_openmp_wait_policy` does that when it still
can and says so otherwise.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_THREAD_POLICY",
    "ThreadPolicy",
    "pin_current_thread",
    "set_openmp_wait_policy",
    "torch_threads",
]

OMP_WAIT_POLICIES = ("passive", "active", "")


@dataclass(frozen=True)
class ThreadPolicy:
    """Thread counts per stage (0: the library's default); see the module docstring."""

    network_threads: int = 0
    network_inter_op_threads: int = 0
    grouping_threads: int = 0
    worker_cpus: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("network_threads", "network_inter_op_threads", "grouping_threads"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        object.__setattr__(self, "worker_cpus", tuple(int(c) for c in self.worker_cpus))
        if any(c < 0 for c in self.worker_cpus):
            raise ValueError(f"worker_cpus must be CPU indices >= 0, got {self.worker_cpus}")


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch intra-op threads = `count` inside the block (0: unchanged), restored after."""
    if count <= 0:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    if previous == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def pin_current_thread(cpus: Sequence[int]) -> bool:
    """Pin the calling thread to `cpus` (Linux: sched_setaffinity of thread id 0 is the calling
    thread); False where the platform cannot or a CPU is not available."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(0, set(int(c) for c in cpus))
    except OSError:
        return False
    return True


def set_openmp_wait_policy(policy: str) -> bool:
    """Set OMP_WAIT_POLICY for this process's OpenMP runtime ("" leaves it alone).

    The runtime reads it once, when torch loads it: True when the policy is (now) in effect,
    False when torch was imported first with another value (set the environment variable
    before the process starts instead).
    """
    policy = policy.lower()
    if policy not in OMP_WAIT_POLICIES:
        raise ValueError(f"omp_wait_policy must be one of passive|active|'', got {policy!r}")
    if not policy:
        return True
    current = os.environ.get("OMP_WAIT_POLICY", "").lower()
    if current == policy:
        return True
    if "torch" in sys.modules:
        return False
    os.environ["OMP_WAIT_POLICY"] = policy.upper()
    return True


# The package's default (PoseEstimator, the node, benchmark_postprocess.py): two network threads,
# one grouping thread, chosen by training/benchmark_contention.py (docs/benchmark_node.md).
DEFAULT_THREAD_POLICY = ThreadPolicy(network_threads=2, network_inter_op_threads=1,
                                     grouping_threads=1)
