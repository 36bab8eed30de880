"""Reading COCO and CrowdPose keypoint annotation files into typed, validated records.

Layouts (the official ones):
- COCO: `<root>/annotations/person_keypoints_<split>.json` with images in
  `<root>/images/<split>/` (HigherHRNet) or `<root>/<split>/`; 17 joints.
- CrowdPose: `<root>/json/crowdpose_<split>.json` with images in `<root>/images/`; 14 joints,
  a `crowdIndex` per image; annotations carry no segmentation.
Images may also sit beside the JSON (the shared fixtures) or in `images/` beside it (`pose-synth`).
Pass `image_dir` to be explicit.

Loss masks (HigherHRNet `lib/dataset/COCOKeypoints.py::get_mask`, `CrowdPoseKeypoints.py`):
COCO: NOT(union of the segmentations of crowd annotations and of annotations with
`num_keypoints == 0`), decoded with pycocotools; CrowdPose: all ones.

Frames: keypoints (J, 3) float32 x, y, visibility (0 absent, 1 occluded, 2 visible) in
original-image pixels (COCO convention: integer pixel indices, no half-pixel shift);
bbox (x, y, w, h) image pixels. Masks are (H, W) float32 in {0, 1}.
"""

from __future__ import annotations

import json
import pathlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pose_core.keypoint_specs import KeypointSpec

__all__ = [
    "DATASET_KINDS",
    "AnnotationError",
    "ImageRecord",
    "PersonAnnotation",
    "crowd_loss_mask",
    "find_image_dir",
    "load_coco_keypoints",
    "load_crowdpose_keypoints",
    "records_joints",
]

DATASET_KINDS = ("coco", "crowdpose")

_IMAGE_FIELDS = ("id", "file_name", "width", "height")
_ANNOTATION_FIELDS = ("image_id", "keypoints", "iscrowd", "num_keypoints", "bbox")


class AnnotationError(ValueError):
    """An annotation file that does not follow the official layout (names file and field)."""


@dataclass(frozen=True)
class PersonAnnotation:
    """One person annotation.

    Attributes:
        annotation_id: the annotation `id` (-1 when the file has none).
        keypoints: (J, 3) float32 x, y, visibility in image pixels.
        bbox: (x, y, w, h) image pixels.
        area: the `area` field, or bbox w·h when the file has none (CrowdPose).
        iscrowd: the `iscrowd` flag.
        num_keypoints: the `num_keypoints` field.
        segmentation: polygons (list of lists), RLE dict, or None.
    """

    annotation_id: int
    keypoints: np.ndarray
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: bool
    num_keypoints: int
    segmentation: Any = None


@dataclass(frozen=True)
class ImageRecord:
    """One image and its person annotations.

    Attributes:
        image_id: the image `id`.
        file_name: the `file_name` field.
        path: resolved image path.
        width: image width in pixels.
        height: image height in pixels.
        annotations: the person annotations of this image (file order).
        dataset: "coco" or "crowdpose" (decides the loss mask rule).
        crowd_index: CrowdPose `crowdIndex` (None for COCO).
    """

    image_id: int
    file_name: str
    path: pathlib.Path
    width: int
    height: int
    annotations: tuple[PersonAnnotation, ...]
    dataset: str = "coco"
    crowd_index: float | None = None


def _require(
    obj: Mapping[str, Any], fields: Sequence[str], where: str, json_path: pathlib.Path
) -> None:
    if not isinstance(obj, Mapping):
        raise AnnotationError(f"{json_path}: {where} is not a JSON object")
    for field in fields:
        if field not in obj:
            raise AnnotationError(f"{json_path}: {where}: missing field '{field}'")


def find_image_dir(json_path: pathlib.Path, first_file: str) -> pathlib.Path:
    """Locate the image folder of an official layout from the annotation path.

    Tries, in order: the JSON's folder; `<json folder>/images` (the `pose-synth` layout);
    `<root>/images/<split>`; `<root>/<split>`; `<root>/images` (root = the JSON folder's parent,
    split from `person_keypoints_<split>` or `crowdpose_<split>`). Returns the first that holds
    `first_file`, else the JSON's folder.
    """
    json_dir = json_path.parent
    root = json_dir.parent
    candidates = [json_dir, json_dir / "images"]
    match = re.match(r"(?:person_keypoints|crowdpose)_(.+)$", json_path.stem)
    if match:
        split = match.group(1)
        candidates += [root / "images" / split, root / split]
    candidates.append(root / "images")
    for candidate in candidates:
        if (candidate / first_file).is_file():
            return candidate
    return json_dir


def load_coco_keypoints(
    json_path: str | pathlib.Path,
    spec: KeypointSpec,
    image_dir: str | pathlib.Path | None = None,
    dataset: str = "coco",
    check_images: bool = True,
    category_id: int = 1,
) -> list[ImageRecord]:
    """Read and validate a COCO-format keypoint file.

    Args:
        json_path: annotation JSON (`person_keypoints_*.json`, `crowdpose_*.json`, ...).
        spec: the keypoint layout; every annotation must hold 3·J keypoint numbers.
        image_dir: image folder; None finds it with `find_image_dir`.
        dataset: "coco" or "crowdpose" (loss-mask rule, and `crowdIndex` is read for CrowdPose).
        check_images: raise when an image file is missing.
        category_id: annotations of other categories are skipped.

    Returns:
        One `ImageRecord` per image entry, in file order (images without annotations included).

    Raises:
        FileNotFoundError: the JSON or (with `check_images`) an image file is missing.
        AnnotationError: a missing field, a wrong keypoint count, or a malformed value; the
            message names the file, the entry and the field.
    """
    if dataset not in DATASET_KINDS:
        raise ValueError(f"dataset must be one of {DATASET_KINDS}, got {dataset!r}")
    json_path = pathlib.Path(json_path)
    content = _read_keypoint_file(json_path, spec, category_id)
    images, order = _image_entries(content, json_path)
    people = _people_by_image(content, order, json_path, spec, category_id)
    if image_dir is None:
        first = images[order[0]]["file_name"] if order else ""
        folder = find_image_dir(json_path, first)
    else:
        folder = pathlib.Path(image_dir)
    return [
        _image_record(images[image_id], people[image_id], folder, json_path, dataset,
                      check_images)
        for image_id in order
    ]


def _read_keypoint_file(
    json_path: pathlib.Path, spec: KeypointSpec, category_id: int
) -> dict[str, Any]:
    """The parsed file, with its top-level fields and keypoint category checked."""
    if not json_path.is_file():
        raise FileNotFoundError(f"annotation file not found: {json_path}")
    try:
        content = json.loads(json_path.read_text())
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{json_path}: not valid JSON ({error})") from error
    _require(content, ("images", "annotations"), "top level", json_path)
    num_joints = spec.num_keypoints
    for c_index, category in enumerate(content.get("categories", [])):
        if category.get("id") == category_id and "keypoints" in category:
            if len(category["keypoints"]) != num_joints:
                raise AnnotationError(
                    f"{json_path}: categories[{c_index}].keypoints: {len(category['keypoints'])}"
                    f" names, the {spec.name} layout has {num_joints}"
                )
    return content


def _image_entries(
    content: dict[str, Any], json_path: pathlib.Path
) -> tuple[dict[int, dict[str, Any]], list[int]]:
    """Image entries by id and the ids in file order (duplicates rejected)."""
    images: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    for i_index, image in enumerate(content["images"]):
        _require(image, _IMAGE_FIELDS, f"images[{i_index}]", json_path)
        image_id = image["id"]
        if image_id in images:
            raise AnnotationError(f"{json_path}: images[{i_index}].id: duplicate id {image_id}")
        images[image_id] = image
        order.append(image_id)
    return images, order


def _people_by_image(
    content: dict[str, Any],
    order: list[int],
    json_path: pathlib.Path,
    spec: KeypointSpec,
    category_id: int,
) -> dict[int, list[PersonAnnotation]]:
    """The validated person annotations of each image (other categories skipped)."""
    num_joints = spec.num_keypoints
    people: dict[int, list[PersonAnnotation]] = {image_id: [] for image_id in order}
    for a_index, ann in enumerate(content["annotations"]):
        where = f"annotations[{a_index}]" + (f" (id {ann['id']})" if "id" in ann else "")
        _require(ann, _ANNOTATION_FIELDS, where, json_path)
        if ann.get("category_id", category_id) != category_id:
            continue
        if ann["image_id"] not in people:
            raise AnnotationError(
                f"{json_path}: {where}.image_id: {ann['image_id']} is not in 'images'"
            )
        flat = ann["keypoints"]
        if not isinstance(flat, list) or len(flat) != 3 * num_joints:
            count = len(flat) if isinstance(flat, list) else type(flat).__name__
            raise AnnotationError(
                f"{json_path}: {where}.keypoints: expected {3 * num_joints} numbers "
                f"({num_joints} joints x 3, {spec.name}), got {count}"
            )
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise AnnotationError(f"{json_path}: {where}.bbox: expected [x, y, w, h], got {bbox}")
        area = float(ann["area"]) if "area" in ann else float(bbox[2]) * float(bbox[3])
        people[ann["image_id"]].append(
            PersonAnnotation(
                annotation_id=int(ann.get("id", -1)),
                keypoints=np.asarray(flat, dtype=np.float32).reshape(num_joints, 3),
                bbox=(float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])),
                area=area,
                iscrowd=bool(ann["iscrowd"]),
                num_keypoints=int(ann["num_keypoints"]),
                segmentation=ann.get("segmentation"),
            )
        )
    return people


def _image_record(
    image: dict[str, Any],
    people: list[PersonAnnotation],
    folder: pathlib.Path,
    json_path: pathlib.Path,
    dataset: str,
    check_images: bool,
) -> ImageRecord:
    """One image's record (its file checked when asked; CrowdPose needs `crowdIndex`)."""
    image_id = image["id"]
    path = folder / image["file_name"]
    if check_images and not path.is_file():
        raise FileNotFoundError(
            f"{json_path}: image file of image id {image_id} ('file_name' "
            f"{image['file_name']!r}) not found at {path}"
        )
    crowd_index = None
    if dataset == "crowdpose":
        if "crowdIndex" not in image:
            raise AnnotationError(
                f"{json_path}: image id {image_id}: missing field 'crowdIndex' (CrowdPose)"
            )
        crowd_index = float(image["crowdIndex"])
    return ImageRecord(
        image_id=image_id,
        file_name=str(image["file_name"]),
        path=path,
        width=int(image["width"]),
        height=int(image["height"]),
        annotations=tuple(people),
        dataset=dataset,
        crowd_index=crowd_index,
    )


def load_crowdpose_keypoints(
    json_path: str | pathlib.Path,
    spec: KeypointSpec,
    image_dir: str | pathlib.Path | None = None,
    check_images: bool = True,
) -> list[ImageRecord]:
    """`load_coco_keypoints` with `dataset="crowdpose"` (spec should be `CROWDPOSE_14`)."""
    return load_coco_keypoints(json_path, spec, image_dir, "crowdpose", check_images)


def _segmentation_pixels(
    segmentation: Any, bbox: Sequence[float], height: int, width: int
) -> np.ndarray:
    """(H, W) float64 count of covered pixels for one annotation (polygons or RLE).

    Without a segmentation the bbox rectangle is used (our fallback for synthetic files).
    """
    from pycocotools import mask as mask_utils  # optional dependency ('eval' extra)

    if not segmentation:
        x0, y0, x1, y1 = bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]
        segmentation = [[x0, y0, x1, y0, x1, y1, x0, y1]]
    rles = mask_utils.frPyObjects(segmentation, height, width)
    if isinstance(rles, dict):
        rles = [rles]
    total = np.zeros((height, width), dtype=np.float64)
    for rle in rles:
        total += mask_utils.decode(rle)
    return total


def crowd_loss_mask(record: ImageRecord) -> np.ndarray:
    """The HigherHRNet loss mask of one image at its original size.

    Returns:
        (H, W) float32: 1 where the loss counts. COCO: 0 on crowd regions and on people
        annotated without keypoints; CrowdPose: all ones.
    """
    if record.dataset == "crowdpose":
        return np.ones((record.height, record.width), dtype=np.float32)
    covered = np.zeros((record.height, record.width), dtype=np.float64)
    for ann in record.annotations:
        if ann.iscrowd or ann.num_keypoints == 0:
            covered += _segmentation_pixels(
                ann.segmentation, ann.bbox, record.height, record.width
            )
    return (covered < 0.5).astype(np.float32)


def records_joints(record: ImageRecord, num_joints: int) -> np.ndarray:
    """Joints of the people HigherHRNet trains on: `iscrowd == 0 or num_keypoints > 0`.

    Returns:
        (P, J, 3) float64 x, y, visibility in image pixels.
    """
    kept = [a for a in record.annotations if not a.iscrowd or a.num_keypoints > 0]
    if not kept:
        return np.zeros((0, num_joints, 3), dtype=np.float64)
    return np.stack([a.keypoints.astype(np.float64) for a in kept])
