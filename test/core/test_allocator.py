"""`retain_freed_memory`: freed buffers are reused instead of page-faulted in again."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pose_core.inference.allocator import retain_freed_memory

# Allocates, touches and frees a 48 MB tensor (above glibc's largest dynamic mmap threshold,
# 32 MiB) 24 times and reports the minor page faults of each round. With the setting, the
# first rounds grow the heap (2-4 rounds here, 6 or more once in a fresh-clone CI run), then
# the same memory serves every round. The probe imports the estimator as such a process does
# (importing the allocator alone used to do it, before `pose_core.inference` resolved its names
# lazily); with the smaller heap of the allocator alone the heap-growing rounds were up to 12 of
# 24 (2-7 with the estimator imported, 16 runs).
_PROBE = """
import json, resource, sys, torch
import pose_core.inference.estimator  # the process the setting is for runs the estimator
from pose_core.inference.allocator import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else None
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds = []
for _ in range(24):
    start = faults()
    torch.ones(12 << 20)
    rounds.append(faults() - start)
print(json.dumps({"applied": applied, "faults": rounds}))
"""


def _probe(mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    default = _probe("default")
    retained = _probe("retain")
    assert retained["applied"] is True
    # default glibc: every round maps 48 MB afresh (~12,300 faults of 4 KiB pages each)
    assert min(default["faults"]) > 5000
    # retained: the first rounds grow the heap, then the same memory serves every round
    assert sorted(retained["faults"])[len(retained["faults"]) // 2] < 100
    assert max(retained["faults"][-8:]) < 100


def test_rejects_thresholds_out_of_range():
    with pytest.raises(ValueError, match="mmap_threshold"):
        retain_freed_memory(mmap_threshold=-1)
    with pytest.raises(ValueError, match="trim_threshold"):
        retain_freed_memory(trim_threshold=1 << 40)
