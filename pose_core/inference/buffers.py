"""`BufferPool`: the large per-image tensors of the bottom-up path, kept between images.

The post-network path of one 512 x 768 image builds ~60 MB of maps (the 17 projected heatmaps
alone are 27 MB). Allocated afresh per image, glibc hands most of it to the kernel and back
(fresh `mmap`s above its mmap threshold, heap tops trimmed above its trim threshold): on this
2-vCPU machine about 15,000 minor page faults per image, a third of the CPU path's time
(docs/benchmark_postprocess.md). A real-time loop sees the same sizes every frame, so the
estimator keeps those maps in a pool instead: per-object state, no process-wide allocator
setting (for that, see `pose_core.inference.allocator`).

Buffers are lent inside a `frame()`: every `empty` call in a frame returns a distinct tensor
(from the pool when one of the same shape, dtype, device and memory format is free, else a new
one), and all of them go back to the pool when the frame ends. Frames nest (an inner frame
returns only its own buffers), so a batch can hold its network maps in an outer frame and
project image by image in inner ones. A tensor from the pool must not be used after its frame
ends: the next frame overwrites it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

__all__ = ["BufferPool"]

_Key = tuple[tuple[int, ...], torch.dtype, torch.device, torch.memory_format]


class BufferPool:
    """Reusable tensors, lent per `frame()`.

    Args:
        max_free_bytes: free (returned) buffers kept at most; beyond it the least recently
            returned ones are dropped (input sizes that change every frame do not grow the
            pool without bound).
    """

    def __init__(self, max_free_bytes: int = 1 << 30) -> None:
        if max_free_bytes < 0:
            raise ValueError(f"max_free_bytes must be >= 0, got {max_free_bytes}")
        self.max_free_bytes = int(max_free_bytes)
        self._free: OrderedDict[int, tuple[_Key, torch.Tensor]] = OrderedDict()
        self._free_bytes = 0
        self._frames: list[list[tuple[_Key, torch.Tensor]]] = []
        self.allocations = 0  # tensors created (not reused) so far; for tests and reports

    @property
    def free_bytes(self) -> int:
        """Bytes held by buffers that are back in the pool."""
        return self._free_bytes

    @contextmanager
    def frame(self) -> Iterator[BufferPool]:
        """Lend buffers until the block ends (then they return to the pool)."""
        self._frames.append([])
        try:
            yield self
        finally:
            for key, tensor in self._frames.pop():
                self._free[id(tensor)] = (key, tensor)
                self._free_bytes += _nbytes(tensor)
            while self._free_bytes > self.max_free_bytes and self._free:
                _, (_, dropped) = self._free.popitem(last=False)
                self._free_bytes -= _nbytes(dropped)

    def empty(
        self,
        shape: Sequence[int],
        dtype: torch.dtype,
        device: torch.device | str,
        memory_format: torch.memory_format = torch.contiguous_format,
    ) -> torch.Tensor:
        """An uninitialised tensor lent to the innermost open frame.

        Raises:
            RuntimeError: no frame is open (the tensor would never come back).
        """
        if not self._frames:
            raise RuntimeError("BufferPool.empty needs an open frame: use `with pool.frame():`")
        key: _Key = (tuple(int(s) for s in shape), dtype, torch.device(device), memory_format)
        tensor = None
        for ident, (free_key, free_tensor) in self._free.items():
            if free_key == key:
                tensor = free_tensor
                del self._free[ident]
                self._free_bytes -= _nbytes(tensor)
                break
        if tensor is None:
            tensor = torch.empty(key[0], dtype=dtype, device=key[2], memory_format=memory_format)
            self.allocations += 1
        self._frames[-1].append((key, tensor))
        return tensor


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().nbytes()


def new_empty(
    pool: BufferPool | None,
    shape: Sequence[int],
    like: torch.Tensor,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> torch.Tensor:
    """`pool.empty` with `like`'s dtype and device, or a plain new tensor without a pool."""
    if pool is None:
        return torch.empty(
            tuple(shape), dtype=like.dtype, device=like.device, memory_format=memory_format
        )
    return pool.empty(shape, like.dtype, like.device, memory_format)
