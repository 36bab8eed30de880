"""PoseTracker: the joint gate, run-time reconfiguration, and input it must survive."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from pose_core.structures import Poses
from pose_core.tracking import JointGate, PoseTracker, StampWentBack, TrackerConfig

RNG = np.random.default_rng(1)
# a standing person's 17 joints in a 40 x 100 px box (person size about 108 px)
TEMPLATE = np.column_stack([RNG.uniform(0, 40, 17), np.linspace(0, 100, 17)])
WRIST = 9


def person(x: float, score: float = 0.9) -> np.ndarray:
    return np.column_stack([TEMPLATE + (x, 100.0), np.full(17, score)]).astype(np.float32)


def frame(*people: np.ndarray) -> Poses:
    keypoints = np.stack(people)
    return Poses(keypoints, keypoints[:, :, 2].mean(axis=1))


def test_gate_rejects_a_joint_that_leaps_and_accepts_it_after_patience() -> None:
    tracker = PoseTracker(joint_gate_speed=3.0, joint_gate_patience=3, min_hits=1)
    for t in range(3):  # walking 2 px per frame at 10 Hz
        out = tracker.update(frame(person(100 + 2 * t)), t / 10)
        assert (out.keypoints[0, :, 2] > 0).all()
    leapt = person(106)
    leapt[WRIST, :2] += (80.0, 0.0)  # 80 px in 0.1 s: 7 person sizes per second
    out = tracker.update(frame(leapt), 0.3)
    assert out.keypoints[0, WRIST, 2] == 0.0  # hidden, position kept
    assert out.keypoints[0, WRIST, 0] == pytest.approx(leapt[WRIST, 0])
    assert (np.delete(out.keypoints[0, :, 2], WRIST) > 0).all()
    # still there the next frame (rejected twice in a row) ...
    leapt2 = person(108)
    leapt2[WRIST, :2] += (80.0, 0.0)
    assert tracker.update(frame(leapt2), 0.4).keypoints[0, WRIST, 2] == 0.0
    # ... and the third time it is accepted: a real move is followed after patience frames
    leapt3 = person(110)
    leapt3[WRIST, :2] += (80.0, 0.0)
    assert tracker.update(frame(leapt3), 0.5).keypoints[0, WRIST, 2] > 0.0


def test_gate_radius_grows_with_the_time_since_the_joint_was_accepted() -> None:
    gate = JointGate(17, max_speed=3.0, floor=0.1, patience=100)
    assert not gate(person(0), 0.0, 0.1).any()
    moved = person(0)
    moved[WRIST, 0] += 60.0  # 60 px of a ~108 px person
    assert gate(moved, 0.1, 0.1)[WRIST]  # 0.1 s: radius 0.3 x size = 32 px
    assert not gate(moved, 0.3, 0.1)[WRIST]  # 0.3 s since accepted: radius 97 px


def test_gate_is_off_by_default_and_a_returning_joint_passes() -> None:
    tracker = PoseTracker(min_hits=1)
    tracker.update(frame(person(100)), 0.0)
    leapt = person(100)
    leapt[WRIST, 0] += 80.0
    assert tracker.update(frame(leapt), 0.1).keypoints[0, WRIST, 2] > 0
    gated = PoseTracker(min_hits=1, joint_gate_speed=3.0)
    gated.update(frame(person(100)), 0.0)
    assert gated.update(frame(leapt), 0.1).keypoints[0, WRIST, 2] == 0.0
    # the joint comes back to where it was accepted: it passes at once
    assert gated.update(frame(person(100)), 0.2).keypoints[0, WRIST, 2] > 0


def test_reconfigure_reaches_existing_smoothers_and_gates() -> None:
    tracker = PoseTracker(min_hits=1, smoothing=True, min_cutoff=0.01, joint_gate_speed=3.0)
    tracker.update(frame(person(0)), 0.0)
    tracker.update(frame(person(10)), 0.1)
    tracker.reconfigure(TrackerConfig(smoothing=True, min_cutoff=100.0, beta=0.0,
                                      min_hits=1, joint_gate_speed=50.0))
    out = tracker.update(frame(person(20)), 0.2)
    # cut-off 100 Hz at 10 Hz frames: alpha ~0.98, the output is almost the raw 20 px shift
    assert out.keypoints[0, 0, 0] == pytest.approx(TEMPLATE[0, 0] + 20, abs=1.0)
    leapt = person(25)
    leapt[WRIST, 0] += 80.0  # within 50 person sizes / s
    assert tracker.update(frame(leapt), 0.3).keypoints[0, WRIST, 2] > 0


def test_bad_input_is_handled() -> None:
    tracker = PoseTracker(min_hits=1)
    with pytest.raises(ValueError, match="finite"):
        tracker.update(frame(person(0)), float("nan"))
    tracker.update(frame(person(0), person(200)), 1.0)
    with pytest.raises(StampWentBack):
        tracker.update(frame(person(0)), 0.5)
    # a non-finite joint is a joint not found: no crash, the ids stay
    broken = person(2)
    broken[3, :2] = np.nan
    broken[4, 2] = np.nan
    out = tracker.update(Poses(np.stack([broken, person(202)]), np.array([0.9, 0.9])), 1.1)
    assert sorted(out.ids.tolist()) == [0, 1]
    assert np.isfinite(out.keypoints).all() and out.keypoints[0, 3, 2] == 0.0
    # the wrong joint layout is named
    with pytest.raises(ValueError, match="crowdpose"):
        tracker.update(Poses(np.zeros((1, 14, 3), np.float32), np.ones(1)), 1.2)
    # a person with no joint found: no overflow warning
    empty = person(400, score=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracker.update(Poses(np.stack([person(4), empty]), np.array([0.9, 0.6])), 1.3)


def test_gate_options_are_checked() -> None:
    with pytest.raises(ValueError, match="joint_gate"):
        TrackerConfig(joint_gate_speed=-1.0)
    with pytest.raises(ValueError, match="joint_gate"):
        TrackerConfig(joint_gate_patience=0)
    with pytest.raises(ValueError):
        JointGate(17, max_speed=0.0, floor=0.1, patience=3)
