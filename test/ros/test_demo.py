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


@pytest.mark.parametrize(("goal", "missed"), [
    (["--min-recall", "0.95"], "recall"),
    (["--eval-frames", "100000"], "frames scored"),
])
def test_demo_exits_3_when_an_evaluation_goal_is_missed(
    tmp_path: Path, random_checkpoint: Path, goal: list[str], missed: str
) -> None:
    """Exit status 3 when a goal is missed: random weights find nobody (recall), and 4 s give
    far fewer scored frames than asked."""
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "pose_ros.demo", "--duration", "4", "--out", str(out),
               "--checkpoint", str(random_checkpoint), "--device", "cpu", "--rate", "5",
               "--width", "320", "--height", "240", *goal]
    domain = str(100 + (os.getpid() + 7 + len(missed)) % 100)
    done = subprocess.run(command, env=dict(os.environ, ROS_DOMAIN_ID=domain),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"evaluation goals missed: {missed}" in done.stdout


def test_demo_eval_frames_scores_exactly_that_many_frames_then_stops(
    tmp_path: Path, random_checkpoint: Path
) -> None:
    """`--eval-frames N` ends the run once N PersonArrays are scored, long before the time
    limit; with `--loop-frames` the camera replays cached frames and every answer still finds
    its frame's ground truth."""
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "pose_ros.demo", "--eval-frames", "12", "--duration", "150",
               "--loop-frames", "5", "--out", str(out), "--checkpoint", str(random_checkpoint),
               "--device", "cpu", "--rate", "10", "--width", "320", "--height", "240"]
    domain = str(100 + (os.getpid() + 31) % 100)
    done = subprocess.run(command, env=dict(os.environ, ROS_DOMAIN_ID=domain),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    evaluation = summary["evaluation"]
    assert evaluation["frames"] == evaluation["frames_asked"] == 12
    assert evaluation["frames_without_truth"] == 0 and evaluation["people_true"] > 0
    assert summary["people_messages"] >= 12
    assert summary["seconds"] < 60  # stopped by the frame count, not the 150 s limit
    assert "frames scored: 12 of 12 asked" in done.stdout
    assert "evaluation over 12 frames" in done.stdout
    assert "processed frames/s" in done.stdout
    assert "Traceback" not in done.stderr


def test_demo_arguments_resolve_the_duration_and_refuse_eval_without_ground_truth() -> None:
    from pose_ros.demo import DEFAULT_DURATION_S, EVAL_TIME_LIMIT_S, _parse

    assert _parse([]).duration == DEFAULT_DURATION_S
    assert _parse(["--eval-frames", "200"]).duration == EVAL_TIME_LIMIT_S
    assert _parse(["--eval-frames", "200", "--duration", "40"]).duration == 40.0
    assert _parse(["--duration", "0"]).duration == 0.0
    for refused in (["--eval-frames", "5", "--two-processes"], ["--eval-frames", "-1"],
                    ["--loop-frames", "-2"]):
        with pytest.raises(SystemExit) as exit_info:
            _parse(refused)
        assert exit_info.value.code == 2
