"""Device checks of `scripts/gpu_check.sh` (runnable on the CPU too, where they compare the CPU
with itself and skip fp16): the torch backend in fp32 / fp16 / bf16 on `--device` against CPU
fp32 people, and grouping + refine on `--device` tensors against the CPU on the same maps.

Precision tolerances (median joint distance in image pixels of each strong person to its
nearest counterpart, person score difference): fp32 1.5 px / 0.05 (cuDNN vs oneDNN, TF32),
fp16 3 px / 0.1, bf16 6 px / 0.15 (8 mantissa bits). Grouping: the same maps on two devices give
the same people within 1e-3 px.

    python -m pose_core.bench.device_checks --device cuda
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import torch

from pose_core.default_model import DEFAULT_MODEL
from pose_core.structures import Poses

__all__ = ["check_grouping_device", "check_torch_precisions", "main"]

TOLERANCES = {"fp32": (1.5, 0.05), "fp16": (3.0, 0.1), "bf16": (6.0, 0.15)}
STRONG = 0.3


def _frames() -> list[np.ndarray]:
    from pose_core.data.synthetic import SyntheticVideo

    video = SyntheticVideo(320, 240, num_people=3, fps=15.0, seed=3)
    return [video.frame(i).image_bgr for i in (0, 5, 10)]


def _worst_gap(reference: Poses, other: Poses) -> tuple[float, float]:
    """Largest (median joint distance, score gap) of a strong person to its nearest other."""
    worst = (0.0, 0.0)
    for first, second in ((reference, other), (other, reference)):
        for index in np.flatnonzero(first.scores >= STRONG):
            if not len(second):
                return float("inf"), float("inf")
            both = (first.keypoints[index, None, :, 2] > 0) & (second.keypoints[:, :, 2] > 0)
            distance = np.linalg.norm(first.keypoints[index, None, :, :2]
                                      - second.keypoints[:, :, :2], axis=2)
            medians = [float(np.median(d[m])) if m.any() else np.inf
                       for d, m in zip(distance, both)]
            nearest = int(np.argmin(medians))
            gap = abs(float(first.scores[index]) - float(second.scores[nearest]))
            worst = (max(worst[0], medians[nearest]), max(worst[1], gap))
    return worst


def check_torch_precisions(device: str) -> list[str]:
    """Failures (empty: passed) of the torch backend per precision against CPU fp32."""
    from pose_core.inference.estimator import PoseEstimator

    frames = _frames()
    reference = PoseEstimator(DEFAULT_MODEL, backend="torch", flip_test=False)
    expected = [reference(frame) for frame in frames]
    if not any((p.scores >= STRONG).any() for p in expected):
        return ["the shipped model finds no strong person on the check frames"]
    precisions = ["fp32", "bf16"] + (["fp16"] if device.startswith("cuda") else [])
    failures = []
    for precision in precisions:
        estimator = PoseEstimator(DEFAULT_MODEL, device=device, backend="torch",
                                  backend_options={"precision": precision}, flip_test=False)
        max_px, max_score = TOLERANCES[precision]
        for index, frame in enumerate(frames):
            distance, score = _worst_gap(expected[index], estimator(frame))
            line = (f"torch {device} {precision} frame {index}: worst joint distance "
                    f"{distance:.2f} px (<= {max_px}), score gap {score:.3f} (<= {max_score})")
            print("device_checks:", line)
            if distance > max_px or score > max_score:
                failures.append(line)
    return failures


def check_grouping_device(device: str) -> list[str]:
    """Failures of grouping + refine on `device` tensors against the CPU on the same maps."""
    from pose_core.grouping.parser import group_bottom_up
    from pose_core.inference.estimator import PoseEstimator

    estimator = PoseEstimator(DEFAULT_MODEL, backend="torch", flip_test=True)
    failures = []
    for index, frame in enumerate(_frames()):
        heatmaps, sampler = estimator.bottom_up_maps(frame)
        joints, height, width = heatmaps.shape
        tags = torch.stack([sampler.dense(j).reshape(-1, height, width) for j in range(joints)])
        tags = tags.permute(0, 2, 3, 1).contiguous()  # (J, H, W, L)
        on_cpu = group_bottom_up(heatmaps, tags, refine=True)
        on_device = group_bottom_up(heatmaps.to(device), tags.to(device), refine=True)
        same = len(on_cpu) == len(on_device) and (not len(on_cpu) or np.allclose(
            on_cpu.keypoints, on_device.keypoints, atol=1e-3, rtol=0))
        line = (f"grouping + refine on {device} frame {index}: {len(on_device)} people, CPU "
                f"{len(on_cpu)}, same within 1e-3 px: {same}")
        print("device_checks:", line)
        if not same:
            failures.append(line)
    return failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    failures = check_torch_precisions(args.device) + check_grouping_device(args.device)
    for line in failures:
        print(f"device_checks: FAILED {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
