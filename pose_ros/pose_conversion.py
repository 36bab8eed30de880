"""`pose_core.Poses` <-> `pose_ros/PersonArray`.

Frames: keypoints are pixels of the source image (x right, y down, integer values at pixel
centres as in OpenCV and COCO), exactly as `PoseEstimator` returns them; nothing is rescaled.
The source image's header is copied unchanged (acquisition stamp, camera frame_id).

Layout: `keypoint_names` and `skeleton` come from the `KeypointSpec`; every person carries the
full keypoint set in that order, a missing joint has score 0. People are sorted by score, most
confident first. `Person.id` is the person's track id (`Poses.ids`, from `pose_core.PoseTracker`),
or -1 when the people are not tracked. The box is the axis-aligned box of
the joints with score > `bbox_min_score`.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import Header

from pose_core.keypoint_specs import KeypointSpec
from pose_core.structures import Poses
from pose_ros.msg import Keypoint, Person, PersonArray, SkeletonEdge

__all__ = [
    "poses_to_person_array",
    "person_array_to_poses",
    "person_array_positions",
    "PersonArrayBuilder",
    "UNTRACKED_ID",
]

UNTRACKED_ID = -1


def poses_to_person_array(
    poses: Poses,
    header: Header,
    image_wh: tuple[int, int],
    spec: KeypointSpec,
    bbox_min_score: float = 0.0,
) -> PersonArray:
    """Build the PersonArray for one image.

    Args:
        poses: people in image pixels, (P, J, 3) keypoints with J == spec.num_keypoints.
        header: the source image's header, copied unchanged.
        image_wh: (width, height) of the source image.
        spec: keypoint layout (names, skeleton).
        bbox_min_score: joints with a score above this value define the box.

    Raises:
        ValueError: when the poses do not have the spec's number of keypoints.
    """
    if poses.num_keypoints != spec.num_keypoints:
        raise ValueError(
            f"poses have {poses.num_keypoints} keypoints, spec {spec.name} has "
            f"{spec.num_keypoints}"
        )
    msg = PersonArray()
    msg.header = header
    msg.image_width, msg.image_height = int(image_wh[0]), int(image_wh[1])
    msg.keypoint_names = list(spec.names)
    msg.skeleton = [SkeletonEdge(start=int(a), end=int(b)) for a, b in spec.skeleton]
    if len(poses) == 0:
        return msg
    order = np.argsort(-poses.scores, kind="stable")
    keypoints = poses.keypoints[order]
    scores = poses.scores[order]
    ids = _ids(poses, order)
    boxes = Poses(keypoints, scores).boxes_xywh(min_score=bbox_min_score)
    # tolist() once: Python floats are much cheaper to assign than numpy scalars.
    keypoint_rows = keypoints.tolist()
    people = []
    for person_keypoints, score, box, track_id in zip(
        keypoint_rows, scores.tolist(), boxes.tolist(), ids, strict=True
    ):
        person = Person()
        person.id = track_id
        person.score = score
        person.keypoints = [
            Keypoint(x=x, y=y, score=s, position=Point(), has_position=False)
            for x, y, s in person_keypoints
        ]
        person.bbox_x, person.bbox_y, person.bbox_width, person.bbox_height = box
        people.append(person)
    msg.people = people
    return msg


def _set_positions(person: Person, positions: np.ndarray | None, valid: np.ndarray | None) -> None:
    """Each keypoint's 3D position (metres) where `valid`, else `has_position` false."""
    for j, keypoint in enumerate(person.keypoints):
        if positions is not None and valid is not None and bool(valid[j]):
            x, y, z = (float(v) for v in positions[j])
            keypoint.position.x, keypoint.position.y, keypoint.position.z = x, y, z
            keypoint.has_position = True
        else:
            keypoint.position.x = keypoint.position.y = keypoint.position.z = 0.0
            keypoint.has_position = False


def _ids(poses: Poses, order: np.ndarray) -> list[int]:
    """Track ids in `order` (UNTRACKED_ID for untracked people)."""
    if poses.ids is None:
        return [UNTRACKED_ID] * len(order)
    return [int(i) for i in poses.ids[order]]


class PersonArrayBuilder:
    """`poses_to_person_array` for a publishing loop: message objects are reused.

    Building a PersonArray for 20 COCO people creates 340 Keypoint messages, which costs
    more than the rest of the node's overhead together; this builder creates them once and
    only rewrites x, y and score for each frame (same output as `poses_to_person_array`).

    The returned message is owned by the builder and valid until the next `build` call: publish
    it (rclpy serialises it during `publish`) before building the next one. Not thread-safe.

    Args:
        spec: keypoint layout of every frame.
        bbox_min_score: joints with a score above this value define the box.
    """

    def __init__(self, spec: KeypointSpec, bbox_min_score: float = 0.0) -> None:
        self.spec = spec
        self.bbox_min_score = bbox_min_score
        self._names = list(spec.names)
        self._skeleton = [SkeletonEdge(start=int(a), end=int(b)) for a, b in spec.skeleton]
        self._pool: list[Person] = []
        self._message = PersonArray()

    def _person(self, index: int) -> Person:
        while len(self._pool) <= index:
            person = Person()
            person.id = UNTRACKED_ID
            person.keypoints = [Keypoint() for _ in range(self.spec.num_keypoints)]
            self._pool.append(person)
        return self._pool[index]

    def build(
        self,
        poses: Poses,
        header: Header,
        image_wh: tuple[int, int],
        positions: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> PersonArray:
        """The PersonArray of one image (see `poses_to_person_array`); with `positions`
        (P, J, 3) metres and `valid` (P, J), each keypoint's `position` / `has_position`."""
        if poses.num_keypoints != self.spec.num_keypoints:
            raise ValueError(
                f"poses have {poses.num_keypoints} keypoints, spec {self.spec.name} has "
                f"{self.spec.num_keypoints}"
            )
        msg = self._message
        msg.header = header
        msg.image_width, msg.image_height = int(image_wh[0]), int(image_wh[1])
        msg.keypoint_names = self._names
        msg.skeleton = self._skeleton
        order = np.argsort(-poses.scores, kind="stable")
        keypoints = poses.keypoints[order]
        scores = poses.scores[order]
        ids = _ids(poses, order)
        boxes = Poses(keypoints, scores).boxes_xywh(min_score=self.bbox_min_score)
        people = []
        for index, (rows, score, box, track_id) in enumerate(
            zip(keypoints.tolist(), scores.tolist(), boxes.tolist(), ids, strict=True)
        ):
            person = self._person(index)
            person.id = track_id
            person.score = score
            person.bbox_x, person.bbox_y, person.bbox_width, person.bbox_height = box
            for keypoint, (x, y, keypoint_score) in zip(person.keypoints, rows, strict=True):
                keypoint.x, keypoint.y, keypoint.score = x, y, keypoint_score
            _set_positions(person, None if positions is None else positions[order[index]],
                           None if valid is None else valid[order[index]])
            people.append(person)
        msg.people = people
        return msg


def person_array_to_poses(msg: PersonArray) -> Poses:
    """Read the people of a PersonArray back into `Poses` (image pixels, in message order;
    `ids` when every person carries a track id)."""
    num_keypoints = len(msg.keypoint_names)
    keypoints = np.zeros((len(msg.people), num_keypoints, 3), np.float32)
    scores = np.zeros((len(msg.people),), np.float32)
    for i, person in enumerate(msg.people):
        if len(person.keypoints) != num_keypoints:
            raise ValueError(
                f"person {i} has {len(person.keypoints)} keypoints, layout has {num_keypoints}"
            )
        keypoints[i] = [(k.x, k.y, k.score) for k in person.keypoints]
        scores[i] = person.score
    ids = np.asarray([person.id for person in msg.people], np.int64)
    tracked = len(ids) > 0 and bool((ids != UNTRACKED_ID).all())
    return Poses(keypoints, scores, ids if tracked else None)


def person_array_positions(msg: PersonArray) -> tuple[np.ndarray, np.ndarray]:
    """(P, J, 3) keypoint positions (metres) and (P, J) `has_position` of a PersonArray (a
    `people_3d` message), in message order."""
    num_keypoints = len(msg.keypoint_names)
    positions = np.zeros((len(msg.people), num_keypoints, 3))
    valid = np.zeros((len(msg.people), num_keypoints), bool)
    for i, person in enumerate(msg.people):
        for j, keypoint in enumerate(person.keypoints[:num_keypoints]):
            positions[i, j] = (keypoint.position.x, keypoint.position.y, keypoint.position.z)
            valid[i, j] = keypoint.has_position
    return positions, valid
