"""The README's main job: `python -m pose_ros.demo` runs, prints its live line, saves frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.mark.parametrize("two_processes", [False, True])
def test_demo_runs_for_its_duration_and_saves_annotated_frames(
    tmp_path: Path, random_checkpoint: Path, two_processes: bool
) -> None:
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "pose_ros.demo", "--duration", "6", "--out", str(out),
               "--checkpoint", str(random_checkpoint), "--device", "cpu", "--rate", "5",
               "--width", "320", "--height", "240"]
    if two_processes:
        command.append("--two-processes")
    domain = str(100 + (os.getpid() + int(two_processes)) % 100)
    done = subprocess.run(command, env=dict(os.environ, ROS_DOMAIN_ID=domain),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("t=")]
    assert len(lines) >= 4 and "fps" in lines[-1] and "latency p50" in lines[-1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["people_messages"] > 0
    assert summary["saved_frames"] and (out / summary["saved_frames"][0]).is_file()
    assert summary["dds_profile"].endswith("fastdds_shm.xml")
    assert "Traceback" not in done.stderr
