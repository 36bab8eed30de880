"""Typed training configuration: frozen dataclasses, a strict `from_dict`, YAML as data only.

An experiment is one flat, complete YAML file under `config/train/` (no `_base_` inheritance,
no executable Python). `load_config(path, overrides)` reads it, applies command-line overrides
such as `optim.lr=0.001`, and builds a `TrainConfig`; every unknown key (in the file or in an
override) raises `ConfigError` naming the file and the dotted key. `to_yaml` writes the resolved
config into the run directory so a run always records exactly what it used.

Functions elsewhere take the sub-config they need (`OptimConfig`, `DataConfig`, ...), never the
whole tree.
"""

from __future__ import annotations

import dataclasses
import pathlib
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import yaml

from pose_core.grouping import GroupingParams
from pose_core.grouping.options import GROUPING_DEFAULTS, grouping_params_from

__all__ = [
    "ConfigError",
    "ModelConfig",
    "CodecConfig",
    "DataConfig",
    "LossConfig",
    "OptimConfig",
    "ValidationConfig",
    "SemiSupervisedConfig",
    "SemiSupervisedBottomUpConfig",
    "TrainConfig",
    "from_dict",
    "load_config",
    "apply_overrides",
    "parse_override",
    "to_dict",
    "to_yaml",
]


class ConfigError(ValueError):
    """A configuration file or override is invalid (message names the file and the key)."""


@dataclass(frozen=True)
class ModelConfig:
    """Which network to train.

    Attributes:
        name: a registry name of `pose_core.models` (e.g. "higherhrnet_w32_512_coco").
        init_checkpoint: optional weights loaded before training (ImageNet backbone or a
            previous model), through `pose_core.models.checkpoint`; None = random init.
        init_scope: "all" loads every entry strictly (`load_checkpoint`); "backbone" loads only
            the HRNet backbone (`load_backbone_checkpoint`) and keeps the heads' random init,
            e.g. to start a Double Embedding network from an associative-embedding model.
    """

    name: str
    init_checkpoint: str | None = None
    init_scope: Literal["all", "backbone"] = "all"


@dataclass(frozen=True)
class CodecConfig:
    """Target encoding.

    Attributes:
        sigma: Gaussian sigma in heatmap pixels (official bottom-up: 2 at every resolution).
        max_people: slots of the AE joint-index array (official 30).
        encoding: "standard" (truncated-centre patch, official) or "dark" (unbiased float
            centre, DarkPose; top-down only).
        dem_targets: Double Embedding only: "paper" (centre of the labelled joints, parent
            visibility checked, overlapping offsets averaged) or "release" (the released rules).
    """

    sigma: float = 2.0
    max_people: int = 30
    encoding: Literal["standard", "dark"] = "standard"
    dem_targets: Literal["paper", "release"] = "paper"


@dataclass(frozen=True)
class DataConfig:
    """Dataset files and augmentation (official HigherHRNet values as defaults).

    Attributes:
        dataset: "coco" or "crowdpose" (selects the keypoint spec and evaluator mode).
        train_annotations / train_images: COCO-format annotation JSON and its image folder.
        val_annotations / val_images: the held-out set used for validation AP.
        input_size: network input side in pixels (square, bottom-up) or (w, h) top-down.
        max_rotation: rotation drawn from U[-max_rotation, max_rotation) degrees.
        min_scale / max_scale: scale multiplier range.
        max_translate: translation bound in 200-px units times scale (official 40).
        flip: horizontal flip probability.
        num_workers: DataLoader worker processes (0 = load in the training process).
        val_max_images: evaluate only the first N validation images (0 = all).
        person_boxes: top-down only: "gt" or a detection-results JSON path.
        half_body_prob: top-down only: probability of the half-body crop (official 0.3).
        half_body_min_joints: top-down only: visible joints needed for it (official 8).
        unlabeled_annotations / unlabeled_images: semi-supervised only: the unlabeled pool
            (a COCO-format JSON whose person boxes are used, labels ignored) and its images.
        unlabeled_person_boxes: semi-supervised only: a detection-results JSON giving the
            unlabeled persons instead (`unlabeled_annotations` then only lists the images, e.g.
            image_info_unlabeled2017.json; no score threshold, as the paper's COCO+WILD).
    """

    dataset: Literal["coco", "crowdpose"] = "coco"
    train_annotations: str = ""
    train_images: str = ""
    val_annotations: str = ""
    val_images: str = ""
    input_size: tuple[int, ...] = (512,)
    max_rotation: float = 30.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    max_translate: float = 40.0
    flip: float = 0.5
    num_workers: int = 0
    val_max_images: int = 0
    person_boxes: str = "gt"
    half_body_prob: float = 0.0
    half_body_min_joints: int = 8
    unlabeled_annotations: str = ""
    unlabeled_images: str = ""
    unlabeled_person_boxes: str = ""


@dataclass(frozen=True)
class SemiSupervisedConfig:
    """Semi-supervised training (PoseCons / PoseDual, Xie et al. ICCV 2021; task
    "semi_supervised", `pose_core.engine.semi_supervised`).

    Attributes:
        method: "posecons" (one network teaches itself), "posedual" (two networks teach each
            other), "naive_consistency" (the collapsing control: the hard view teaches the easy
            one) or "supervised" (labeled loss only: consistency weight 0).
        num_labels: labeled subset = the first N person instances (official TRAIN_LEN; 0 = all).
        consistency_weight: weight of the consistency term (official 1).
        joint_cutout: rectangles per hard image around the teacher's joints (official 5; 0 off).
        hard_affine: the extra affine of the hard view (official UNSUP_TRANSFORM true).
        rand_augment_ops / rand_augment_magnitude: RandAugment N and M (0..30) of the hard
            view's pixels (official CONS_RAND_AUG with N 2, M 20; 0 ops = off).
        release: the released code's defects (swapped cutout clamp, cutout channels drawn among
            all model channels) instead of the corrected behaviour.
        cutout_scale: multiplies the cutout jitter (10 px) and half-sizes (10..19 px), the
            paper's values for 256x192 crops (1 = the paper; 0.25 for 64x48 crops).
    """

    method: Literal["posecons", "posedual", "naive_consistency", "supervised"] = "posedual"
    num_labels: int = 0
    consistency_weight: float = 1.0
    joint_cutout: int = 0
    hard_affine: bool = True
    rand_augment_ops: int = 0
    rand_augment_magnitude: float = 20.0
    release: bool = False
    cutout_scale: float = 1.0


@dataclass(frozen=True)
class SemiSupervisedBottomUpConfig:
    """The bottom-up (HigherHRNet) adaptation of PoseCons / PoseDual (task
    "semi_supervised_bottom_up", `pose_core.engine.semi_supervised_bottom_up`): an extension
    the paper does not describe (spec §3.11). Method, weights, cutout count and affine come from
    the `semi_supervised` section.

    Attributes:
        num_labeled_images: labeled subset = the first N images (JSON `images` order) holding a
            trained person (0 = all); `semi_supervised.num_labels` (person instances) must be 0.
        peaks_per_joint: teacher peaks kept per joint channel (top-k after 3x3 max-pool NMS)
            as Joint Cutout candidates; `semi_supervised.joint_cutout` rectangles are drawn per
            estimated person (the most peaks any channel keeps).
        peak_threshold: a teacher peak is a cutout candidate when its heatmap value reaches
            this (an untrained teacher proposes none).
    """

    num_labeled_images: int = 0
    peaks_per_joint: int = 5
    peak_threshold: float = 0.1


@dataclass(frozen=True)
class LossConfig:
    """Loss factors (official: heatmaps 1.0 per resolution, AE push/pull 1e-3, 'exp' push).

    Attributes:
        heatmap_factors: one weight per output resolution.
        push_factor / pull_factor: AE loss weights (1/4 resolution only).
        ae_loss_type: "exp" (official yaml) or "max".
        scale_factor / scale_beta / focal / focal_gamma / scale_adaptive / zero_tag_guard:
            Coupled Embedding only (task "coupled_embedding",
            `pose_core.losses.coupled_embedding.CoupledEmbeddingLossConfig`): coupling-loss
            weight (release 1e-4; 0 = off), beta of the scale-wise targets (0.40 COCO, 0.55
            CrowdPose), the focal-like weight and its gamma, scale-adapted (True) or
            fixed-sigma (False) targets, and the zero-tag guard ("fixed_sigma" or "release").
        offset_factors / centre_weight: Double Embedding only (task "double_embedding"):
            Smooth-L1 offset weight per resolution (release 2.0 COCO W32-512, 1.0 otherwise)
            and the centre heatmap's weight (5).
        flip_tag_teacher / flip_tag_teacher_model / flip_tag_factor: bottom-up models with two
            tag values per joint only (an experiment, `pose_core.losses.flip_tag_distillation`):
            weights of a frozen teacher whose mirrored-pass tags the second value learns, its
            model name, and the term's weight ('' = off).
    """

    heatmap_factors: tuple[float, ...] = (1.0, 1.0)
    push_factor: float = 0.001
    pull_factor: float = 0.001
    ae_loss_type: Literal["exp", "max"] = "exp"
    scale_factor: float = 1e-4
    scale_beta: float = 0.40
    focal: bool = True
    focal_gamma: float = 0.01
    scale_adaptive: bool = True
    zero_tag_guard: Literal["fixed_sigma", "release"] = "fixed_sigma"
    offset_factors: tuple[float, ...] = (2.0, 2.0)
    centre_weight: float = 5.0
    flip_tag_teacher: str = ""
    flip_tag_teacher_model: str = "higherhrnet_lite_w16_256_coco"
    flip_tag_factor: float = 0.003


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and LR schedule (official: Adam 1e-3, MultiStepLR [200, 260] x0.1 per epoch).

    Attributes:
        optimizer: "adam" or "adamw".
        lr: base learning rate.
        weight_decay: passed to the optimiser (official configs list 1e-4 but never pass it to
            Adam, so the faithful value is 0).
        lr_milestones: epochs at which the LR is multiplied by `lr_gamma`.
        lr_gamma: MultiStepLR factor.
        warmup_iters: linear warm-up length in iterations (0 = none).
        warmup_factor: LR multiplier at iteration 0 of the warm-up.
        grad_clip_norm: clip the total gradient norm to this value (0 = no clipping).
    """

    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = 0.001
    weight_decay: float = 0.0
    lr_milestones: tuple[int, ...] = (200, 260)
    lr_gamma: float = 0.1
    warmup_iters: int = 0
    warmup_factor: float = 0.001
    grad_clip_norm: float = 0.0


@dataclass(frozen=True)
class ValidationConfig:
    """Validation AP during training (same grouping + evaluator as real models).

    Attributes:
        every_epochs: validate after every N epochs (0 = never; the final epoch always is,
            unless 0).
        metric: key of the evaluator's result used for best-model tracking.
        flip_test: evaluate with horizontal flip test.
        detection_threshold / tag_threshold / max_people / adjust / refine: the `GroupingParams`
            fields of the same names (same defaults); `grouping_params()` gives the record.
        dem_mode: Double Embedding models only: decoder mode ("paper" or "release").
    """

    every_epochs: int = 10
    metric: str = "AP"
    flip_test: bool = True
    detection_threshold: float = GROUPING_DEFAULTS.detection_threshold
    tag_threshold: float = GROUPING_DEFAULTS.tag_threshold
    max_people: int = GROUPING_DEFAULTS.max_people
    adjust: bool = GROUPING_DEFAULTS.adjust
    refine: bool = GROUPING_DEFAULTS.refine
    dem_mode: Literal["paper", "release"] = "paper"

    def grouping_params(self) -> GroupingParams:
        """The grouping options as one record (the other fields at their defaults)."""
        return grouping_params_from(self)


@dataclass(frozen=True)
class TrainConfig:
    """One training experiment.

    Attributes:
        name: experiment name (the default run directory is `runs/<name>`).
        task: "bottom_up" (HigherHRNet), "top_down" (HRNet) or a method's own task (a key of
            `engine.tasks.TASKS`).
        model / codec / data / loss / optim / validation / semi_supervised /
            semi_supervised_bottom_up: the sub-configs.
        epochs: number of epochs.
        batch_size: images per process (official IMAGES_PER_GPU).
        amp: mixed precision: "none", "fp16" (with GradScaler) or "bf16".
        seed: base random seed (each rank adds its rank).
        device: "auto" (cuda when available), "cpu" or "cuda".
        num_threads: torch intra-op threads (0 = leave torch's default).
        channels_last: run the model in channels-last memory format (faster convolutions on
            CPU with oneDNN and on tensor cores; numerics change only by float rounding).
        max_minutes: stop cleanly after this much wall time with a final checkpoint and
            validation (0 = no limit).
        max_steps_per_epoch: cap on iterations per epoch (0 = the whole loader).
        log_every: log scalars every N iterations.
        output_dir: run directory ("" = `runs/<name>`).
        keep_checkpoints: how many epoch checkpoints to keep besides `last.pt`/`best.pt`.
    """

    name: str
    model: ModelConfig
    task: Literal[
        "bottom_up", "top_down", "coupled_embedding", "double_embedding", "semi_supervised",
        "semi_supervised_bottom_up",
    ] = "bottom_up"
    codec: CodecConfig = field(default_factory=CodecConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    semi_supervised: SemiSupervisedConfig = field(default_factory=SemiSupervisedConfig)
    semi_supervised_bottom_up: SemiSupervisedBottomUpConfig = field(
        default_factory=SemiSupervisedBottomUpConfig)
    epochs: int = 300
    batch_size: int = 12
    amp: Literal["none", "fp16", "bf16"] = "none"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int = 0
    channels_last: bool = False
    max_minutes: float = 0.0
    max_steps_per_epoch: int = 0
    log_every: int = 20
    output_dir: str = ""
    keep_checkpoints: int = 1


# --------------------------------------------------------------------------------------------
# strict conversion


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Checks and converts one YAML value to the annotated type (raises ConfigError)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    where = f"{source}: key '{key}'"
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key, source)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{where}: {value!r} does not match {_type_name(tp)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            # a scalar where a tuple is expected (e.g. input_size: 512)
            value = [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _from_mapping(tp, value, key, source)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {_type_name(tp)}")


def _from_mapping(cls: type, data: Mapping[str, Any], prefix: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(
                f"{source}: unknown key '{dotted}' (allowed in "
                f"{prefix or 'the top level'}: {', '.join(sorted(fields))})"
            )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], dotted, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{source}: missing required key '{dotted}'")
    return cls(**kwargs)


def from_dict(data: Mapping[str, Any], source: str = "<dict>") -> TrainConfig:
    """Builds a `TrainConfig` from plain data, rejecting unknown keys and wrong types.

    Args:
        data: the parsed YAML mapping.
        source: name used in error messages (the file path).

    Raises:
        ConfigError: naming `source` and the dotted key.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping")
    return _from_mapping(TrainConfig, data, "", source)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Splits `optim.lr=0.001` into (["optim", "lr"], 0.001); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    path = key.strip().split(".")
    if not all(path):
        raise ConfigError(f"override {text!r}: empty key component")
    return path, yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Returns a deep copy of `data` with each `a.b.c=value` override set (unknown keys are
    caught later by `from_dict`)."""
    import copy

    result = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return result


def load_config(path: str | pathlib.Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Reads a YAML experiment file, applies `key=value` overrides and validates it strictly."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    with path.open("r", encoding="utf-8") as stream:
        try:
            data = yaml.safe_load(stream) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: invalid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    source = str(path) if not overrides else f"{path} (with overrides {list(overrides)})"
    return from_dict(apply_overrides(data, overrides), source=source)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-data form (tuples become lists) suitable for YAML / checkpoints."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(config))


def to_yaml(config: TrainConfig, path: str | pathlib.Path | None = None) -> str:
    """Dumps the resolved config as YAML text; also writes it to `path` when given."""
    text = yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None)
    if path is not None:
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return text
