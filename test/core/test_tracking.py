"""PoseTracker on hand-made sequences with known id answers, and the One-Euro filter."""

from __future__ import annotations

import numpy as np
import pytest

from pose_core.structures import Poses
from pose_core.tracking import OneEuroFilter, PoseTracker, box_iou_matrix, oks_matrix

RNG = np.random.default_rng(0)
# a standing person's 17 joints in a 40 x 100 px box (top-left at 0, 0)
TEMPLATE = np.column_stack([RNG.uniform(0, 40, 17), np.linspace(0, 100, 17)])


def person(x: float, y: float = 100.0, score: float = 0.9, scale: float = 1.0) -> np.ndarray:
    joints = np.column_stack([TEMPLATE * scale + (x, y), np.full(17, score)])
    return joints.astype(np.float32)


def frame(*people: np.ndarray) -> Poses:
    if not people:
        return Poses.empty(17)
    keypoints = np.stack(people)
    return Poses(keypoints, keypoints[:, :, 2].mean(axis=1))


def ids_by_x(result: Poses) -> list[int]:
    """Ids ordered by the people's x position (left to right)."""
    order = np.argsort(result.keypoints[:, 0, 0])
    return [int(i) for i in result.ids[order]]


def test_similarities() -> None:
    a = np.stack([person(0), person(200)])
    assert np.allclose(np.diag(oks_matrix(a, a, np.full(17, 0.05), 0.1)), 1.0)
    assert oks_matrix(a, a, np.full(17, 0.05), 0.1)[0, 1] < 1e-6
    boxes = np.array([[0, 0, 10, 10], [5, 0, 10, 10], [50, 50, 0, 0]], float)
    iou = box_iou_matrix(boxes, boxes)
    assert iou[0, 1] == pytest.approx(50 / 150) and iou[2, 2] == 0.0


@pytest.mark.parametrize("predict", [True, False])
def test_crossing_people_keep_their_ids(predict: bool) -> None:
    """Two walkers cross (their boxes overlap for several frames); constant-velocity
    prediction keeps each id on its walker, matching to the last positions swaps them."""
    tracker = PoseTracker(predict_velocity=predict)
    swapped = 0
    first = tracker.update(frame(person(0, scale=3), person(310, scale=3)), 0.0)
    left_id, right_id = ids_by_x(first)
    for k in range(1, 11):  # 30 px a frame each: just after crossing, each walker is nearer
        a = person(30.0 * k, scale=3)  # to the other's last position than to its own
        b = person(310 - 30.0 * k, scale=3)
        result = tracker.update(frame(a, b), k / 30)
        assert len(result) == 2
        by_start = dict(zip([int(i) for i in result.ids], result.keypoints[:, 0, 0]))
        # the walker that started on the left moves right
        swapped += by_start[left_id] != pytest.approx(a[0, 0])
        assert by_start[left_id] in (pytest.approx(a[0, 0]), pytest.approx(b[0, 0]))
    assert (swapped == 0) == predict


def test_occlusion_for_a_few_frames_keeps_the_id() -> None:
    tracker = PoseTracker(max_misses=5)
    tracker.update(frame(person(0), person(200)), 0.0)
    before = ids_by_x(tracker.update(frame(person(2), person(200)), 0.1))
    for k in range(3):  # the right person is hidden
        assert len(tracker.update(frame(person(4 + 2 * k)), 0.2 + 0.1 * k)) == 1
    after = tracker.update(frame(person(10), person(200)), 0.5)
    assert ids_by_x(after) == before


def test_leaving_and_reentering_gets_a_new_id_and_ids_are_never_reused() -> None:
    tracker = PoseTracker(max_misses=2, min_hits=2)
    (first_id,) = tracker.update(frame(person(0)), 0.0).ids
    for k in range(1, 5):  # gone for longer than max_misses
        assert len(tracker.update(frame(), 0.1 * k)) == 0
    assert len(tracker.update(frame(person(0)), 0.5)) == 0  # tentative again
    (second_id,) = tracker.update(frame(person(0)), 0.6).ids
    assert second_id != first_id and second_id > first_id
    tracker.reset()
    (third_id,) = tracker.update(frame(person(0)), 0.0).ids
    assert third_id > second_id


def test_a_new_person_is_published_after_min_hits() -> None:
    tracker = PoseTracker(min_hits=3)
    assert list(tracker.update(frame(person(0)), 0.0).ids) == [0]  # first frame: at once
    assert list(tracker.update(frame(person(0), person(300)), 0.1).ids) == [0]
    assert list(tracker.update(frame(person(0), person(300)), 0.2).ids) == [0]
    result = tracker.update(frame(person(0), person(300)), 0.3)
    assert ids_by_x(result) == [0, 1]
    # a flicker (seen once) never gets an id
    tracker.update(frame(person(0), person(300), person(600)), 0.4)
    assert ids_by_x(tracker.update(frame(person(0), person(300)), 0.5)) == [0, 1]
    assert tracker.num_tracks == 2


def test_low_score_people_continue_tracks_but_start_none() -> None:
    tracker = PoseTracker()
    tracker.update(frame(person(0)), 0.0)
    result = tracker.update(frame(person(1, score=0.3), person(300, score=0.3)), 0.1)
    assert list(result.ids) == [0]  # the occluded (low-score) person keeps its track
    assert result.keypoints[0, 0, 0] == pytest.approx(person(1)[0, 0])
    for k in range(2, 5):  # the low-score stranger never becomes a track
        result = tracker.update(frame(person(1, score=0.3), person(300, score=0.3)), 0.1 * k)
        assert list(result.ids) == [0]
    below = tracker.update(frame(person(1, score=0.05)), 0.5)
    assert len(below) == 0  # below low_score: ignored


def test_bad_input_and_options() -> None:
    tracker = PoseTracker()
    tracker.update(frame(person(0)), 1.0)
    with pytest.raises(ValueError, match="earlier"):
        tracker.update(frame(person(0)), 0.5)
    with pytest.raises(TypeError, match="nope"):
        PoseTracker(nope=1)
    with pytest.raises(ValueError, match="low_score"):
        PoseTracker(low_score=0.9, high_score=0.5)


def test_smoothing_removes_jitter_of_a_standing_person() -> None:
    rng = np.random.default_rng(1)
    raw_tracker, smooth_tracker = PoseTracker(), PoseTracker(smoothing=True, min_cutoff=0.5)
    raw, smooth = [], []
    for k in range(90):
        noisy = person(100).copy()
        noisy[:, :2] += rng.normal(0, 1.5, (17, 2))
        raw.append(raw_tracker.update(frame(noisy), k / 30).keypoints[0, :, :2])
        smooth.append(smooth_tracker.update(frame(noisy), k / 30).keypoints[0, :, :2])
    jitter = [np.abs(np.diff(np.stack(x)[30:], axis=0)).mean() for x in (raw, smooth)]
    assert jitter[1] < 0.5 * jitter[0]


def test_one_euro_follows_fast_motion_and_smooths_slow() -> None:
    f = OneEuroFilter(min_cutoff=1.0, beta=0.1)
    assert f(np.array([5.0]), 0.0)[0] == 5.0
    for k in range(1, 30):
        assert f(np.array([5.0]), k / 30)[0] == pytest.approx(5.0)
    out = [f(np.array([5.0 + 20.0 * k]), 1 + k / 30)[0] for k in range(1, 30)]
    assert 5.0 + 20 * 29 - out[-1] < 40  # a fast ramp is followed with a small lag
    masked = OneEuroFilter()
    masked(np.array([0.0, 0.0]), 0.0)
    out = masked(np.array([10.0, 10.0]), 0.1, np.array([True, False]))
    assert 0 < out[0] < 10 and out[1] == 10.0  # masked: passed through, state kept
    out = masked(np.array([10.0, 10.0]), 0.2, np.array([True, True]))
    assert out[1] == 10.0  # back after a masked call: restarts from its raw value


def test_keep_untracked_returns_everyone_with_minus_one_for_the_untracked() -> None:
    tracker = PoseTracker(min_hits=2)
    tracker.update(frame(person(0)), 0.0)
    result = tracker.update(frame(person(0), person(300), person(600, score=0.3)), 0.1,
                            keep_untracked=True)
    assert ids_by_x(result) == [0, -1, -1]  # tentative and low-score people: no id yet
    result = tracker.update(frame(person(0), person(300)), 0.2, keep_untracked=True)
    assert ids_by_x(result) == [0, 1]


def test_shared_speed_smooths_noisy_joints_of_a_still_person_more() -> None:
    rng = np.random.default_rng(3)
    own, shared = OneEuroFilter(0.5, 0.05), OneEuroFilter(0.5, 0.05, shared_speed=True)
    outputs: dict[str, list[np.ndarray]] = {"own": [], "shared": []}
    for k in range(120):
        noisy = TEMPLATE + rng.normal(0, 2.0, TEMPLATE.shape)
        outputs["own"].append(own(noisy, k / 30))
        outputs["shared"].append(shared(noisy, k / 30))
    jitter = {key: np.abs(np.diff(np.stack(v)[30:], axis=0)).mean() for key, v in outputs.items()}
    assert jitter["shared"] < 0.6 * jitter["own"]


# ------------------------------------------------------------------ appearance
def _draw(image: np.ndarray, people: np.ndarray, colours: list[tuple[int, int, int]]) -> None:
    """Each person's limbs as thick lines of its own colour."""
    import cv2

    from pose_core.keypoint_specs import COCO_17

    for joints, colour in zip(people, colours):
        for a, b in COCO_17.skeleton:
            cv2.line(image, (int(joints[a, 0]), int(joints[a, 1])),
                     (int(joints[b, 0]), int(joints[b, 1])), colour, 7)


def test_limb_colours_read_each_limb_and_mark_the_unusable_ones() -> None:
    from pose_core.keypoint_specs import COCO_17
    from pose_core.tracking.appearance import appearance_similarity, limb_colours

    image = np.full((240, 320, 3), 128, np.uint8)
    red, blue = person(40), person(200)
    _draw(image, np.stack([red, blue]), [(0, 0, 255), (255, 0, 0)])
    hidden = red.copy()
    hidden[0, 2] = 0.0  # the nose is not seen: its limbs are not used
    outside = blue.copy()
    outside[:, 0] += 400  # the whole person is off the image
    colours, valid = limb_colours(image, np.stack([red, blue, hidden, outside]),
                                  COCO_17.skeleton, 0.1)
    assert colours.shape == (4, len(COCO_17.skeleton), 3)
    assert valid[0].all() and valid[1].all() and not valid[3].any()
    uses_nose = np.array([0 in limb for limb in COCO_17.skeleton])
    assert not valid[2, uses_nose].any() and valid[2, ~uses_nose].all()
    # OpenCV 8-bit Lab: pure red has a* far above 128, pure blue has b* far below
    assert np.median(colours[0, :, 1]) > 190 and np.median(colours[1, :, 2]) < 70
    similarity = appearance_similarity(colours[:2], valid[:2], colours[:2], valid[:2], 20.0)
    assert similarity[0, 0] == pytest.approx(1.0) and similarity[1, 1] == pytest.approx(1.0)
    assert similarity[0, 1] < 0.01
    none = appearance_similarity(colours[:1], valid[:1], colours[3:], valid[3:], 20.0)
    assert np.isnan(none[0, 0])
    grey, grey_valid = limb_colours(image[:, :, 1], np.stack([red]), COCO_17.skeleton, 0.1)
    assert grey_valid.all() and np.allclose(grey[0, :, 1:], 128, atol=1)  # no colour in grey
    with pytest.raises(TypeError, match="uint8"):
        limb_colours(image.astype(np.float32), np.stack([red]), COCO_17.skeleton, 0.1)


@pytest.mark.parametrize("appearance_weight", [0.0, 0.6])
def test_appearance_keeps_ids_when_two_people_swap_places(appearance_weight: float) -> None:
    """Two people side by side trade places between two frames (crossing unseen): by position
    alone the ids jump to the other person; with the limb colours they stay with their clothes.
    """
    tracker = PoseTracker(appearance_weight=appearance_weight, predict_velocity=False)

    def shown(left: str) -> tuple[Poses, np.ndarray]:
        people = [person(100), person(135)]
        colours = [(0, 0, 255), (255, 0, 0)] if left == "red" else [(255, 0, 0), (0, 0, 255)]
        image = np.full((240, 320, 3), 128, np.uint8)
        _draw(image, np.stack(people), colours)
        return frame(*people), image

    for k in range(3):
        poses, image = shown(left="red")
        result = tracker.update(poses, k / 30, image=image)
    red_id, blue_id = ids_by_x(result)
    poses, image = shown(left="blue")
    left_id, right_id = ids_by_x(tracker.update(poses, 3 / 30, image=image))
    if appearance_weight > 0:
        assert (left_id, right_id) == (blue_id, red_id)
    else:
        assert (left_id, right_id) == (red_id, blue_id)


def test_appearance_options_are_checked() -> None:
    with pytest.raises(ValueError, match="appearance_weight"):
        PoseTracker(appearance_weight=1.5)
    with pytest.raises(ValueError, match="appearance_scale"):
        PoseTracker(appearance_scale=0.0)
