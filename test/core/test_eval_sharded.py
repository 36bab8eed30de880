"""`pose-eval` under torchrun: 2 CPU processes (gloo), each on a shard of the images, give the
single-process metrics and records exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pose_core.evaluation.cli import main as eval_main
from pose_core.evaluation.sharding import shard_positions


def test_shards_cover_every_image_once() -> None:
    shards = [list(shard_positions(7, rank, 3)) for rank in range(3)]
    assert sorted(p for shard in shards for p in shard) == list(range(7))


@pytest.mark.slow
def test_two_processes_give_the_single_process_ap(fixtures_dir: Path, tmp_path: Path) -> None:
    coco = fixtures_dir / "coco"
    common = ["--dataset", "coco", "--annotations", str(coco / "test_coco.json"),
              "--images", str(coco), "--model", "higherhrnet_lite_w16_256_coco",
              "--backend", "torch"]
    assert eval_main([*common, "--json", str(tmp_path / "one.json"),
                      "--save-results", str(tmp_path / "one_records.json")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_port", str(29500 + os.getpid() % 1000)]
    completed = subprocess.run(
        [*torchrun, "-m", "pose_core.evaluation.cli", *common, "--json",
         str(tmp_path / "two.json"), "--save-results", str(tmp_path / "two_records.json")],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    one = json.loads((tmp_path / "one.json").read_text())
    two = json.loads((tmp_path / "two.json").read_text())
    assert two == one and one["AP"] > 0
    assert (json.loads((tmp_path / "two_records.json").read_text())
            == json.loads((tmp_path / "one_records.json").read_text()))
