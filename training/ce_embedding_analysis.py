"""Embedding analysis for Coupled Embedding's central claim, on any CE model and COCO-format set.

The paper (Wang et al., ECCV 2022) observes that the dimensions of multi-dimensional
associative-embedding tags are highly linearly correlated (so the extra dimensions add
little), and that coupling the tag to the instance scale decorrelates them. The release has no
code for this; this tool measures it:

- per image, the network (no flip, scale 1, the CE codec's input) gives the stride-4 tags
  (J, D, h, w); each annotated person's visible joints are read at their truncated stride-4
  positions (the training loss's indices) and averaged into a mean tag (D,);
- `pearson_abs_mean`: mean |Pearson r| over the D (D - 1) / 2 pairs of dimensions of the mean
  tags pooled over all images; `pearson_abs_mean_centred`: the same after subtracting each
  image's mean of its people's mean tags (tags only need to differ within an image);
- `effective_rank` (exp of the entropy of the normalised covariance eigenvalues) and
  `participation_ratio` ((sum l)^2 / sum l^2) of the pooled (centred) mean tags: 1 when the
  tags vary along one line, D when all dimensions carry equal independent variance;
- `gt_grouping_accuracy`: in images with >= 2 people, the fraction of visible joints whose tag
  is nearer (L2) to their own person's mean tag than to any other person's (tags at GT
  locations; heatmaps play no part).

Usage:
    ./env.sh python training/ce_embedding_analysis.py --model ce_higherhrnet_lite_w16_256_coco \
        --checkpoint runs/x/best.pt --annotations val/annotations.json --images val/images \
        [--max-images 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

__all__ = ["person_mean_tags", "embedding_statistics", "analyse_model", "main"]


def person_mean_tags(
    tags: np.ndarray, keypoints: np.ndarray, input_to_map: float
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Mean tag per person and the joint tags: tags (J, D, h, w); keypoints (P, J, 3) in
    network-input pixels; input_to_map = h / input height. People without a visible in-map
    joint are dropped."""
    num_joints, dim, height, width = tags.shape
    means, joint_tags = [], []
    for person in keypoints:
        rows = []
        for joint, (x, y, visible) in enumerate(person):
            column, row = int(x * input_to_map), int(y * input_to_map)
            if visible > 0 and 0 <= column < width and 0 <= row < height:
                rows.append(tags[joint, :, row, column])
        if rows:
            stacked = np.stack(rows)
            joint_tags.append(stacked)
            means.append(stacked.mean(axis=0))
    return np.asarray(means, np.float64).reshape(-1, dim), joint_tags


def _abs_pearson(values: np.ndarray) -> float:
    if values.shape[1] < 2 or len(values) < 3:
        return float("nan")
    spread = values.std(axis=0)
    keep = spread > 0
    if keep.sum() < 2:
        return 1.0  # at most one dimension varies: fully redundant
    corr = np.corrcoef(values[:, keep].T)
    upper = np.triu_indices(corr.shape[0], 1)
    return float(np.abs(corr[upper]).mean())


def _ranks(values: np.ndarray) -> tuple[float, float]:
    if len(values) < 2:
        return float("nan"), float("nan")
    eigen = np.clip(np.linalg.eigvalsh(np.cov(values.T).reshape(values.shape[1], -1)), 0, None)
    total = eigen.sum()
    if total <= 0:
        return 0.0, 0.0
    share = eigen / total
    entropy = -float(np.sum(share[share > 0] * np.log(share[share > 0])))
    return math.exp(entropy), float(total**2 / np.sum(eigen**2))


def embedding_statistics(
    per_image_means: Sequence[np.ndarray], per_image_joint_tags: Sequence[list[np.ndarray]]
) -> dict[str, float]:
    """The module docstring's metrics from each image's (P_i, D) mean tags and joint tags."""
    nonempty = [m for m in per_image_means if len(m)]
    if not nonempty:
        return {"people": 0}
    pooled = np.concatenate(nonempty)
    centred = np.concatenate([m - m.mean(axis=0) for m in nonempty if len(m) >= 2] or [pooled])
    effective_rank, participation = _ranks(centred)
    correct = total = 0
    for means, joint_tags in zip(per_image_means, per_image_joint_tags):
        if len(means) < 2:
            continue
        for own, rows in enumerate(joint_tags):
            distance = np.linalg.norm(rows[:, None, :] - means[None], axis=2)
            correct += int((distance.argmin(axis=1) == own).sum())
            total += len(rows)
    return {
        "people": int(len(pooled)),
        "tag_dim": int(pooled.shape[1]),
        "pearson_abs_mean": _abs_pearson(pooled),
        "pearson_abs_mean_centred": _abs_pearson(centred),
        "effective_rank": effective_rank,
        "participation_ratio": participation,
        "gt_grouping_accuracy": correct / total if total else float("nan"),
        "gt_grouping_joints": int(total),
    }


def analyse_model(
    model: torch.nn.Module, name: str, annotations: Path, images: Path, max_images: int = 0
) -> dict[str, float]:
    """Run `model` (a registered CE name's network) over a COCO-format set; the statistics."""
    from pose_core.codecs import build_decoder
    from pose_core.data.coco import load_coco_keypoints, records_joints
    from pose_core.geometry import affine_matrix, apply_affine
    from pose_core.models import model_info

    info = model_info(name)
    codec = build_decoder(info)
    records = load_coco_keypoints(annotations, info.keypoints, image_dir=images)
    if max_images > 0:
        records = records[:max_images]
    means, joint_tags = [], []
    model.eval()
    for record in records:
        image = cv2.imread(str(record.path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        prepared = codec.prepare(image, None)
        with torch.no_grad():
            outputs = model(prepared.inputs[0])
        tags = info.head_layout.tag_maps(outputs)[0].float().numpy()
        frame = prepared.frame
        keypoints = records_joints(record, info.num_joints).copy()
        if len(keypoints):
            matrix = affine_matrix(frame.center, frame.scale, frame.base_size_wh)
            keypoints[..., :2] = apply_affine(keypoints[..., :2], matrix)
        input_to_map = tags.shape[2] / prepared.inputs[0].shape[2]
        person_means, person_joints = person_mean_tags(tags, keypoints, input_to_map)
        means.append(person_means)
        joint_tags.append(person_joints)
    return embedding_statistics(means, joint_tags)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="registered CE model name")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--annotations", required=True, type=Path)
    parser.add_argument("--images", required=True, type=Path)
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    from pose_core.models import build_model
    from pose_core.models.checkpoint import load_checkpoint

    model = build_model(args.model)
    load_checkpoint(model, args.checkpoint)
    stats: dict[str, Any] = analyse_model(
        model, args.model, args.annotations, args.images, args.max_images
    )
    text = json.dumps(stats, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
