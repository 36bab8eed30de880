"""Scoring published people against exact ground truth, frame by frame (the demo's evaluation).

COCO AP summarises a ranked list; a robot's user sees one frame at a time, with the people the
node decided to publish. This module counts what such a user sees:

- people recall and precision at OKS >= 0.5: predictions and ground-truth people are matched
  greedily by OKS (COCO's formula and sigmas, ground-truth `area` as the scale), highest first,
  each at most once. Ground-truth people with fewer than `min_visible_joints` visible joints
  (walking in at the border, hidden behind others) need not be found: a prediction matched to
  one counts neither way, like COCO's ignored people;
- keypoint error: pixel distance of each labelled joint of a matched pair;
- wrong-person edges: of the skeleton edges drawn (both joints above `keypoint_min_score`),
  those whose two joints belong to different ground-truth people. A joint belongs to the
  ground-truth person whose joint of the same type it is most similar to by COCO's per-joint
  similarity exp(-d^2 / (2 s^2 k^2)), when that similarity is at least `joint_similarity`
  (0.5: about 1.2 k s pixels); a joint near nobody belongs to no one and cannot make an edge
  wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pose_core.keypoint_specs import KeypointSpec

__all__ = [
    "FrameScore",
    "FrameScorer",
    "keypoint_similarity",
    "match_people",
    "object_keypoint_similarity",
    "position_errors",
]


def keypoint_similarity(
    predicted: np.ndarray, truth: np.ndarray, areas: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """COCO per-joint similarity, (P, G, J): exp(-d^2 / (2 area (2 sigma)^2)).

    predicted: (P, J, >=2) x, y; truth: (G, J, >=2); areas: (G,); sigmas: (J,).
    """
    d2 = ((predicted[:, None, :, :2] - truth[None, :, :, :2]) ** 2).sum(axis=-1)
    variances = (2.0 * np.asarray(sigmas, np.float64)) ** 2
    scale = np.maximum(np.asarray(areas, np.float64), 1e-9)[None, :, None]
    return np.exp(-d2 / (2.0 * scale * variances[None, None, :]))


def object_keypoint_similarity(
    predicted: np.ndarray, truth: np.ndarray, areas: np.ndarray, sigmas: np.ndarray
) -> np.ndarray:
    """COCO OKS, (P, G): the mean joint similarity over each ground truth's labelled joints."""
    similarity = keypoint_similarity(predicted, truth, areas, sigmas)
    labelled = (truth[..., 2] > 0)[None, :, :]
    counts = labelled.sum(axis=-1)
    total = np.where(labelled, similarity, 0.0).sum(axis=-1)
    return np.where(counts > 0, total / np.maximum(counts, 1), 0.0)


def match_people(
    predicted: np.ndarray, truth: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
    oks_threshold: float = 0.5,
) -> np.ndarray:
    """(P,) the ground-truth person each prediction is matched to, -1 for none: greedily by OKS,
    highest first, each person at most once, pairs with OKS >= `oks_threshold`."""
    matched_truth = np.full(len(predicted), -1)
    if not len(predicted) or not len(truth):
        return matched_truth
    oks = object_keypoint_similarity(predicted, truth, areas, sigmas)
    taken_p = np.zeros(len(predicted), bool)
    taken_g = np.zeros(len(truth), bool)
    for flat in np.argsort(-oks, axis=None, kind="stable"):
        p, g = np.unravel_index(flat, oks.shape)
        if oks[p, g] < oks_threshold:
            break
        if taken_p[p] or taken_g[g]:
            continue
        taken_p[p] = taken_g[g] = True
        matched_truth[p] = g
    return matched_truth


def position_errors(
    positions: np.ndarray, valid: np.ndarray, truth_positions: np.ndarray,
    truth_visibility: np.ndarray, matched_truth: np.ndarray,
) -> np.ndarray:
    """3D keypoint errors: the distance of each matched prediction's joint that has a position
    (`valid`) and is visible (2) in its ground-truth person, to that person's 3D joint.

    positions: (P, J, 3); valid: (P, J); truth_positions: (G, J, 3); truth_visibility: (G, J);
    matched_truth: (P,) from `match_people`.
    """
    errors = []
    for p, g in enumerate(np.asarray(matched_truth)):
        if g >= 0:
            use = np.asarray(valid[p], bool) & (np.asarray(truth_visibility[g]) == 2)
            errors.append(np.linalg.norm(positions[p, use] - truth_positions[g, use], axis=1))
    return np.concatenate(errors) if errors else np.zeros(0)


@dataclass
class FrameScore:
    """Counts of one frame (see the module docstring)."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    edges_drawn: int = 0
    edges_wrong: int = 0
    keypoint_errors: list[float] = field(default_factory=list)


@dataclass
class FrameScorer:
    """Scores frames and keeps the totals.

    Args:
        spec: keypoint layout (sigmas, skeleton).
        oks_threshold: OKS for a prediction to count as finding a person.
        min_visible_joints: ground-truth people with fewer visible joints need not be found.
        keypoint_min_score: joints above it are drawn (the node's `keypoint_min_score`).
        joint_similarity: per-joint similarity for a drawn joint to belong to a person.
    """

    spec: KeypointSpec
    oks_threshold: float = 0.5
    min_visible_joints: int = 5
    keypoint_min_score: float = 0.1
    joint_similarity: float = 0.5
    frames: list[FrameScore] = field(default_factory=list)

    def score(self, predicted: np.ndarray, truth: np.ndarray, areas: np.ndarray) -> FrameScore:
        """Score one frame and add it to the totals.

        predicted: (P, J, 3) x, y, score of the published people; truth: (G, J, 3) x, y,
        visibility (0 unlabelled, 1 hidden, 2 visible); areas: (G,) ground-truth areas (px^2).
        """
        predicted = np.asarray(predicted, np.float64).reshape(-1, self.spec.num_keypoints, 3)
        truth = np.asarray(truth, np.float64).reshape(-1, self.spec.num_keypoints, 3)
        areas = np.asarray(areas, np.float64).reshape(-1)
        sigmas = np.asarray(self.spec.sigmas, np.float64)
        required = (truth[..., 2] == 2).sum(axis=1) >= self.min_visible_joints
        frame = FrameScore()
        matched_truth = match_people(predicted, truth, areas, sigmas, self.oks_threshold)
        found = np.zeros(len(truth), bool)
        found[matched_truth[matched_truth >= 0]] = True
        frame.true_positives = int((found & required).sum())
        frame.false_negatives = int((~found & required).sum())
        frame.false_positives = int((matched_truth < 0).sum())
        for p, g in enumerate(matched_truth):
            if g >= 0:
                labelled = truth[g, :, 2] > 0
                errors = np.linalg.norm(predicted[p, labelled, :2] - truth[g, labelled, :2],
                                        axis=1)
                frame.keypoint_errors.extend(float(e) for e in errors)
        self._score_edges(predicted, truth, areas, sigmas, frame)
        self.frames.append(frame)
        return frame

    def joint_owners(self, predicted: np.ndarray, truth: np.ndarray,
                     areas: np.ndarray) -> np.ndarray:
        """(P, J) the ground-truth person each predicted joint belongs to (the rule of the
        wrong-person edges: the most similar same joint, similarity >= `joint_similarity`),
        -1 for none; drawn or not."""
        predicted = np.asarray(predicted, np.float64).reshape(-1, self.spec.num_keypoints, 3)
        truth = np.asarray(truth, np.float64).reshape(-1, self.spec.num_keypoints, 3)
        return self._owners(predicted, truth, np.asarray(areas, np.float64).reshape(-1),
                            np.asarray(self.spec.sigmas, np.float64))

    def _owners(self, predicted: np.ndarray, truth: np.ndarray, areas: np.ndarray,
                sigmas: np.ndarray) -> np.ndarray:
        owner = np.full(predicted.shape[:2], -1)
        if len(predicted) and len(truth):
            similarity = keypoint_similarity(predicted, truth, areas, sigmas)  # (P, G, J)
            similarity = np.where((truth[..., 2] > 0)[None], similarity, 0.0)
            best = similarity.argmax(axis=1)
            best_value = np.take_along_axis(similarity, best[:, None, :], axis=1)[:, 0]
            owner = np.where(best_value >= self.joint_similarity, best, -1)
        return owner

    def _score_edges(self, predicted: np.ndarray, truth: np.ndarray, areas: np.ndarray,
                     sigmas: np.ndarray, frame: FrameScore) -> None:
        if not len(predicted):
            return
        drawn = predicted[..., 2] > self.keypoint_min_score
        owner = self._owners(predicted, truth, areas, sigmas)
        for a, b in self.spec.skeleton:
            both = drawn[:, a] & drawn[:, b]
            frame.edges_drawn += int(both.sum())
            wrong = both & (owner[:, a] >= 0) & (owner[:, b] >= 0) & (owner[:, a] != owner[:, b])
            frame.edges_wrong += int(wrong.sum())

    def summary(self) -> dict[str, float | int]:
        """Totals over the scored frames: recall, precision, keypoint error, wrong edges."""
        tp = sum(f.true_positives for f in self.frames)
        fp = sum(f.false_positives for f in self.frames)
        fn = sum(f.false_negatives for f in self.frames)
        drawn = sum(f.edges_drawn for f in self.frames)
        wrong = sum(f.edges_wrong for f in self.frames)
        errors = np.asarray([e for f in self.frames for e in f.keypoint_errors], np.float64)
        return {
            "frames": len(self.frames),
            "people_true": tp + fn,
            "people_published": tp + fp,
            "recall": tp / (tp + fn) if tp + fn else float("nan"),
            "precision": tp / (tp + fp) if tp + fp else float("nan"),
            "keypoint_error_px_median": float(np.median(errors)) if errors.size else float("nan"),
            "keypoint_error_px_p90": float(np.percentile(errors, 90)) if errors.size
            else float("nan"),
            "edges_drawn": drawn,
            "edges_wrong": wrong,
            "wrong_edge_fraction": wrong / drawn if drawn else 0.0,
        }
