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


def test_demo_with_depth_reports_people_3d_and_the_3d_error(tmp_path: Path) -> None:
    """`--depth`: the camera publishes aligned depth, the node people_3d; positions arrive and
    the evaluation prints the 3D error against the exact truth (the shipped model: random
    weights would find nobody to place in 3D)."""
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "pose_ros.demo", "--depth", "--eval-frames", "6",
               "--duration", "120", "--out", str(out), "--device", "cpu", "--rate", "5",
               "--width", "320", "--height", "240"]
    domain = str(100 + (os.getpid() + 53) % 100)
    done = subprocess.run(command, env=dict(os.environ, ROS_DOMAIN_ID=domain),
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["people_3d_messages"] > 0 and summary["positions_3d"] > 0
    evaluation = summary["evaluation"]
    assert evaluation["frames_3d"] > 0 and evaluation["keypoints_3d"] > 0
    assert 0.0 < evaluation["keypoint_error_3d_m_median"] < 0.2  # metres, noise-free depth
    assert f"people_3d: {summary['people_3d_messages']} messages" in done.stdout
    assert "3D keypoint error over" in done.stdout
    assert "Traceback" not in done.stderr


def test_demo_arguments_resolve_the_duration_and_refuse_eval_without_ground_truth() -> None:
    from pose_ros.demo import (
        DEFAULT_DURATION_S,
        EVAL_TIME_LIMIT_S,
        _camera_overrides,
        _parse,
        _pose_overrides,
    )

    default = _parse([])
    assert not default.depth  # depth only when asked for
    assert "depth" not in {p.name for p in _pose_overrides(default)}
    assert "publish_depth" not in {p.name for p in _camera_overrides(default)}
    with_depth = _parse(["--depth"])
    assert {p.name: p.value for p in _pose_overrides(with_depth)}["depth"] is True
    assert {p.name: p.value for p in _camera_overrides(with_depth)}["publish_depth"] is True
    assert _parse([]).duration == DEFAULT_DURATION_S
    assert _parse(["--eval-frames", "200"]).duration == EVAL_TIME_LIMIT_S
    assert _parse(["--eval-frames", "200", "--duration", "40"]).duration == 40.0
    assert _parse(["--duration", "0"]).duration == 0.0
    for refused in (["--eval-frames", "5", "--two-processes"], ["--eval-frames", "-1"],
                    ["--loop-frames", "-2"]):
        with pytest.raises(SystemExit) as exit_info:
            _parse(refused)
        assert exit_info.value.code == 2


def test_demo_passes_other_node_parameters_through() -> None:
    from pose_ros.demo import _parse, _pose_overrides

    args = _parse(["--param", "track_joint_gate_speed:=0", "--param", "scales:=[1.0, 1.5]",
                   "--param", "flip_test:=true"])
    values = {p.name: p.value for p in _pose_overrides(args)}
    assert values["track_joint_gate_speed"] == 0.0
    assert isinstance(values["track_joint_gate_speed"], float)  # the parameter's type
    assert values["scales"] == [1.0, 1.5] and values["flip_test"] is True
    with pytest.raises(SystemExit):
        _parse(["--param", "flip_test=true"])
