"""Opt-in process allocator setting for CPU batch runs: keep freed memory for reuse.

The bottom-up path allocates and frees tens of megabytes per image (a 512 x 768 image's 17
projected heatmaps alone are 27 MB). glibc's malloc serves blocks above its mmap threshold
(128 KiB, raised dynamically up to 32 MiB) with fresh `mmap`s and hands freed heap tops back to
the kernel above its trim threshold, so an image can page-fault its buffers in again: about
13,000 minor faults per call of the post-network path on the 10-person benchmark scene.
Raising both thresholds keeps the freed memory in the process heap, which is what PyTorch's CPU
tuning guide gets from jemalloc or tcmalloc; the price is that the process keeps its peak heap.

It shortens back-to-back calls of the post-network path but showed no gain when interleaved
with other work or in the ROS node (measurements: docs/benchmark_postprocess.md, "Design
notes"), so nothing in the library calls it: a process that runs many large images back to back
(offline evaluation) can.
`PoseEstimator` avoids most of these faults without a process-wide setting: it keeps its large
maps in a `pose_core.inference.buffers.BufferPool` from image to image.
Environment equivalent: `MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=1073741824`.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["retain_freed_memory"]

# glibc <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

DEFAULT_MMAP_THRESHOLD = 256 << 20
DEFAULT_TRIM_THRESHOLD = 1 << 30


def retain_freed_memory(
    mmap_threshold: int = DEFAULT_MMAP_THRESHOLD, trim_threshold: int = DEFAULT_TRIM_THRESHOLD
) -> bool:
    """Serve blocks below `mmap_threshold` bytes from the heap and keep up to `trim_threshold`
    bytes of free heap top in the process (glibc `mallopt`).

    Returns:
        True when glibc accepted both settings; False elsewhere (other C libraries or systems:
        nothing is changed there).
    """
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if not 0 <= int(value) < 2**31:
            raise ValueError(f"{name} must be in [0, 2**31) bytes, got {value}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
        # glibc only: musl's libc.so.6 does not exist, and its mallopt is a no-op returning 0
        libc.gnu_get_libc_version  # noqa: B018  (raises AttributeError outside glibc)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(
        mallopt(_M_TRIM_THRESHOLD, int(trim_threshold))
    )
