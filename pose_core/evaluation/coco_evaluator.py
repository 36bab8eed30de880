"""Keypoint AP/AR: COCO through pycocotools, CrowdPose through xtcocotools ('keypoints_crowd').

- COCO: `pycocotools.cocoeval.COCOeval(gt, dt, "keypoints")` with the COCO sigmas and the GT
  segmentation area, as HigherHRNet/HRNet `_do_python_keypoint_eval`. Reported: AP, AP50, AP75,
  APm, APl, AR, AR50, AR75, ARm, ARl (stats[0..9]).
- CrowdPose: `xtcocotools.cocoeval.COCOeval(gt, dt, "keypoints_crowd", sigmas, use_area=False)`
  with the CrowdPose sigmas; area = bbox w·h·0.53 (the CrowdPose API rule, since its files have
  no area), maxDets 20; easy/medium/hard AP from the crowd-index split at 0.2 / 0.8 (the
  CrowdPose `get_type_result` path). Reported: AP, AP50, AP75, AR, AR50, AR75, APe, APm, APh.
- A metric with no ground truth in its range is -1, as the COCO tools report it.

The evaluator follows the detectron2 shape: `reset()`, `process(image_ids, poses_list)`,
`evaluate() -> dict[str, float]`. Poses are in original-image pixels.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from pose_core.data.coco_results import load_results_json, poses_to_coco_results
from pose_core.keypoint_specs import CROWDPOSE_14
from pose_core.structures import Poses

__all__ = [
    "COCO_METRICS",
    "CROWDPOSE_METRICS",
    "EVAL_DATASETS",
    "KeypointEvaluator",
    "evaluate_keypoint_results",
]

EVAL_DATASETS = ("coco", "crowdpose")
COCO_METRICS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
CROWDPOSE_METRICS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "APe", "APm", "APh")


def _empty_results(coco_gt: Any, coco_class: type) -> Any:
    """A results object with no detections (the COCO tools' `loadRes` rejects an empty list)."""
    empty = coco_class()
    empty.dataset = {
        "images": copy.deepcopy(coco_gt.dataset["images"]),
        "categories": copy.deepcopy(coco_gt.dataset.get("categories", [])),
        "annotations": [],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        empty.createIndex()
    return empty


def evaluate_keypoint_results(
    gt_json: str | pathlib.Path,
    results: Sequence[dict[str, Any]] | str | pathlib.Path,
    dataset: str = "coco",
    image_ids: Sequence[int] | None = None,
    verbose: bool = False,
) -> dict[str, float]:
    """Run the official evaluation tool on COCO-format keypoint results.

    Args:
        gt_json: ground-truth annotation file.
        results: result records, or the path of a results JSON.
        dataset: "coco" (pycocotools) or "crowdpose" (xtcocotools keypoints_crowd).
        image_ids: restrict evaluation to these images (default: every GT image, as official).
        verbose: let the tool print its summary.

    Returns:
        Metric name -> value (see COCO_METRICS / CROWDPOSE_METRICS).
    """
    if dataset not in EVAL_DATASETS:
        raise ValueError(f"dataset must be one of {EVAL_DATASETS}, got {dataset!r}")
    gt_path = pathlib.Path(gt_json)
    if not gt_path.is_file():
        raise FileNotFoundError(f"annotation file not found: {gt_path}")
    records = load_results_json(results) if isinstance(results, str | pathlib.Path) else results
    records = list(records)
    sink: contextlib.AbstractContextManager[Any]
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        if dataset == "coco":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval

            coco_gt = COCO(str(gt_path))
            coco_dt = coco_gt.loadRes(records) if records else _empty_results(coco_gt, COCO)
            evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
            names = COCO_METRICS
        else:
            from xtcocotools.coco import COCO as XtCOCO
            from xtcocotools.cocoeval import COCOeval as XtCOCOeval

            coco_gt = XtCOCO(str(gt_path))
            if records:
                coco_dt = coco_gt.loadRes(records)
            else:
                coco_dt = _empty_results(coco_gt, XtCOCO)
                coco_gt.anno_file.append(None)  # what loadRes records; get_type_result reads it
            sigmas = np.asarray(CROWDPOSE_14.sigmas, dtype=np.float64)
            evaluator = XtCOCOeval(coco_gt, coco_dt, "keypoints_crowd", sigmas, use_area=False)
            names = CROWDPOSE_METRICS
        evaluator.params.useSegm = None
        if image_ids is not None:
            evaluator.params.imgIds = sorted(set(image_ids))
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(value) for name, value in zip(names, evaluator.stats, strict=True)}


class KeypointEvaluator:
    """Accumulates predictions over a pass, then runs the official tool.

    Args:
        gt_json: ground-truth annotation file (COCO or CrowdPose format).
        dataset: "coco" or "crowdpose".
        only_processed_images: evaluate on the images passed to `process` (also those given
            with no people), the default; False evaluates every GT image, as the official
            `evaluate()` does (unprocessed images then count as misses). Both agree when every
            GT image is processed.
        verbose: let the tool print its summary.
    """

    def __init__(
        self,
        gt_json: str | pathlib.Path,
        dataset: str = "coco",
        only_processed_images: bool = True,
        verbose: bool = False,
    ) -> None:
        if dataset not in EVAL_DATASETS:
            raise ValueError(f"dataset must be one of {EVAL_DATASETS}, got {dataset!r}")
        self.gt_json = pathlib.Path(gt_json)
        if not self.gt_json.is_file():
            raise FileNotFoundError(f"annotation file not found: {self.gt_json}")
        content = json.loads(self.gt_json.read_text())
        self.gt_image_ids = frozenset(image["id"] for image in content.get("images", []))
        categories = [c for c in content.get("categories", []) if c.get("id") == 1]
        self.num_keypoints = len(categories[0]["keypoints"]) if categories else None
        self.dataset = dataset
        self.only_processed_images = only_processed_images
        self.verbose = verbose
        self._results: list[dict[str, Any]] = []
        self._image_ids: list[int] = []

    def reset(self) -> None:
        """Forget everything processed so far."""
        self._results = []
        self._image_ids = []

    def process(self, image_ids: Sequence[int], poses_list: Sequence[Poses]) -> None:
        """Add the predictions of a batch.

        Args:
            image_ids: GT image ids, one per entry of `poses_list`.
            poses_list: people per image, in original-image pixels.
        """
        if len(image_ids) != len(poses_list):
            raise ValueError(f"{len(image_ids)} image ids for {len(poses_list)} pose sets")
        for image_id, poses in zip(image_ids, poses_list, strict=True):
            image_id = int(image_id)
            if image_id not in self.gt_image_ids:
                raise ValueError(f"image id {image_id} is not in {self.gt_json}")
            if self.num_keypoints is not None and len(poses) and (
                poses.num_keypoints != self.num_keypoints
            ):
                raise ValueError(
                    f"poses have {poses.num_keypoints} keypoints, {self.gt_json} has "
                    f"{self.num_keypoints}"
                )
            self._image_ids.append(image_id)
            self._results.extend(poses_to_coco_results(image_id, poses))

    @property
    def results(self) -> list[dict[str, Any]]:
        """The COCO result records gathered so far (write them with `write_results_json`)."""
        return list(self._results)

    def evaluate(self) -> dict[str, float]:
        """Metric name -> value over the processed predictions."""
        image_ids = self._image_ids if self.only_processed_images else None
        return evaluate_keypoint_results(
            self.gt_json, self._results, self.dataset, image_ids, self.verbose
        )
