"""FrameScorer: people recall / precision at OKS 0.5, keypoint error, wrong-person edges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pose_core.data.synthetic import SyntheticVideo
from pose_core.evaluation.frame_scoring import FrameScorer, object_keypoint_similarity
from pose_core.keypoint_specs import COCO_17


def _scene(seed: int = 1):
    scene = SyntheticVideo(640, 480, num_people=4, fps=10.0, seed=seed).frame(60)
    visible = (scene.keypoints[..., 2] == 2).sum(axis=1)
    assert (visible >= 5).sum() >= 3, "the test scene must show people"
    return scene


def _as_predicted(truth: np.ndarray) -> np.ndarray:
    """The labelled people of the ground truth as a perfect detector would publish them."""
    predicted = truth.astype(np.float64).copy()
    predicted[..., 2] = (truth[..., 2] > 0) * 0.9
    return predicted[(truth[..., 2] > 0).any(axis=1)]


def test_ground_truth_scores_perfectly() -> None:
    scene = _scene()
    scorer = FrameScorer(COCO_17)
    frame = scorer.score(_as_predicted(scene.keypoints), scene.keypoints, scene.areas)
    required = int(((scene.keypoints[..., 2] == 2).sum(axis=1) >= 5).sum())
    assert frame.true_positives == required and frame.false_positives == 0
    summary = scorer.summary()
    assert summary["recall"] == 1.0 and summary["precision"] == 1.0
    assert summary["keypoint_error_px_median"] == 0.0
    assert summary["edges_drawn"] > 0 and summary["edges_wrong"] == 0


def test_oks_matches_the_coco_formula_for_one_joint_off() -> None:
    truth = np.zeros((1, 17, 3))
    truth[0, :, :2] = np.arange(34).reshape(17, 2) * 10.0
    truth[0, :, 2] = 2
    predicted = truth.copy()
    predicted[0, 0, 0] += 5.0
    area = 2000.0
    k = 2 * COCO_17.sigmas[0]
    expected = (16 + math.exp(-25.0 / (2 * area * k * k))) / 17
    oks = object_keypoint_similarity(predicted, truth, np.array([area]), np.array(COCO_17.sigmas))
    assert oks[0, 0] == pytest.approx(expected, rel=1e-9)


def test_missing_and_extra_people_lower_recall_and_precision() -> None:
    scene = _scene()
    labelled = scene.keypoints[(scene.keypoints[..., 2] > 0).any(axis=1)]
    predicted = _as_predicted(labelled)
    required = np.nonzero((labelled[..., 2] == 2).sum(axis=1) >= 5)[0]
    dropped = np.delete(predicted, required[0], axis=0)
    stray = predicted[required[1]].copy()
    stray[:, 0] += 200.0  # a person where nobody is
    scorer = FrameScorer(COCO_17)
    areas = scene.areas[(scene.keypoints[..., 2] > 0).any(axis=1)]
    frame = scorer.score(np.concatenate([dropped, stray[None]]), labelled, areas)
    assert frame.false_negatives == 1 and frame.false_positives == 1
    summary = scorer.summary()
    assert summary["recall"] == pytest.approx((len(required) - 1) / len(required))
    assert summary["precision"] == pytest.approx((len(required) - 1) / len(required))


def test_a_limb_taken_from_another_person_makes_its_edges_wrong() -> None:
    scene = _scene()
    truth = scene.keypoints[(scene.keypoints[..., 2] > 0).any(axis=1)]
    labelled = (truth[..., 2] > 0).sum(axis=1)
    first, second = np.argsort(-labelled)[:2]
    predicted = _as_predicted(truth)
    right_arm = [6, 8, 10]  # shoulder, elbow, wrist
    predicted[first, [8, 10]] = predicted[second, [8, 10]]  # elbow and wrist of the other one
    both_labelled = all(truth[p, j, 2] > 0 for p in (first, second) for j in right_arm)
    assert both_labelled, "the test needs the right arm of both people labelled"
    scorer = FrameScorer(COCO_17)
    areas = scene.areas[(scene.keypoints[..., 2] > 0).any(axis=1)]
    frame = scorer.score(predicted, truth, areas)
    # shoulder-elbow crosses people; elbow-wrist stays within the other person
    assert frame.edges_wrong == 1
    assert scorer.summary()["wrong_edge_fraction"] == pytest.approx(1 / frame.edges_drawn)
    # the joints' owners behind it: the taken elbow and wrist belong to the other person
    owners = scorer.joint_owners(predicted, truth, areas)
    assert owners[first, 8] == owners[first, 10] == second
    assert owners[first, 6] == first and owners[second, 8] == second


def test_hardly_visible_people_count_neither_way() -> None:
    truth = np.zeros((1, 17, 3))
    truth[0, :, 0] = np.linspace(100, 160, 17)
    truth[0, :, 1] = np.linspace(100, 300, 17)
    truth[0, :3, 2] = 2
    truth[0, 3:, 2] = 1  # hidden: labelled but not visible
    scorer = FrameScorer(COCO_17)
    frame = scorer.score(_as_predicted(truth), truth, np.array([4000.0]))
    assert (frame.true_positives, frame.false_positives, frame.false_negatives) == (0, 0, 0)
    frame = scorer.score(np.zeros((0, 17, 3)), truth, np.array([4000.0]))
    assert frame.false_negatives == 0
