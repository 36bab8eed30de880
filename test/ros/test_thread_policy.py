"""The thread and scheduling policy: defaults are the contention benchmark's choice, and each
setting reaches what it controls (not a timing test)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
import yaml

from pose_core.inference.backend_factory import BackendOptions
from pose_core.inference.estimator import _with_thread_counts
from pose_core.inference.thread_policy import (
    DEFAULT_THREAD_POLICY,
    ThreadPolicy,
    pin_current_thread,
    set_openmp_wait_policy,
    torch_threads,
)
from pose_ros.frame_buffer import FrameWorker, LatestFrameBuffer
from pose_ros.launch_support import POSE_NODE_ENV
from pose_ros.params import NodeParams

REPO = Path(__file__).resolve().parents[2]
BENCHMARK = REPO / "docs" / "benchmark_node_runs" / "contention.json"
THREAD_PARAMETERS = ("network_threads", "network_inter_op_threads", "grouping_threads",
                     "omp_wait_policy")


def _chosen() -> dict:
    report = json.loads(BENCHMARK.read_text())
    assert report["chosen"] in report["policies"], "the benchmark must have chosen a policy"
    return report["policies"][report["chosen"]]


def test_node_defaults_are_the_benchmarks_choice() -> None:
    chosen = _chosen()
    defaults = NodeParams()
    assert {k: getattr(defaults, k) for k in THREAD_PARAMETERS} == {
        k: chosen[k] for k in THREAD_PARAMETERS}
    yaml_values = yaml.safe_load((REPO / "config" / "pose_node.yaml").read_text())
    node_values = next(iter(yaml_values.values()))["ros__parameters"]
    assert {k: node_values[k] for k in THREAD_PARAMETERS} == {k: chosen[k]
                                                              for k in THREAD_PARAMETERS}
    assert POSE_NODE_ENV["OMP_WAIT_POLICY"].lower() == chosen["omp_wait_policy"]


def test_package_default_policy_is_the_benchmarks_choice() -> None:
    chosen = _chosen()
    assert DEFAULT_THREAD_POLICY == ThreadPolicy(chosen["network_threads"],
                                                 chosen["network_inter_op_threads"],
                                                 chosen["grouping_threads"])
    assert NodeParams().thread_policy() == DEFAULT_THREAD_POLICY


def test_network_threads_reach_the_onnxruntime_options_unless_set_there() -> None:
    policy = ThreadPolicy(network_threads=3, network_inter_op_threads=2, grouping_threads=1)
    options = _with_thread_counts(None, policy)
    assert (options.intra_op_threads, options.inter_op_threads) == (3, 2)
    explicit = _with_thread_counts(BackendOptions(intra_op_threads=1), policy)
    assert (explicit.intra_op_threads, explicit.inter_op_threads) == (1, 2)
    assert _with_thread_counts({}, ThreadPolicy()).intra_op_threads is None


def test_torch_threads_apply_inside_the_block_and_are_restored() -> None:
    import torch

    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    with torch_threads(target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with torch_threads(0):
        assert torch.get_num_threads() == before


def test_worker_pins_itself_to_its_cpus() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    seen: list[set[int]] = []
    done = threading.Event()

    def handler(item: int) -> None:
        seen.append(os.sched_getaffinity(0))
        done.set()

    buffer: LatestFrameBuffer[int] = LatestFrameBuffer()
    worker = FrameWorker(buffer, handler, cpus=(cpus[-1],))
    worker.start()
    try:
        buffer.put(1)
        assert done.wait(10.0)
    finally:
        worker.stop()
    assert worker.pinned and seen == [{cpus[-1]}]
    assert os.sched_getaffinity(0) == set(cpus)  # only the worker thread was pinned
    assert not pin_current_thread([])


def test_thread_parameters_are_validated() -> None:
    assert NodeParams(worker_cpus="0, 1").worker_cpu_set() == (0, 1)
    with pytest.raises(ValueError, match="worker_cpus"):
        NodeParams(worker_cpus="first")
    with pytest.raises(ValueError, match="omp_wait_policy"):
        NodeParams(omp_wait_policy="spin")
    with pytest.raises(ValueError):
        ThreadPolicy(grouping_threads=-1)


def test_openmp_wait_policy_after_torch_loaded_is_reported_not_pretended() -> None:
    import torch  # noqa: F401 - loaded: the policy in the environment is what is in effect

    current = os.environ.get("OMP_WAIT_POLICY", "").lower()
    other = "active" if current != "active" else "passive"
    assert set_openmp_wait_policy(other) is False
    assert os.environ.get("OMP_WAIT_POLICY", "").lower() == current
    assert set_openmp_wait_policy("") is True
