"""Double Embedding grouping: release mode against the released parser's fixtures, paper mode
(MRM rules and each documented fix) on hand-made maps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import pose_core
from pose_core.grouping import GroupingParams
from pose_core.grouping.double_embedding import dem_mode_settings, parse_double_embedding
from pose_core.grouping.mutual_refine import mutual_refine
from pose_core.models.double_embedding import DEM_PARTITIONS

COCO = DEM_PARTITIONS["coco"]
FIXTURES = ("dem_group_synthetic_6people", "dem_group_real_000000000785")


def _load(parity_dir: Path, name: str) -> tuple[dict, float]:
    data = dict(np.load(parity_dir / f"{name}.npz"))
    meta = json.loads((parity_dir / f"{name}.json").read_text())
    return data, float(meta["detection_threshold_joints"])


def _maps(data: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(torch.from_numpy(data[k][0]) for k in ("det", "tag", "off"))


@pytest.mark.parametrize("name", FIXTURES)
def test_release_mode_equals_released_parser(parity_dir: Path, name: str) -> None:
    data, threshold = _load(parity_dir, name)
    det, tag, off = _maps(data)
    release = dem_mode_settings("release")
    for refine, key in ((False, "grouped_raw"), (True, "grouped")):
        params = GroupingParams(detection_threshold=threshold, refine=refine)
        result = parse_double_embedding(det, tag, off, params, release)
        assert result.grouped.shape == data[key].shape
        np.testing.assert_allclose(result.grouped[:, :, :2], data[key][:, :, :2], atol=1e-3)
        np.testing.assert_allclose(result.grouped[:, :, 2:], data[key][:, :, 2:], atol=1e-5)
        np.testing.assert_allclose(result.scores, data["scores"], atol=1e-5)
    cand = result.candidates
    assert [len(v) for v in cand.val] == data["cand_count"].tolist()
    for j, count in enumerate(data["cand_count"]):
        np.testing.assert_array_equal(cand.loc[j], data["cand_loc"][j, :count])
        np.testing.assert_array_equal(cand.val[j], data["cand_val"][j, :count])
    for r, joint in enumerate((*COCO.root, 17)):
        count = data["cand_count"][joint]
        np.testing.assert_allclose(cand.tag[r], data["cand_tag"][r, :count], atol=1e-5)
    for f, joint in enumerate(COCO.face):
        count = data["cand_count"][joint]
        np.testing.assert_allclose(cand.face_offsets[f], data["cand_off_face"][f, :count],
                                   atol=1e-4)
    for k, joint in enumerate(COCO.limbs):
        count = data["cand_count"][joint]
        np.testing.assert_allclose(cand.limb_offsets[k], data["cand_off_limb"][k, :count],
                                   atol=1e-4)


@pytest.mark.parametrize("name", FIXTURES)
def test_mrm_equals_released_method(parity_dir: Path, name: str) -> None:
    """The released (uncalled) `mutual_refine_machine` on the raw people, and the parse with its
    call restored (release mode + MRM)."""
    data, threshold = _load(parity_dir, name)
    refined = np.stack([mutual_refine(p, COCO) for p in data["grouped_raw"]])
    np.testing.assert_allclose(refined, data["grouped_mrm_only"], atol=1e-4)
    det, tag, off = _maps(data)
    result = parse_double_embedding(det, tag, off, GroupingParams(detection_threshold=threshold),
                                    dem_mode_settings("release", mrm=True))
    np.testing.assert_allclose(result.grouped[:, :, :2], data["grouped_mrm"][:, :, :2], atol=1e-3)


def test_group_bottom_up_contract(parity_dir: Path) -> None:
    data, threshold = _load(parity_dir, FIXTURES[0])
    poses = pose_core.group_bottom_up(
        data["det"][0], data["tag"][0], method="double_embedding", offsets=data["off"][0],
        dem_mode="release", detection_threshold=threshold, refine=True,
    )
    np.testing.assert_allclose(poses.keypoints, data["grouped"][:, :, :3], atol=1e-3)
    np.testing.assert_allclose(poses.scores, data["scores"], atol=1e-5)
    paper = pose_core.group_bottom_up(
        data["det"][0], data["tag"][0], method="double_embedding", offsets=data["off"][0],
        detection_threshold=threshold,
    )
    assert paper.keypoints.shape[1:] == (17, 3)
    with pytest.raises(ValueError, match="dem_mode"):
        pose_core.group_bottom_up(data["det"][0], data["tag"][0], method="double_embedding",
                                  offsets=data["off"][0], dem_mode="official")


# ------------------------------------------------------------------------------ MRM rules
def _person(**joints: tuple[float, float, float, float, float]) -> np.ndarray:
    names = {"ls": 5, "le": 7, "lw": 9, "rs": 6, "re": 8, "rw": 10}
    person = np.zeros((17, 5), np.float32)
    for name, row in joints.items():
        person[names[name]] = row
    return person


def test_mrm_confident_parent_pulls_low_score_wrist() -> None:
    # wrist at (10, 10), score 0.3, offset to its elbow (+5, 0): the elbow (0.9) at (20, 10)
    # predicts the wrist at (15, 10)
    person = _person(le=(20, 10, 0.9, 0, 0), lw=(10, 10, 0.3, 5, 0))
    out = mutual_refine(person, COCO)
    np.testing.assert_allclose(out[9, :2], [(0.3 * 10 + 0.9 * 15) / 1.2, 10], rtol=1e-6)
    np.testing.assert_array_equal(out[7], person[7])  # the elbow's child is below it: no move


def test_mrm_nothing_moves_below_threshold() -> None:
    person = _person(le=(20, 10, 0.74, -12, 0), lw=(10, 10, 0.3, 5, 0), ls=(8, 10, 0.7, 0, 0))
    np.testing.assert_array_equal(mutual_refine(person, COCO), person)


def test_mrm_needs_neighbour_above_own_score_and_own_score_positive() -> None:
    person = _person(le=(20, 10, 0.8, 0, 0), lw=(10, 10, 0.9, 5, 0))
    np.testing.assert_array_equal(mutual_refine(person, COCO)[9], person[9])
    missing = _person(le=(20, 10, 0.9, 0, 0), lw=(10, 10, 0.0, 5, 0))
    np.testing.assert_array_equal(mutual_refine(missing, COCO)[9], missing[9])


def test_mrm_middle_joint_uses_parent_and_child() -> None:
    # elbow (0.2) at (20, 10), offset to the shoulder (-5, 0): the shoulder (0.8) at (10, 10)
    # predicts (15, 10); the wrist (0.9) at (30, 10), offset to the elbow (-8, 0), predicts (22, 10)
    person = _person(ls=(10, 10, 0.8, 0, 0), le=(20, 10, 0.2, -5, 0), lw=(30, 10, 0.9, -8, 0))
    out = mutual_refine(person, COCO)
    expected = (0.2 * 20 + 0.8 * 15 + 0.9 * 22) / 1.9
    np.testing.assert_allclose(out[7, :2], [expected, 10], rtol=1e-6)


def test_mrm_root_joint_from_confident_child() -> None:
    person = _person(rs=(10, 10, 0.3, 0, 0), re=(20, 12, 0.9, -12, -2))
    out = mutual_refine(person, COCO)
    np.testing.assert_allclose(out[6, :2], [(0.3 * 10 + 0.9 * 8) / 1.2, 10], rtol=1e-6)


# ------------------------------------------------------------------------------ paper fixes
class _Scene:
    """Hand-made maps: single-pixel peaks, tags and offsets (paper units) at given pixels."""

    def __init__(self, height: int, width: int) -> None:
        self.det = torch.zeros(18, height, width)
        self.tag = torch.full((18, height, width, 2), 50.0)
        self.off = torch.zeros(42, height, width)
        self.z = math.sqrt(2.0) * min(height, width)

    def peak(self, channel: int, x: int, y: int, value: float = 0.9, tag: float = 0.0) -> None:
        self.det[channel, y, x] = value
        self.tag[channel, y, x] = tag

    def offset(self, channel: int, x: int, y: int, dx: float, dy: float) -> None:
        self.off[channel, y, x] = dy / self.z
        self.off[channel + 1, y, x] = dx / self.z

    def parse(self, mode: str, **params: object) -> np.ndarray:
        settings = dem_mode_settings(mode)
        return parse_double_embedding(self.det, self.tag, self.off,
                                      GroupingParams(**params), settings).grouped


def test_paper_denormalises_offsets_by_training_normaliser() -> None:
    """On a 64 x 256 map the release's sqrt(H^2 + W^2) stretches a 50-px nose offset to 146 px,
    beyond the 70-px radius; the training normaliser sqrt(2) * 64 lands on the centre."""
    scene = _Scene(64, 256)
    scene.peak(17, 150, 30)
    scene.peak(0, 100, 30)
    scene.offset(0, 100, 30, 50, 0)
    paper = scene.parse("paper", refine=False)
    assert paper.shape[0] == 1 and paper[0, 0, 2] == pytest.approx(0.9)
    np.testing.assert_allclose(paper[0, 0, 3:], [50, 0], atol=1e-4)
    assert scene.parse("release", refine=False).shape[0] == 0


def test_paper_leaves_people_without_centre_out_of_the_centre_fallback() -> None:
    """A left elbow with no left shoulder goes to the centre fallback; its centre offset points
    near (0, 0), where the release places the centre of a right-shoulder-only person."""
    scene = _Scene(64, 64)
    scene.peak(17, 40, 40, tag=0.0)  # person A: a centre
    scene.peak(6, 50, 10, tag=20.0)  # person B: a right shoulder, no centre
    scene.peak(7, 10, 10)  # a left elbow predicting its centre at (1, 1)
    scene.offset(10 + 0, 10, 10, 0, 0)  # left elbow block starts at channel 10
    scene.offset(10 + 2, 10, 10, -9, -9)
    release = scene.parse("release", refine=False)
    paper = scene.parse("paper", refine=False)
    owner_release = [p for p in release if p[7, 2] > 0]
    owner_paper = [p for p in paper if p[7, 2] > 0]
    assert len(owner_release) == 1 and owner_release[0][6, 2] > 0  # given to B
    assert len(owner_paper) == 1 and owner_paper[0][6, 2] == 0  # given to A


def test_paper_keeps_people_with_equal_tags_apart() -> None:
    """Two left shoulders with the same tag, far from every person: the release keys people by
    the float tag and merges them; paper keeps two people."""
    scene = _Scene(64, 64)
    scene.peak(17, 30, 30, tag=0.0)
    scene.peak(5, 10, 10, 0.9, tag=5.0)
    scene.peak(5, 50, 10, 0.8, tag=5.0)
    assert scene.parse("release", refine=False).shape[0] == 1
    assert scene.parse("paper", refine=False).shape[0] == 2


def test_paper_honours_adjust_without_refine() -> None:
    scene = _Scene(64, 64)
    scene.peak(17, 30, 30)
    scene.peak(5, 20, 20, tag=0.0)
    scene.det[5, 20, 21] = 0.5  # right neighbour larger: +0.25
    scene.det[5, 21, 20] = 0.5  # lower neighbour larger: +0.25
    release = scene.parse("release", refine=False)
    paper = scene.parse("paper", refine=False)
    np.testing.assert_array_equal(release[0, 5, :2], [20, 20])
    np.testing.assert_array_equal(paper[0, 5, :2], [20.75, 20.75])


def test_paper_mrm_moves_low_score_wrist_release_does_not() -> None:
    scene = _Scene(64, 64)
    scene.peak(17, 30, 30)
    scene.peak(5, 20, 20, 0.95)
    scene.peak(7, 20, 30, 0.9)
    scene.offset(10, 20, 30, 0, -10)
    # the wrist's offset puts its elbow at (22, 30); the elbow (0.9) is at (20, 30): MRM's
    # estimate of the wrist is (20, 30) - (-4, -10) = (24, 40)
    scene.peak(9, 26, 40, 0.2)
    scene.offset(18, 26, 40, -4, -10)
    release = scene.parse("release", refine=False)
    paper = scene.parse("paper", refine=False, adjust=False)
    np.testing.assert_array_equal(release[0, 9, :2], [26, 40])
    np.testing.assert_allclose(paper[0, 9, :2], [(0.2 * 26 + 0.9 * 24) / 1.1, 40], rtol=1e-5)


@pytest.mark.parametrize("mode", ["release", "paper"])
def test_crowdpose_layout_groups_people(mode: str) -> None:
    """14 joints + centre, 36 offset channels: a person built from its root joints, face and
    limbs by offsets (paper units on a square map, where both normalisers agree)."""
    partition = DEM_PARTITIONS["crowdpose"]
    size = 64
    det = torch.zeros(15, size, size)
    tag = torch.full((15, size, size, 2), 50.0)
    off = torch.zeros(36, size, size)
    z = math.sqrt(2) * size
    people = {0: (20, 30), 1: (44, 30)}  # person -> centre (x, y)
    for person, (cx, cy) in people.items():
        joints = {j: (cx + dx, cy + dy) for j, (dx, dy) in {
            0: (-4, -8), 1: (4, -8), 6: (-3, 4), 7: (3, 4), 2: (-6, -2), 3: (6, -2),
            4: (-7, 3), 5: (7, 3), 8: (-3, 10), 9: (3, 10), 10: (-3, 16), 11: (3, 16),
            12: (0, -16), 13: (0, -11)}.items()}
        det[14, cy, cx] = 0.9
        tag[14, cy, cx] = person * 5.0
        first = partition.offset_channels()
        for j, (x, y) in joints.items():
            det[j, y, x] = 0.8
            tag[j, y, x] = person * 5.0
            if j in partition.root:
                continue
            target = (cx, cy) if j in partition.face else joints[partition.parent_of(j)]
            off[first[j], y, x] = (target[1] - y) / z
            off[first[j] + 1, y, x] = (target[0] - x) / z
            if j in partition.limbs:
                off[first[j] + 2, y, x] = (cy - y) / z
                off[first[j] + 3, y, x] = (cx - x) / z
    poses = pose_core.group_bottom_up(det, tag, method="double_embedding", offsets=off,
                                      dem_mode=mode, refine=False)
    assert poses.keypoints.shape == (2, 14, 3)
    assert (poses.keypoints[:, :, 2] > 0).all()
    for found in poses.keypoints:  # every joint of one person, none of the other
        owner = 0 if found[0, 0] < 32 else 1
        assert (np.abs(found[:, 0] - people[owner][0]) < 10).all()
