"""Person boxes from a COCO detection-results JSON, read in one place.

The file is the official detection results format (HRNet's
`COCO_val2017_detections_AP_H_56_person.json`): a JSON list of records
`{"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float}`, boxes in
original-image pixels, top-left corner and size.

`read_detections` returns image id -> (B, 5) float64 arrays of x, y, w, h, score (file order
within an image; images in order of first appearance). Every record is checked before any
filter, so a malformed record is an error even where a filter would have dropped it.

The three readers this one replaced differed; each caller keeps its rule through arguments:

- `top_down_dataset.instances_from_detections`: category 1 (field required), score >=
  `min_score`, a kept record of an image absent from the records is an error;
- `pose-eval --detections` (`evaluation.cli`): category 1 (field required), score >=
  `--min-det-score`, every image id kept (boxes of images outside the GT are never used);
- `TopDownTask` validation with `data.person_boxes: <file>` (`engine.tasks`): category 1 where a
  record without `category_id` counts as 1, no score threshold, records of images outside the
  validation records skipped.

None of them filters on box size (a zero-area box is kept). What is new for all three: records
are checked field by field (integer `image_id` / `category_id`, 4 finite numbers in `bbox`, a
finite `score`), where before a bad value failed later or passed through.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Collection
from typing import Any, Literal

import numpy as np

from pose_core.data.coco import AnnotationError

__all__ = ["DETECTION_FIELDS", "read_detections"]

DETECTION_FIELDS = ("image_id", "category_id", "bbox", "score")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_record(
    path: pathlib.Path, index: int, record: Any, default_category_id: int | None
) -> tuple[int, int, list[float], float]:
    """One record -> (image_id, category_id, bbox, score) or AnnotationError naming the index."""
    where = f"{path}: [{index}]"
    if not isinstance(record, dict):
        raise AnnotationError(f"{where}: expected an object, got {type(record).__name__}")
    optional = ("category_id",) if default_category_id is not None else ()
    for field in DETECTION_FIELDS:
        if field not in record and field not in optional:
            raise AnnotationError(f"{where}: missing field '{field}'")
    image_id = record["image_id"]
    if isinstance(image_id, bool) or not isinstance(image_id, int):
        raise AnnotationError(f"{where}.image_id: expected an integer, got {image_id!r}")
    category_id = record.get("category_id", default_category_id)
    if isinstance(category_id, bool) or not isinstance(category_id, int):
        raise AnnotationError(f"{where}.category_id: expected an integer, got {category_id!r}")
    bbox = record["bbox"]
    if (
        not isinstance(bbox, (list, tuple))
        or len(bbox) != 4
        or not all(_is_number(v) and math.isfinite(v) for v in bbox)
    ):
        raise AnnotationError(f"{where}.bbox: expected [x, y, w, h], 4 finite numbers, got {bbox}")
    score = record["score"]
    if not _is_number(score) or not math.isfinite(score):
        raise AnnotationError(f"{where}.score: expected a finite number, got {score!r}")
    return image_id, category_id, [float(v) for v in bbox], float(score)


def read_detections(
    path: str | pathlib.Path,
    *,
    image_ids: Collection[int] | None = None,
    min_score: float | None = 0.0,
    category_id: int | None = 1,
    default_category_id: int | None = None,
    unknown_images: Literal["skip", "error"] = "skip",
) -> dict[int, np.ndarray]:
    """Person boxes per image from a detection-results JSON.

    Filters, in this order: category, score, image id (so a dropped record never reaches the
    image-id check).

    Args:
        path: the JSON file.
        image_ids: the images of interest; None keeps every image of the file.
        min_score: keep records with score >= this; None keeps every score.
        category_id: keep this category only (1, person); None keeps every category.
        default_category_id: category of a record without `category_id`; None makes the field
            required.
        unknown_images: a kept record of an image outside `image_ids`: "skip" it or raise
            ("error").

    Returns:
        image id -> (B, 5) float64 x, y, w, h, score in image pixels; only images with at least
        one kept box are present.

    Raises:
        FileNotFoundError: `path` is not a file.
        AnnotationError: (a ValueError) invalid JSON, not a list, or a malformed record; the
            message names the file, the record index and the field.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"detection results file not found: {path}")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}: invalid JSON: {error}") from None
    if not isinstance(records, list):
        raise AnnotationError(f"{path}: expected a JSON list of detections")
    wanted = None if image_ids is None else {int(i) for i in image_ids}
    rows: dict[int, list[list[float]]] = {}
    for index, record in enumerate(records):
        image_id, category, bbox, score = _check_record(path, index, record, default_category_id)
        if category_id is not None and category != category_id:
            continue
        if min_score is not None and score < min_score:
            continue
        if wanted is not None and image_id not in wanted:
            if unknown_images == "error":
                raise AnnotationError(
                    f"{path}: [{index}].image_id: {image_id} is not in the annotations"
                )
            continue
        rows.setdefault(image_id, []).append([*bbox, score])
    return {key: np.asarray(value, dtype=np.float64).reshape(-1, 5) for key, value in rows.items()}
