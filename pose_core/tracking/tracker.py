"""Persistent person ids over frames: `PoseTracker`.

Each frame's people are associated with the tracks by an assignment problem
(`scipy.optimize.linear_sum_assignment`) on a similarity that mixes keypoint similarity (OKS
against the track's keypoints, moved by their constant-velocity prediction) and joint-box IoU.
Association runs in stages by score, as ByteTrack does (Zhang et al., "ByteTrack: Multi-Object
Tracking by Associating Every Detection Box", ECCV 2022): confident people first to every
confirmed track, then low-score people to the confirmed tracks left (a partly occluded person
keeps its id), then the confident people left to the tentative tracks. A track is born
tentative and gets its id when it has been matched `min_hits` frames in a row (on the first
frame after a reset, at once); a confirmed track is dropped after `max_misses` frames without a
match. Ids count up from 0 and are never reused by a tracker, `reset()` included. Given the
frame's image (and `appearance_weight` > 0), the similarity also compares the colours along
each person's limbs with the track's running average of them (`appearance`): two people who
cross or overlap are close in keypoints but seldom in clothes.

Frames: keypoints in image pixels (x, y, score); time stamps in seconds, non-decreasing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from pose_core.keypoint_specs import KeypointSpec, get_keypoint_spec
from pose_core.structures import Poses
from pose_core.tracking.appearance import appearance_similarity, limb_colours
from pose_core.tracking.joint_gate import JointGate
from pose_core.tracking.one_euro import OneEuroFilter
from pose_core.tracking.similarity import box_iou_matrix, joint_boxes, oks_matrix

__all__ = ["PoseTracker", "StampWentBack", "TrackerConfig"]


class StampWentBack(ValueError):
    """`PoseTracker.update` got a stamp earlier than the previous one (a replayed bag)."""


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker options.

    Attributes:
        keypoints: the joint layout ("coco", "crowdpose" or a KeypointSpec): OKS sigmas.
        high_score: people scoring at least this are associated first and may start tracks.
        low_score: people scoring below this are ignored; between the two, they only continue
            confirmed tracks.
        keypoint_min_score: joints above this score count in OKS, boxes and velocities.
        min_similarity: smallest similarity of a match (first and third stage).
        low_min_similarity: smallest similarity of a low-score match (second stage).
        oks_weight: motion similarity = oks_weight x OKS + (1 - oks_weight) x box IoU.
        appearance_weight: with an image, similarity = (1 - w) x motion similarity + w x
            appearance similarity (limb colours; the motion similarity alone where a person
            and a track share no visible limb); 0 ignores images. 0.3 was chosen on tuning
            videos (training/tracking_appearance.py, docs/tracking.md).
        appearance_scale: Lab distance (OpenCV 8-bit units) at which the appearance
            similarity is 1/e.
        appearance_momentum: a track's limb colours = momentum x old + (1 - momentum) x new.
        min_hits: consecutive matched frames before a track is confirmed (gets its id).
        max_misses: frames without a match before a confirmed track is dropped.
        predict_velocity: move each track's joints by their last velocity before matching.
        smoothing: One-Euro filter on the published keypoints of each track, its cut-off set by
            the person's speed (`OneEuroFilter(shared_speed=True)`); the defaults cut the
            jitter of standing people by about two thirds at a few per cent more error on
            walking ones (docs/tracking.md).
        min_cutoff / beta / d_cutoff: the One-Euro parameters (Hz, 1/px, Hz).
        joint_gate_speed: > 0: a confirmed track's joint that moved farther than this many
            person sizes per second since its last accepted place is published with score 0
            (`JointGate`: a joint leaping to another person); 0 turns the gate off.
        joint_gate_floor: the gate's smallest radius, as a fraction of the person size.
        joint_gate_patience: a joint rejected this many frames in a row is accepted.
    """

    keypoints: str | KeypointSpec = "coco"
    high_score: float = 0.5
    low_score: float = 0.1
    keypoint_min_score: float = 0.1
    min_similarity: float = 0.2
    low_min_similarity: float = 0.4
    oks_weight: float = 0.5
    appearance_weight: float = 0.6
    appearance_scale: float = 20.0
    appearance_momentum: float = 0.8
    min_hits: int = 2
    max_misses: int = 15
    predict_velocity: bool = True
    smoothing: bool = False
    min_cutoff: float = 0.5
    beta: float = 0.05
    d_cutoff: float = 1.0
    joint_gate_speed: float = 0.0
    joint_gate_floor: float = 0.1
    joint_gate_patience: int = 3

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score:
            raise ValueError("TrackerConfig needs 0 <= low_score <= high_score")
        if self.min_hits < 1 or self.max_misses < 0:
            raise ValueError("TrackerConfig needs min_hits >= 1 and max_misses >= 0")
        for name in ("oks_weight", "appearance_weight", "appearance_momentum"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TrackerConfig.{name} must be in [0, 1]")
        if self.appearance_scale <= 0:
            raise ValueError("TrackerConfig.appearance_scale must be > 0")
        if self.joint_gate_speed < 0 or self.joint_gate_floor < 0 or self.joint_gate_patience < 1:
            raise ValueError("TrackerConfig needs joint_gate_speed >= 0, joint_gate_floor >= 0 "
                             "and joint_gate_patience >= 1")

    @property
    def spec(self) -> KeypointSpec:
        if isinstance(self.keypoints, KeypointSpec):
            return self.keypoints
        return get_keypoint_spec(self.keypoints)


@dataclass
class _Track:
    keypoints: np.ndarray  # (J, 3) last matched observation
    stamp: float
    velocity: np.ndarray  # (J, 2) px / s (0 where unknown)
    track_id: int = -1  # -1 while tentative
    hits: int = 1
    misses: int = 0
    smoother: OneEuroFilter | None = field(default=None, repr=False)
    colours: np.ndarray | None = field(default=None, repr=False)  # (E, 3) limb colours, Lab
    colours_valid: np.ndarray | None = field(default=None, repr=False)  # (E,) bool
    gate: JointGate | None = field(default=None, repr=False)
    rejected: np.ndarray | None = field(default=None, repr=False)  # (J,) this frame's gate

    def observe_colours(self, colours: np.ndarray, valid: np.ndarray, momentum: float) -> None:
        """Running average of the limb colours seen (a limb seen first is taken as is)."""
        if self.colours is None or self.colours_valid is None:
            self.colours, self.colours_valid = colours.copy(), valid.copy()
            return
        both = valid & self.colours_valid
        self.colours[both] = momentum * self.colours[both] + (1 - momentum) * colours[both]
        first = valid & ~self.colours_valid
        self.colours[first] = colours[first]
        self.colours_valid |= valid

    def predicted(self, stamp: float) -> np.ndarray:
        moved = self.keypoints.copy()
        moved[:, :2] += self.velocity * max(stamp - self.stamp, 0.0)
        return moved


class PoseTracker:
    """Gives the people of successive frames persistent ids.

    Args:
        config: a `TrackerConfig`; or its fields as keywords (`PoseTracker(min_hits=3)`).
    """

    def __init__(self, config: TrackerConfig | None = None, **options: object) -> None:
        if config is not None and options:
            raise TypeError("give PoseTracker a TrackerConfig or keywords, not both")
        names = {f.name for f in dataclasses.fields(TrackerConfig)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown PoseTracker options: {unknown}")
        self.config = config or TrackerConfig(**options)  # type: ignore[arg-type]
        self._sigmas = np.asarray(self.config.spec.sigmas, np.float64)
        self._next_id = 0
        self.reset()

    def reconfigure(self, config: TrackerConfig) -> None:
        """New options from the next frame on; the tracks and their ids are kept (with the new
        smoothing and gate parameters)."""
        self.config = config
        self._sigmas = np.asarray(config.spec.sigmas, np.float64)
        for track in self._tracks:
            if track.smoother is not None:
                track.smoother.min_cutoff = config.min_cutoff
                track.smoother.beta = config.beta
                track.smoother.d_cutoff = config.d_cutoff
            if track.gate is not None:
                track.gate.max_speed = config.joint_gate_speed
                track.gate.floor = config.joint_gate_floor
                track.gate.patience = config.joint_gate_patience

    def reset(self) -> None:
        """Forget every track (ids already given are still never reused)."""
        self._tracks: list[_Track] = []
        self._last_stamp: float | None = None

    @property
    def num_tracks(self) -> int:
        """Confirmed tracks alive (matched now or missed for at most `max_misses` frames)."""
        return sum(t.track_id >= 0 for t in self._tracks)

    # ------------------------------------------------------------------------------------
    def update(
        self,
        poses: Poses,
        stamp_seconds: float,
        *,
        keep_untracked: bool = False,
        image: np.ndarray | None = None,
    ) -> Poses:
        """The people of this frame that belong to confirmed tracks, with `ids`.

        Args:
            poses: this frame's people (image pixels).
            stamp_seconds: the frame's time; must not be earlier than the previous one.
            keep_untracked: also return the other people (tentative tracks, low-score people
                without a track) with id -1, so tracking never hides a detection.
            image: the frame (H, W, 3) uint8 BGR the people were found in, for the appearance
                cue (`appearance_weight`); None: keypoints only.

        Returns:
            Poses (detection order) of the published people: keypoints (smoothed when
            configured), scores, and `ids` (P,) int64 (>= 0; -1 only with keep_untracked).
        """
        stamp = float(stamp_seconds)
        if not np.isfinite(stamp):
            raise ValueError(f"PoseTracker.update: the stamp must be finite, got {stamp}")
        if self._last_stamp is not None and stamp < self._last_stamp:
            raise StampWentBack(
                f"stamp {stamp} is earlier than the previous one ({self._last_stamp}); "
                "call reset() after a time jump"
            )
        num_joints = len(self.config.spec.sigmas)
        if poses.keypoints.shape[1] != num_joints and len(poses.keypoints):
            raise ValueError(
                f"PoseTracker: people have {poses.keypoints.shape[1]} joints but the tracker's "
                f"layout {self.config.spec.name!r} has {num_joints}; pass keypoints= the "
                "model's layout (e.g. PoseTracker(keypoints='crowdpose'))"
            )
        first_frame = self._last_stamp is None
        self._last_stamp = stamp
        cfg = self.config
        people = poses.keypoints.astype(np.float64)
        # a joint with a non-finite coordinate or score is a joint not found
        unusable = ~np.isfinite(people).all(axis=-1)
        people[unusable] = 0.0
        scores = np.nan_to_num(poses.scores.astype(np.float64), nan=0.0)
        colours = None  # this frame's limb colours (and validity), for the appearance cue
        if image is not None and cfg.appearance_weight > 0:
            colours = limb_colours(image, people, cfg.spec.skeleton, cfg.keypoint_min_score)
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero((scores >= cfg.low_score) & (scores < cfg.high_score))
        confirmed = [t for t in self._tracks if t.track_id >= 0]
        tentative = [t for t in self._tracks if t.track_id < 0]
        matches: dict[int, _Track] = {}  # detection -> its track
        rest_high, rest_confirmed = self._associate(
            people, high, confirmed, stamp, cfg.min_similarity, matches, colours
        )
        _, _ = self._associate(people, low, rest_confirmed, stamp, cfg.low_min_similarity,
                               matches, colours)
        rest_high, _ = self._associate(
            people, rest_high, tentative, stamp, cfg.min_similarity, matches, colours
        )
        self._apply_matches(people, matches, stamp, colours)
        self._end_unmatched({id(t) for t in matches.values()})
        for d in rest_high:
            track = _Track(people[d].copy(), stamp, np.zeros((people.shape[1], 2)))
            if colours is not None:
                track.observe_colours(colours[0][d], colours[1][d], cfg.appearance_momentum)
            self._tracks.append(track)
            matches[int(d)] = track
        self._confirm(first_frame)
        self._gate(people, matches, stamp)
        return self._published(people, scores, matches, stamp, keep_untracked)

    # ------------------------------------------------------------------------------------
    def _similarity(
        self,
        people: np.ndarray,
        detections: np.ndarray,
        tracks: list[_Track],
        stamp: float,
        colours: tuple[np.ndarray, np.ndarray] | None,
    ) -> np.ndarray:
        cfg = self.config
        predicted = np.stack([
            t.predicted(stamp) if cfg.predict_velocity else t.keypoints for t in tracks
        ])
        chosen = people[detections]
        oks = oks_matrix(chosen, predicted, self._sigmas, cfg.keypoint_min_score)
        iou = box_iou_matrix(
            joint_boxes(chosen, cfg.keypoint_min_score),
            joint_boxes(predicted, cfg.keypoint_min_score),
        )
        motion = cfg.oks_weight * oks + (1.0 - cfg.oks_weight) * iou
        if colours is None:
            return motion
        num_limbs = colours[0].shape[1]
        track_colours = np.stack([
            t.colours if t.colours is not None else np.zeros((num_limbs, 3), np.float32)
            for t in tracks
        ])
        track_valid = np.stack([
            t.colours_valid if t.colours_valid is not None else np.zeros(num_limbs, bool)
            for t in tracks
        ])
        looks = appearance_similarity(colours[0][detections], colours[1][detections],
                                      track_colours, track_valid, cfg.appearance_scale)
        looks = np.where(np.isnan(looks), motion, looks)
        return (1.0 - cfg.appearance_weight) * motion + cfg.appearance_weight * looks

    def _associate(
        self,
        people: np.ndarray,
        detections: np.ndarray,
        tracks: list[_Track],
        stamp: float,
        min_similarity: float,
        matches: dict[int, _Track],
        colours: tuple[np.ndarray, np.ndarray] | None,
    ) -> tuple[np.ndarray, list[_Track]]:
        """Optimal matching of `detections` to `tracks` above `min_similarity` (into
        `matches`); returns the detections and tracks left."""
        if not len(detections) or not tracks:
            return np.asarray(detections, np.int64), list(tracks)
        similarity = self._similarity(people, detections, tracks, stamp, colours)
        rows, cols = linear_sum_assignment(-similarity)
        used_d, used_t = set(), set()
        for r, c in zip(rows, cols):
            if similarity[r, c] >= min_similarity:
                matches[int(detections[r])] = tracks[c]
                used_d.add(r)
                used_t.add(c)
        left_d = np.asarray([d for i, d in enumerate(detections) if i not in used_d], np.int64)
        return left_d, [t for j, t in enumerate(tracks) if j not in used_t]

    def _apply_matches(
        self,
        people: np.ndarray,
        matches: dict[int, _Track],
        stamp: float,
        colours: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        min_score = self.config.keypoint_min_score
        for d, track in matches.items():
            new = people[d]
            dt = stamp - track.stamp
            both = (new[:, 2] > min_score) & (track.keypoints[:, 2] > min_score)
            velocity = np.zeros_like(track.velocity)
            if dt > 0:
                velocity[both] = (new[both, :2] - track.keypoints[both, :2]) / dt
            # keep the last known motion of joints not seen in both frames
            velocity[~both] = track.velocity[~both]
            track.keypoints, track.velocity, track.stamp = new.copy(), velocity, stamp
            track.hits += 1
            track.misses = 0
            if colours is not None:
                track.observe_colours(colours[0][d], colours[1][d],
                                      self.config.appearance_momentum)

    def _end_unmatched(self, matched: set[int]) -> None:
        """Tentative tracks end at their first miss; confirmed ones after `max_misses`."""
        kept = []
        for track in self._tracks:
            if id(track) in matched:
                kept.append(track)
                continue
            if track.track_id < 0:
                continue  # a tentative track must be matched every frame until confirmed
            track.misses += 1
            track.hits = 0
            if track.misses <= self.config.max_misses:
                kept.append(track)
        self._tracks = kept

    def _confirm(self, first_frame: bool) -> None:
        for track in self._tracks:
            if track.track_id < 0 and (first_frame or track.hits >= self.config.min_hits):
                track.track_id = self._next_id
                self._next_id += 1

    def _gate(self, people: np.ndarray, matches: dict[int, _Track], stamp: float) -> None:
        """Each matched track's `JointGate` sees its observation (tentative tracks too, so a
        track has a history when it is confirmed)."""
        cfg = self.config
        for d, track in matches.items():
            if cfg.joint_gate_speed <= 0:
                track.gate, track.rejected = None, None
                continue
            if track.gate is None:
                track.gate = JointGate(people.shape[1], cfg.joint_gate_speed,
                                       cfg.joint_gate_floor, cfg.joint_gate_patience)
            track.rejected = track.gate(people[d], stamp, cfg.keypoint_min_score)

    def _published(
        self,
        people: np.ndarray,
        scores: np.ndarray,
        matches: dict[int, _Track],
        stamp: float,
        keep_untracked: bool,
    ) -> Poses:
        detections, ids, keypoints = [], [], []
        for d in range(len(people)):
            track = matches.get(d)
            if track is None or track.track_id < 0:
                if keep_untracked:
                    detections.append(d)
                    ids.append(-1)
                    keypoints.append(people[d])
                continue
            observed = people[d]
            if track.rejected is not None and track.rejected.any():
                observed = observed.copy()
                observed[track.rejected, 2] = 0.0
            detections.append(d)
            ids.append(track.track_id)
            keypoints.append(self._smoothed(track, observed, stamp))
        if not detections:
            return Poses(np.zeros((0,) + people.shape[1:], np.float32), np.zeros(0), np.zeros(0))
        return Poses(np.stack(keypoints), scores[detections], np.asarray(ids))

    def _smoothed(self, track: _Track, observed: np.ndarray, stamp: float) -> np.ndarray:
        cfg = self.config
        if not cfg.smoothing:
            return observed
        if track.smoother is None:
            track.smoother = OneEuroFilter(cfg.min_cutoff, cfg.beta, cfg.d_cutoff,
                                           shared_speed=True)
        found = observed[:, 2] > cfg.keypoint_min_score
        out = observed.copy()
        out[:, :2] = track.smoother(observed[:, :2], stamp, found[:, None])
        return out
