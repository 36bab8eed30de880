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
    assert (out / "contact_sheet.jpg").is_file()
    assert "Traceback" not in done.stderr
    evaluation = summary["evaluation"]
    if two_processes:  # the camera's ground truth is in another process
        assert evaluation is None and "not scored" in done.stdout
    else:
        # every PersonArray answered a frame of the in-process camera, scored against its
        # ground truth (random weights: the numbers themselves say nothing here)
        assert evaluation["frames"] == summary["people_messages"] - evaluation[
            "frames_without_truth"] > 0
        assert evaluation["frames_without_truth"] == 0
        assert evaluation["people_true"] > 0
        assert "evaluation over" in done.stdout


def test_demo_exits_3_when_an_evaluation_goal_is_missed(
    tmp_path: Path, random_checkpoint: Path
) -> None:
    """Random weights find nobody: a recall goal turns that into exit status 3."""
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "pose_ros.demo", "--duration", "4", "--out", str(out),
               "--checkpoint", str(random_checkpoint), "--device", "cpu", "--rate", "5",
               "--width", "320", "--height", "240", "--min-recall", "0.95"]
    domain = str(100 + (os.getpid() + 7) % 100)
    done = subprocess.run(command, env=dict(os.environ, ROS_DOMAIN_ID=domain),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    assert "evaluation goals missed: recall" in done.stdout
