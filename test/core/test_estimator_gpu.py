"""PoseEstimator on CUDA finds the people it finds on the CPU (`gpu` tests: skipped without CUDA).

On a machine with a GPU, `scripts/gpu_check.sh` runs these tests and a timed CUDA smoke run.
The shipped model runs on synthetic frames where it finds people (asserted first). cuDNN picks
other convolution algorithms than oneDNN and uses TF32 by default (float16 with `fp16`), so the
maps differ slightly: a joint may move by a fraction of a heatmap pixel (about 2 image pixels
here) and a score by a few hundredths, and a person near the score cut may appear on one device
only. So the strong people are compared, each matched to the nearest person of the other device.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pose_core import DEFAULT_MODEL, PoseEstimator
from pose_core.data.synthetic import SyntheticVideo
from pose_core.structures import Poses

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# seed 3, three walkers, 320x240: the shipped model finds two or three of them in these frames
FRAMES = (0, 5, 10)
STRONG_PERSON_SCORE = 0.3  # people compared across devices (the node publishes >= 0.1)
# (median joint distance px, person score difference) per precision
TOLERANCES = {False: (1.5, 0.05), True: (3.0, 0.1)}


def _median_distances(a: Poses, b: Poses) -> np.ndarray:
    """(len(a), len(b)) median joint distance over the joints both found (score > 0)."""
    found = (a.keypoints[:, None, :, 2] > 0) & (b.keypoints[None, :, :, 2] > 0)
    distance = np.linalg.norm(a.keypoints[:, None, :, :2] - b.keypoints[None, :, :, :2], axis=3)
    distance = np.where(found, distance, np.nan)
    with np.errstate(all="ignore"):
        medians = np.nanmedian(distance, axis=2)
    return np.where(found.any(axis=2), medians, np.inf)


def assert_same_people(reference: Poses, other: Poses, max_px: float, max_score: float) -> None:
    """Every strong person of each result is in the other, within the tolerances."""
    for first, second in ((reference, other), (other, reference)):
        strong = first.scores >= STRONG_PERSON_SCORE
        assert strong.any(), "no strong person to compare"
        assert len(second) >= 1, "the other device found nobody"
        medians = _median_distances(first, second)
        for index in np.flatnonzero(strong):
            nearest = int(np.argmin(medians[index]))
            assert medians[index, nearest] <= max_px, (index, medians[index])
            score_gap = abs(float(first.scores[index]) - float(second.scores[nearest]))
            assert score_gap <= max_score, (index, first.scores[index], second.scores[nearest])


def test_people_matcher_accepts_small_shifts_and_refuses_large_ones() -> None:
    """The comparison itself, on CPU results (runs everywhere, unlike the CUDA test)."""
    scene = SyntheticVideo(320, 240, num_people=3, fps=10.0, seed=3).frame(FRAMES[0])
    poses = PoseEstimator(DEFAULT_MODEL, flip_test=False)(scene.image_bgr).with_min_score(0.1)
    assert len(poses) >= 1
    shifted = poses.keypoints.copy()
    shifted[..., :2] += 1.0
    assert_same_people(poses, Poses(shifted, poses.scores), *TOLERANCES[False])
    shifted[..., :2] += 5.0
    with pytest.raises(AssertionError):
        assert_same_people(poses, Poses(shifted, poses.scores), *TOLERANCES[False])


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
def test_cuda_estimator_finds_the_cpu_people(fp16: bool) -> None:
    cpu = PoseEstimator(DEFAULT_MODEL, device="cpu", flip_test=False)
    cuda = PoseEstimator(DEFAULT_MODEL, device="cuda", flip_test=False, fp16=fp16)
    assert cuda.device.type == "cuda"
    video = SyntheticVideo(320, 240, num_people=3, fps=10.0, seed=3)
    for index in FRAMES:
        image = video.frame(index).image_bgr
        on_cpu = cpu(image).with_min_score(0.1)
        on_cuda = cuda(image).with_min_score(0.1)
        assert len(on_cpu) >= 1, f"the shipped model found nobody in frame {index}"
        assert np.isfinite(on_cuda.keypoints).all()
        assert_same_people(on_cpu, on_cuda, *TOLERANCES[fp16])
