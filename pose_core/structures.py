"""Result and record types shared by every boundary of the library.

`Poses` is the one result type: codecs, grouping, the inference API, evaluation and the ROS
converters all speak it. Arrays are numpy float32; the coordinate frame (image pixels or heatmap
pixels) is stated by whoever returns it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Poses"]


@dataclass(frozen=True)
class Poses:
    """People found in one image.

    Attributes:
        keypoints: (P, J, 3) float32, per joint x, y and score (0 for a joint not found).
        scores: (P,) float32 person scores.
        ids: (P,) int64 persistent person ids (`pose_core.PoseTracker`), or None when the
            people are not tracked.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        keypoints = np.asarray(self.keypoints, dtype=np.float32)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if keypoints.ndim != 3 or keypoints.shape[2] != 3:
            raise ValueError(f"Poses.keypoints must be (P, J, 3), got {keypoints.shape}")
        if scores.shape[0] != keypoints.shape[0]:
            raise ValueError(
                f"Poses.scores has {scores.shape[0]} entries for {keypoints.shape[0]} people"
            )
        object.__setattr__(self, "keypoints", keypoints)
        object.__setattr__(self, "scores", scores)
        if self.ids is not None:
            ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
            if ids.shape[0] != keypoints.shape[0]:
                raise ValueError(
                    f"Poses.ids has {ids.shape[0]} entries for {keypoints.shape[0]} people"
                )
            object.__setattr__(self, "ids", ids)

    @classmethod
    def empty(cls, num_keypoints: int) -> Poses:
        return cls(np.zeros((0, num_keypoints, 3), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[1])

    def with_min_score(self, min_score: float) -> Poses:
        """The people whose score is at least `min_score`, in the same order."""
        keep = self.scores >= np.float32(min_score)
        if keep.all():
            return self
        return self.select(keep)

    def select(self, index: np.ndarray) -> Poses:
        """The people picked by a boolean mask or an index array (ids kept)."""
        ids = None if self.ids is None else self.ids[index]
        return Poses(self.keypoints[index], self.scores[index], ids)

    def boxes_xywh(self, min_score: float = 0.0) -> np.ndarray:
        """(P, 4) float32 boxes around the joints with score > min_score (zeros when none)."""
        boxes = np.zeros((len(self), 4), np.float32)
        for i, person in enumerate(self.keypoints):
            found = person[person[:, 2] > min_score]
            if len(found):
                x0, y0 = found[:, 0].min(), found[:, 1].min()
                boxes[i] = (x0, y0, found[:, 0].max() - x0, found[:, 1].max() - y0)
        return boxes
