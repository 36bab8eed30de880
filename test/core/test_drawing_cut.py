"""Which people are drawn: `draw_poses`' person-score cut, the models' own cuts, and what
`pose-infer` counts as drawn and as found."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose_core.default_model import DEFAULT_MODEL
from pose_core.keypoint_specs import COCO_17
from pose_core.models import MODELS, model_info
from pose_core.structures import Poses
from pose_core.visualization import DRAW_PERSON_SCORE, draw_poses


def _two_people(scores: tuple[float, float]) -> Poses:
    """Person 0 in the left half of a 100x200 image, person 1 in the right half."""
    keypoints = np.zeros((2, 17, 3), np.float32)
    rng = np.random.default_rng(0)
    for person, x0 in enumerate((20, 120)):
        keypoints[person, :, 0] = x0 + rng.uniform(0, 60, 17)
        keypoints[person, :, 1] = rng.uniform(10, 90, 17)
        keypoints[person, :, 2] = 0.9
    return Poses(keypoints, np.array(scores, np.float32))


def _drawn_halves(drawn: np.ndarray, blank: np.ndarray) -> tuple[bool, bool]:
    changed = (drawn != blank).any(axis=2)
    return bool(changed[:, :100].any()), bool(changed[:, 100:].any())


def test_draw_poses_skips_people_below_the_person_cut() -> None:
    blank = np.zeros((100, 200, 3), np.uint8)
    weak_left = _two_people((DRAW_PERSON_SCORE / 2, 0.9))
    assert _drawn_halves(draw_poses(blank, weak_left, COCO_17), blank) == (False, True)
    assert _drawn_halves(draw_poses(blank, weak_left, COCO_17, min_person_score=0.0),
                         blank) == (True, True)
    # the cut includes its own value (as Poses.with_min_score) and moves with the argument
    at_cut = _two_people((DRAW_PERSON_SCORE, 0.5))
    assert _drawn_halves(draw_poses(blank, at_cut, COCO_17), blank) == (True, True)
    assert _drawn_halves(draw_poses(blank, at_cut, COCO_17, min_person_score=0.6),
                         blank) == (False, False)
    # a skipped person does not change the colour of the others (colours follow list places)
    both = draw_poses(blank, _two_people((0.9, 0.9)), COCO_17)
    np.testing.assert_array_equal(both[:, 100:], draw_poses(blank, weak_left, COCO_17)[:, 100:])


def test_models_draw_at_the_default_cut_except_the_shipped_synthetic_one() -> None:
    assert DRAW_PERSON_SCORE == 0.25
    # the shipped model and its variants (the tag2 experiment) know only synthetic people
    others = {name: info.draw_person_score for name, info in MODELS.items()
              if not name.startswith(DEFAULT_MODEL)}
    assert others and set(others.values()) == {DRAW_PERSON_SCORE}
    # its false people on real photographs reach 0.52, its true synthetic ones mostly >= 0.55
    assert DRAW_PERSON_SCORE < model_info(DEFAULT_MODEL).draw_person_score < 0.55


def _infer_lines(capsys, argv: list[str], image_name: str) -> list[str]:
    """pose-infer's per-image lines of one run."""
    from pose_core.inference.cli import main

    capsys.readouterr()
    assert main(argv) == 0
    return [line for line in capsys.readouterr().out.splitlines()
            if line.startswith(image_name + ":")]


@pytest.mark.filterwarnings("ignore::pose_core.default_model.SyntheticModelWarning")
def test_pose_infer_prints_people_drawn_and_found(tmp_path: Path, capsys) -> None:
    from pose_core.data.synthetic import SyntheticVideo

    image = tmp_path / "walkers.png"
    cv2.imwrite(str(image), SyntheticVideo(320, 240, num_people=3, fps=10.0, seed=3)
                .frame(0).image_bgr)
    out = tmp_path / "results.json"
    base = [str(image), "--out", str(out), "--no-flip", "--scales", "1"]
    pattern = re.compile(r"walkers\.png: (\d+) people \(score >= ([\d.]+)\), (\d+) found")

    for extra, cut in (([], model_info(DEFAULT_MODEL).draw_person_score),
                       (["--min-draw-person-score", "0"], 0.0)):
        (line,) = _infer_lines(capsys, base + extra, image.name)
        match = pattern.match(line)
        assert match, line
        scores = np.array([r["score"] for r in json.loads(out.read_text())], np.float32)
        assert float(match.group(2)) == pytest.approx(cut)
        assert int(match.group(3)) == len(scores)  # every person found goes to --out
        assert int(match.group(1)) == int((scores >= np.float32(cut)).sum())
        if cut > 0:  # the three walkers are drawn, the parser's low-score fragments are not
            assert 0 < int(match.group(1)) < len(scores)
    assert int(match.group(1)) == len(scores) > 0  # cut 0: all drawn
