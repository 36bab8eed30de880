"""COCO-format keypoint result records from `Poses`, and reading/writing the results JSON.

Mirrors the record layout of HigherHRNet `lib/dataset/COCODataset.py::
_coco_keypoint_results_one_category_kernel` (also HRNet's): per person `image_id`,
`category_id` (1), `keypoints` as a flat list of J × (x, y, score), `score`, and `bbox` =
[min x, min y, max x − min x, max y − min y] over **all** J keypoints (joints that were not found
are included wherever they lie, as in the official code). pycocotools recomputes the bbox/area
of keypoint results itself, so the bbox is informative only.

Frames: keypoints in original-image pixels.

Lives in `pose_core.data` (beside the COCO annotation and detection readers) so that both
`pose_core.inference` (`pose-infer` writes records) and `pose_core.evaluation` (scores them) use
it without importing each other.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from pose_core.structures import Poses

__all__ = ["load_results_json", "poses_to_coco_results", "write_results_json"]


def poses_to_coco_results(
    image_id: int | str, poses: Poses, category_id: int = 1
) -> list[dict[str, Any]]:
    """One COCO result record per person.

    Args:
        image_id: the GT image id the poses belong to.
        poses: people in original-image pixels.
        category_id: category of every record (1, person).

    Returns:
        Records with Python floats: image_id, category_id, keypoints (3·J), score, bbox (4).
    """
    records = []
    for person, score in zip(poses.keypoints, poses.scores, strict=True):
        keypoints = np.asarray(person, dtype=np.float64)
        left, top = keypoints[:, 0].min(), keypoints[:, 1].min()
        right, bottom = keypoints[:, 0].max(), keypoints[:, 1].max()
        records.append(
            {
                "image_id": image_id,
                "category_id": int(category_id),
                "keypoints": [float(v) for v in keypoints.reshape(-1)],
                "score": float(score),
                "bbox": [float(left), float(top), float(right - left), float(bottom - top)],
            }
        )
    return records


def write_results_json(
    path: str | pathlib.Path, results: Sequence[dict[str, Any]]
) -> pathlib.Path:
    """Write records as a JSON list, atomically (temp file in the same folder, then rename)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(list(results), stream)
        os.replace(tmp_name, path)
    except BaseException:
        pathlib.Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_results_json(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """Read a results JSON (a list of records) with a clear error for other content."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    content = json.loads(path.read_text())
    if not isinstance(content, list):
        raise ValueError(f"{path}: a results file must hold a JSON list of records")
    for index, record in enumerate(content):
        for field in ("image_id", "category_id", "keypoints", "score"):
            if not isinstance(record, dict) or field not in record:
                raise ValueError(f"{path}: [{index}]: missing field '{field}'")
    return content
