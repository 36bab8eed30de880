"""Task glue for the training loop: model, dataset, loss and validation of one task.

- `TopDownTask` (HRNet / DarkPose): `TopDownDataset` crops (GT boxes, HRNet augmentation,
  standard or DARK targets), `JointsMSELoss` with target weights, and validation through the
  top-down `PoseEstimator` on GT boxes or a detection-results JSON.
- `BottomUpTask` (HigherHRNet): `BottomUpDataset` samples (heatmaps at 1/4 and 1/2 of the input,
  masks, AE joint indices), `BottomUpLoss`, and validation that runs the model over the held-out
  images the way the official test does (resize, flip test, aggregation, `group_bottom_up`),
  writes COCO results and scores them with the COCO keypoint evaluator (pycocotools).

`build_task(config)` picks the task from `config.task`. Functions take the sub-configs they
need; the whole `TrainConfig` is only read here, at the top.
"""

from __future__ import annotations

import pathlib
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from pose_core.engine.config import (
    CodecConfig,
    DataConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
    ValidationConfig,
)
from pose_core.structures import Poses

__all__ = [
    "BottomUpTask",
    "TopDownTask",
    "build_task",
    "TASKS",
    "build_model_from_config",
    "bottom_up_output_sizes",
    "build_validation_estimator",
    "evaluate_coco_keypoints",
]


def build_model_from_config(config: ModelConfig) -> nn.Module:
    """The registered network, with `init_checkpoint` loaded (all of it or only the backbone,
    `init_scope`) when given."""
    from pose_core.models import build_model

    model = build_model(config.name)
    if config.init_checkpoint:
        from pose_core.models.checkpoint import load_backbone_checkpoint, load_checkpoint

        load = load_backbone_checkpoint if config.init_scope == "backbone" else load_checkpoint
        load(model, config.init_checkpoint)
    return model


def bottom_up_output_sizes(input_size: int, num_outputs: int = 2) -> tuple[int, ...]:
    """HigherHRNet output sides: input/4, input/2 (first = the AE resolution)."""
    return tuple(input_size // 4 * (2**i) for i in range(num_outputs))


def _resolve(path: str) -> pathlib.Path:
    return pathlib.Path(path).expanduser()


def build_validation_estimator(
    model: nn.Module, name: str, options: ValidationConfig, device: torch.device
) -> Any:
    """A `PoseEstimator` running `model` (eval mode) with the validation test options: the
    same preprocessing, flip test, aggregation and `group_bottom_up` as real models, at a
    single scale (whatever the model's default test scales)."""
    import dataclasses

    from pose_core.inference import PoseEstimator
    from pose_core.inference.backends import TorchBackend

    return PoseEstimator(
        name,
        backend=TorchBackend(model, device),
        flip_test=options.flip_test,
        scales=(1.0,),
        **dataclasses.asdict(options.grouping_params()),
    )


def evaluate_coco_keypoints(
    gt_json: str | pathlib.Path,
    image_ids: Sequence[int],
    poses: Sequence[Poses],
    spec: KeypointSpec,
    dataset: str = "coco",
) -> dict[str, float]:
    """COCO keypoint AP of `poses` against `gt_json` restricted to `image_ids`.

    Uses `pose_core.evaluation.coco_evaluator.KeypointEvaluator` (pycocotools / xtcocotools
    through the project's evaluator, official result records).
    """
    from pose_core.evaluation.coco_evaluator import KeypointEvaluator

    evaluator = KeypointEvaluator(str(gt_json), dataset=dataset)
    evaluator.reset()
    evaluator.process(list(image_ids), list(poses))
    return {k: float(v) for k, v in evaluator.evaluate().items()}


class _CocoTask:
    """What both tasks share: the configs, the registry entry, COCO records, the input tensor and
    the validation loop (read each held-out image, predict, score with the COCO evaluator)."""

    def __init__(
        self,
        model: ModelConfig,
        data: DataConfig,
        codec: CodecConfig,
        loss: LossConfig,
        validation: ValidationConfig,
        seed: int = 0,
    ) -> None:
        from pose_core.models import model_info

        self.model_config = model
        self.data = data
        self.codec = codec
        self.loss_config = loss
        self.validation_config = validation
        self.seed = seed
        self.info = model_info(model.name)
        self.spec = self.info.keypoints
        self._loss: nn.Module | None = None
        self._configure()

    def _configure(self) -> None:
        """The task's own derived settings (sizes), checked once the configs are stored."""

    def build_model(self) -> nn.Module:
        return build_model_from_config(self.model_config)

    def _records(self, annotations: str, images: str) -> list[Any]:
        from pose_core.data.coco import load_coco_keypoints

        return load_coco_keypoints(
            _resolve(annotations), self.spec, image_dir=_resolve(images) if images else None,
            dataset=self.data.dataset,
        )

    def _validation_records(self) -> list[Any]:
        """The held-out records, the first `val_max_images` when that is positive."""
        records = self._records(self.data.val_annotations, self.data.val_images)
        if self.data.val_max_images > 0:
            records = records[: self.data.val_max_images]
        return records

    def _evaluate(
        self, records: Sequence[Any], predict: Callable[[np.ndarray, Any], Poses]
    ) -> dict[str, float]:
        """COCO keypoint AP of `predict(bgr_image, record)` over `records`."""
        image_ids: list[int] = []
        predictions: list[Poses] = []
        for record in records:
            image = cv2.imread(str(record.path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            if image is None:
                raise FileNotFoundError(f"cannot read validation image {record.path}")
            predictions.append(predict(image, record))
            image_ids.append(int(record.image_id))
        return evaluate_coco_keypoints(
            _resolve(self.data.val_annotations), image_ids, predictions, self.spec,
            self.data.dataset,
        )

    def inputs(self, batch: Mapping[str, Any], device: torch.device) -> Tensor:
        return batch["image"].to(device, non_blocking=True)


class BottomUpTask(_CocoTask):
    """HigherHRNet training: dataset, loss and validation from the sub-configs.

    Args:
        model: which network.
        data: files and augmentation.
        codec: sigma and AE slots.
        loss: loss factors.
        validation: test-time options.
        seed: base seed of the dataset's per-sample generators.
    """

    def _configure(self) -> None:
        self.input_size = int(self.data.input_size[0])
        self._flip_teacher: nn.Module | None = None  # LossConfig.flip_tag_teacher, loaded once
        self._teacher_tags: Any = None
        self.output_sizes = bottom_up_output_sizes(
            self.input_size, len(self.loss_config.heatmap_factors)
        )

    def train_dataset(self) -> Dataset:
        from pose_core.data.bottom_up_dataset import BottomUpDataset

        records = self._records(self.data.train_annotations, self.data.train_images)
        return BottomUpDataset(records, self.spec, **self.dataset_options())

    def dataset_options(self) -> dict[str, Any]:
        """`BottomUpDataset` keyword options from the configs (augmentation on)."""
        return dict(
            input_size=self.input_size,
            output_sizes=self.output_sizes,
            sigma=self.codec.sigma,
            max_people=self.codec.max_people,
            augment=True,
            seed=self.seed,
            max_rotation=self.data.max_rotation,
            min_scale=self.data.min_scale,
            max_scale=self.data.max_scale,
            max_translate=self.data.max_translate,
            flip_prob=self.data.flip,
            mean=self.info.mean,
            std=self.info.std,
        )

    def loss(
        self, outputs: Any, batch: Mapping[str, Any], device: torch.device
    ) -> dict[str, Tensor]:
        if self._loss is None:
            from pose_core.losses import BottomUpLoss

            self._loss = BottomUpLoss(
                self.info.head_layout,
                heatmap_factors=self.loss_config.heatmap_factors,
                push_factor=self.loss_config.push_factor,
                pull_factor=self.loss_config.pull_factor,
                ae_loss_type=self.loss_config.ae_loss_type,
            )
        heatmaps = [h.to(device, non_blocking=True) for h in batch["heatmaps"]]
        masks = [m.to(device, non_blocking=True) for m in batch["masks"]]
        joints = batch["joints"].to(device, non_blocking=True)
        terms = self._loss(list(outputs), heatmaps, masks, joints)
        if self.loss_config.flip_tag_teacher:
            terms["flip_tags"] = self._flip_tag_term(outputs, batch, joints, device)
        return terms

    def _flip_tag_term(self, outputs: Any, batch: Mapping[str, Any], joints: Tensor,
                       device: torch.device) -> Tensor:
        """The flip-tag distillation term (`LossConfig.flip_tag_teacher`)."""
        from pose_core.losses.flip_tag_distillation import (
            flip_tag_distillation,
            mirrored_teacher_tags,
        )

        head = self.info.head_layout
        if head.tags is None or head.tag_dim < 2:
            raise ValueError("flip_tag_teacher needs a model with two tag values per joint")
        if self._flip_teacher is None:
            from pose_core.models import build_model, model_info
            from pose_core.models.checkpoint import load_checkpoint

            teacher = build_model(self.loss_config.flip_tag_teacher_model)
            load_checkpoint(teacher, _resolve(self.loss_config.flip_tag_teacher))
            self._flip_teacher = teacher.to(device).eval().requires_grad_(False)
            teacher_head = model_info(self.loss_config.flip_tag_teacher_model).head_layout
            if teacher_head.tags is None or teacher_head.tag_dim != 1:
                raise ValueError("flip_tag_teacher_model must have one tag value per joint")
            self._teacher_tags = teacher_head.tags
        target = mirrored_teacher_tags(
            self._flip_teacher, batch["image"].to(device, non_blocking=True),
            self._teacher_tags, self.spec.flip_index,
        )
        student = head.tags.take(list(outputs))
        return flip_tag_distillation(student, target, joints, head.tag_dim) * float(
            self.loss_config.flip_tag_factor)

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float] | None:
        """AP on the held-out set (first `val_max_images` images), official test path."""
        if not self.data.val_annotations:
            return None
        records = self._validation_records()
        estimator = build_validation_estimator(
            model, self.model_config.name, self.validation_config, device
        )
        return self._evaluate(records, lambda image, record: estimator(image))


class TopDownTask(_CocoTask):
    """HRNet / DarkPose training: person crops, joints MSE with target weights, and validation
    of the crops given by GT boxes or a detection-results JSON (`data.person_boxes`).

    Args: as `BottomUpTask`; `data.input_size` is (w, h); `codec.encoding` selects the HRNet
    ("standard") or DARK ("dark") targets and the matching decoder at validation.
    """

    def _configure(self) -> None:
        if len(self.data.input_size) != 2:
            raise ValueError("top-down data.input_size must be [w, h]")
        self.image_wh = (int(self.data.input_size[0]), int(self.data.input_size[1]))
        self.heatmap_wh = (self.image_wh[0] // 4, self.image_wh[1] // 4)

    def train_dataset(self) -> Dataset:
        from pose_core.data.top_down_dataset import (
            COCO_UPPER_BODY_IDS,
            TopDownDataset,
            instances_from_records,
        )

        records = self._records(self.data.train_annotations, self.data.train_images)
        instances = instances_from_records(records, self.image_wh[0] / self.image_wh[1])
        return TopDownDataset(
            instances,
            self.spec,
            image_wh=self.image_wh,
            heatmap_wh=self.heatmap_wh,
            sigma=self.codec.sigma,
            encoding=self.codec.encoding,
            augment=True,
            seed=self.seed,
            scale_factor=self.data.max_scale - 1.0,
            rotation_factor=self.data.max_rotation,
            flip_prob=self.data.flip,
            half_body_prob=self.data.half_body_prob,
            upper_body_ids=COCO_UPPER_BODY_IDS if self.spec.name == "coco" else (),
            num_joints_half_body=self.data.half_body_min_joints,
            mean=self.info.mean,
            std=self.info.std,
        )

    def loss(
        self, outputs: Any, batch: Mapping[str, Any], device: torch.device
    ) -> dict[str, Tensor]:
        if self._loss is None:
            from pose_core.losses.heatmap_loss import JointsMSELoss

            self._loss = JointsMSELoss(use_target_weight=True)
        heatmaps = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
        target = batch["target"].to(device, non_blocking=True)
        weight = batch["target_weight"].to(device, non_blocking=True)
        return {"heatmaps": self._loss(heatmaps, target, weight)}

    def _boxes(self, records: Sequence[Any]) -> dict[int, list[list[float]]]:
        boxes: dict[int, list[list[float]]] = {int(r.image_id): [] for r in records}
        if self.data.person_boxes == "gt":
            for record in records:
                for ann in record.annotations:
                    if ann.area > 0 and not ann.iscrowd:
                        boxes[int(record.image_id)].append([*map(float, ann.bbox), 1.0])
            return boxes
        from pose_core.data.detections import read_detections

        path = _resolve(self.data.person_boxes)
        if not path.is_file():
            raise FileNotFoundError(f"data.person_boxes: detection results not found: {path}")
        # this task's rule: a record without category_id is a person, no score threshold,
        # detections of images outside the validation records skipped
        found = read_detections(
            path, image_ids=boxes, min_score=None, default_category_id=1, unknown_images="skip"
        )
        for image_id, rows in found.items():
            boxes[image_id] = rows.tolist()
        return boxes

    def validation_estimator(self, model: nn.Module, device: torch.device) -> Any:
        """The top-down `PoseEstimator` that validation runs `model` through."""
        from pose_core.inference import PoseEstimator
        from pose_core.inference.backends import TorchBackend

        return PoseEstimator(
            self.model_config.name,
            backend=TorchBackend(model, device),
            flip_test=self.validation_config.flip_test,
            top_down_decoder="dark" if self.codec.encoding == "dark" else "quarter",
        )

    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float] | None:
        """AP with the validation boxes through `PoseEstimator` (top-down path)."""
        if not self.data.val_annotations:
            return None
        records = self._validation_records()
        estimator = self.validation_estimator(model, device)
        boxes = self._boxes(records)

        def predict(image: np.ndarray, record: Any) -> Poses:
            found = boxes[int(record.image_id)]
            if not found:
                return Poses.empty(self.spec.num_keypoints)
            return estimator(image, np.asarray(found, np.float64))

        return self._evaluate(records, predict)


# config.task -> (module, class); every class takes (model, data, codec, loss, validation,
# seed). Imported lazily: a method's task lives beside its own code.
TASKS: dict[str, tuple[str, str]] = {
    "bottom_up": ("pose_core.engine.tasks", "BottomUpTask"),
    "top_down": ("pose_core.engine.tasks", "TopDownTask"),
    # --- Coupled Embedding
    "coupled_embedding": ("pose_core.engine.coupled_embedding_task", "CoupledEmbeddingTask"),
    # --- Double Embedding
    "double_embedding": ("pose_core.engine.double_embedding_task", "DoubleEmbeddingTask"),
    # --- Semi-supervised
    "semi_supervised": ("pose_core.engine.semi_supervised", "SemiSupervisedTask"),
    # bottom-up adaptation (an extension, not in the paper)
    "semi_supervised_bottom_up": ("pose_core.engine.semi_supervised_bottom_up",
                                  "SemiSupervisedBottomUpTask"),
}


def build_task(config: TrainConfig) -> Any:
    """The task object of an experiment (`config.task`, a key of `TASKS`)."""
    import importlib

    if config.task not in TASKS:
        raise ValueError(f"unknown task {config.task!r}; known: {', '.join(TASKS)}")
    module, name = TASKS[config.task]
    task_class = getattr(importlib.import_module(module), name)
    if hasattr(task_class, "from_train_config"):  # a task with its own sub-config
        return task_class.from_train_config(config)
    return task_class(
        config.model, config.data, config.codec, config.loss, config.validation, config.seed
    )
