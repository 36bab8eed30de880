"""Loading official, training, fp16-wrapped, mmpose-style and ImageNet-backbone checkpoints.

Pipeline (`load_checkpoint`): read safely (`torch.load(weights_only=True)`, never executing
pickled code) -> `unwrap_state_dict` (raw mapping, or `state_dict` / `best_state_dict` /
`model` holding a mapping of tensors) -> `strip_prefix` (`module.1.`, `module.`, `1.`) ->
`detect_format` + explicit table-driven converters (mmpose `backbone.` / `keypoint_head.` /
`head.` -> official names) -> fp16 widened to fp32 -> `load_strict`, which raises a
`CheckpointError` naming the missing, unexpected and wrongly-shaped keys.

Official facts (HigherHRNet `tools/dist_train.py` / `lib/utils/utils.py::save_checkpoint`,
`tools/valid.py`): released 512 models are plain fp32 state_dicts; the official
training `checkpoint.pth.tar` is a dict whose `state_dict` is `module.`-prefixed and whose `model`
is a string; the `*_640` configs save through the fp16 wrapper (`1.` prefix, non-BN tensors in
float16). `num_batches_tracked` buffers are optional.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "CheckpointError",
    "LoadReport",
    "STRIPPED_PREFIXES",
    "CONTAINER_KEYS",
    "MMPOSE_PREFIX_TABLE",
    "CE_PREFIX_TABLE",
    "FORMAT_SIGNATURES",
    "TRAINING_WRAPPERS",
    "strip_training_wrapper",
    "BACKBONE_ROOTS",
    "read_checkpoint",
    "unwrap_state_dict",
    "strip_prefix",
    "detect_format",
    "convert_mmpose",
    "widen_half",
    "load_strict",
    "load_checkpoint",
    "load_backbone_checkpoint",
]

# Tried in order; a prefix is stripped only when every key carries it.
STRIPPED_PREFIXES: tuple[str, ...] = ("module.1.", "module.", "1.")
# Dict entries that may hold the state_dict, in order of preference.
CONTAINER_KEYS: tuple[str, ...] = ("state_dict", "best_state_dict", "model")
# mmpose (0.x and 1.x) top-level prefixes -> official names (the module names below are equal).
MMPOSE_PREFIX_TABLE: tuple[tuple[str, str], ...] = (
    ("backbone.", ""),
    ("keypoint_head.", ""),
    ("head.", ""),
)
# Coupled Embedding release (`CR320/CoupledEmbedding` `models/poseDet.py::PoseDet`): `backbone.`
# (mmpose-style HRNet, our backbone names) and `head.` (our CE head attributes, same names).
CE_PREFIX_TABLE: tuple[tuple[str, str], ...] = (("backbone.", ""), ("head.", ""))
# format name -> a key prefix only that format's files have (checked before the others).
FORMAT_SIGNATURES: tuple[tuple[str, str], ...] = (("coupled_embedding", "head.tms_pred_layers."),)
# Official training wrappers: (prefix of the network's keys, the wrapper's non-weight entries).
# CE `models/trainer.py::Trainer` saves `net.` + the network and `ae_criterion.scale_dist`
# (the 8 scale-bin centres (k + 0.5) / 8 of the loss, not a network weight).
TRAINING_WRAPPERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("net.", ("ae_criterion.scale_dist",)),
)
# Top-level attribute names that form the HRNet backbone (stem ... stage4).
BACKBONE_ROOTS: frozenset[str] = frozenset(
    {"conv1", "bn1", "conv2", "bn2", "layer1"}
    | {f"transition{i}" for i in range(1, 4)}
    | {f"stage{i}" for i in range(2, 5)}
)
_SHOWN = 5  # keys listed per category in error messages

StateDict = dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not match the model."""


@dataclass(frozen=True)
class LoadReport:
    """What `load_checkpoint` found and did.

    Attributes:
        source: file path (or "<mapping>").
        container: dict entry the state_dict came from (None for a raw state_dict).
        stripped_prefix: key prefix removed ("module.", "1.", "module.1.") or None.
        format: "official", "mmpose", "coupled_embedding", ... (after unwrapping).
        fp16_tensors: number of float16 tensors widened to float32.
        loaded: number of state_dict entries copied into the model.
        filled_buffers: model entries absent from the file and kept (num_batches_tracked).
        skipped: file entries deliberately not loaded (backbone loading; a training
            wrapper's non-weight entries).
        not_loaded: model entries left at their initial values (backbone loading only).
    """

    source: str
    container: str | None
    stripped_prefix: str | None
    format: str
    fp16_tensors: int
    loaded: int
    filled_buffers: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    not_loaded: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        parts = [f"{self.source}: {self.loaded} tensors loaded, format {self.format}"]
        if self.container:
            parts.append(f"from entry {self.container!r}")
        if self.stripped_prefix:
            parts.append(f"prefix {self.stripped_prefix!r} stripped")
        if self.fp16_tensors:
            parts.append(f"{self.fp16_tensors} float16 tensors widened to float32")
        if self.filled_buffers:
            parts.append(f"{len(self.filled_buffers)} absent buffers kept from the model")
        if self.skipped:
            parts.append(f"{len(self.skipped)} file entries skipped")
        if self.not_loaded:
            parts.append(f"{len(self.not_loaded)} model entries left at init")
        return "; ".join(parts)


def read_checkpoint(path: str | os.PathLike[str]) -> object:
    """`torch.load(path, map_location="cpu", weights_only=True)` with clear errors.

    The restricted unpickler only rebuilds tensors and plain containers; anything else (for
    example an object whose `__reduce__` would run code) is refused without being executed.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: empty, truncated, corrupted or unsafe content.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"checkpoint {path} holds objects other than tensors and plain containers; refused "
            f"to unpickle them (weights_only=True, nothing was executed): {_first_line(error)}"
        ) from error
    except (EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupted ({size} bytes): {_first_line(error)}"
        ) from error
    except (RuntimeError, ValueError, OSError, KeyError, AttributeError, TypeError) as error:
        raise CheckpointError(
            f"checkpoint {path} could not be read; the file is corrupted, truncated or not a "
            f"PyTorch checkpoint ({size} bytes): {type(error).__name__}: {_first_line(error)}"
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _is_tensor_mapping(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def unwrap_state_dict(obj: object) -> tuple[StateDict, str | None]:
    """Find the state_dict: `obj` itself, else `obj[k]` for k in `CONTAINER_KEYS`.

    Each candidate is accepted only if it is a non-empty mapping of str -> tensor (in the
    official training checkpoint `model` is a string, and is skipped).

    Returns:
        (state_dict, container key or None).
    """
    if _is_tensor_mapping(obj):
        return dict(obj), None  # type: ignore[call-overload]
    if isinstance(obj, Mapping):
        for key in CONTAINER_KEYS:
            if key in obj and _is_tensor_mapping(obj[key]):
                return dict(obj[key]), key
        shown = ", ".join(repr(k) for k in list(obj)[:10])
        raise CheckpointError(
            "no state_dict found: the checkpoint is a dict with keys "
            f"[{shown}{', ...' if len(obj) > 10 else ''}] and none of "
            f"{list(CONTAINER_KEYS)} is a mapping of tensors"
        )
    raise CheckpointError(
        f"no state_dict found: the checkpoint holds a {type(obj).__name__}, not a dict of tensors"
    )


def strip_prefix(state_dict: StateDict) -> tuple[StateDict, str | None]:
    """Remove the first of `STRIPPED_PREFIXES` that every key carries (DataParallel, fp16)."""
    for prefix in STRIPPED_PREFIXES:
        if all(key.startswith(prefix) for key in state_dict):
            return {key[len(prefix):]: value for key, value in state_dict.items()}, prefix
    return state_dict, None


def strip_training_wrapper(
    state_dict: StateDict,
) -> tuple[StateDict, str | None, tuple[str, ...]]:
    """Unwrap an official training wrapper of `TRAINING_WRAPPERS`: when every key is either
    prefixed by its network prefix or one of its non-weight entries (and some key has the
    prefix), drop those entries and strip the prefix.

    Returns:
        (state_dict, stripped prefix or None, dropped entry names).
    """
    for prefix, extras in TRAINING_WRAPPERS:
        others = [key for key in state_dict if not key.startswith(prefix)]
        if len(others) < len(state_dict) and all(key in extras for key in others):
            stripped = {
                key[len(prefix):]: value
                for key, value in state_dict.items()
                if key.startswith(prefix)
            }
            return stripped, prefix, tuple(others)
    return state_dict, None, ()


def detect_format(state_dict: Mapping[str, torch.Tensor]) -> str:
    """"mmpose" when keys use mmpose's top-level prefixes, "semi_supervised" when every key
    is under an official PoseCons / PoseDual network (`resnet.` / `resnet2.`), else
    "official". A `FORMAT_SIGNATURES` name wins when some key has its prefix."""
    for name, signature in FORMAT_SIGNATURES:
        if any(key.startswith(signature) for key in state_dict):
            return name
    from pose_core.models.simple_baseline import is_semi_supervised_state_dict

    if is_semi_supervised_state_dict(state_dict):
        return "semi_supervised"
    prefixes = tuple(prefix for prefix, _ in MMPOSE_PREFIX_TABLE)
    if any(key.startswith(prefixes) for key in state_dict):
        return "mmpose"
    return "official"


def convert_mmpose(
    state_dict: Mapping[str, torch.Tensor],
    table: tuple[tuple[str, str], ...] = MMPOSE_PREFIX_TABLE,
) -> StateDict:
    """Rename mmpose keys (`backbone.` / `keypoint_head.` / `head.`) to the official names
    (`table`: (prefix, replacement) pairs, first match wins; `CE_PREFIX_TABLE` for the CE
    release).

    Keys matching no table prefix are kept unchanged (the strict load then reports them).
    """
    converted: StateDict = {}
    for key, value in state_dict.items():
        new_key = key
        for prefix, replacement in table:
            if key.startswith(prefix):
                new_key = replacement + key[len(prefix):]
                break
        if new_key in converted:
            raise CheckpointError(f"mmpose conversion maps two entries onto {new_key!r}")
        converted[new_key] = value
    return converted


def widen_half(state_dict: Mapping[str, torch.Tensor]) -> tuple[StateDict, int]:
    """Cast float16 / bfloat16 tensors to float32 (exactly: every such value is an fp32 value)."""
    out: StateDict = {}
    count = 0
    for key, value in state_dict.items():
        if value.dtype in (torch.float16, torch.bfloat16):
            value = value.float()
            count += 1
        out[key] = value
    return out, count


def _describe(keys: list[str], what: str) -> str:
    shown = ", ".join(keys[:_SHOWN])
    more = f", ... ({len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return f"{len(keys)} {what}: {shown}{more}"


def load_strict(
    model: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    allow_missing: frozenset[str] = frozenset(),
) -> tuple[str, ...]:
    """Copy `state_dict` into `model`, requiring equal names and shapes.

    `num_batches_tracked` buffers and the names in `allow_missing` may be absent from the file;
    they keep the model's values.

    Returns:
        the model entries that were absent and kept.

    Raises:
        CheckpointError: listing (first few, with counts) missing, unexpected and wrongly-shaped
        keys.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    kept = [k for k in missing if k.endswith("num_batches_tracked") or k in allow_missing]
    kept_set = set(kept)
    missing = [k for k in missing if k not in kept_set]
    unexpected = [k for k in state_dict if k not in own]
    wrong_shape = [
        f"{k} (file {list(v.shape)} vs model {list(own[k].shape)})"
        for k, v in state_dict.items()
        if k in own and v.shape != own[k].shape
    ]
    if missing or unexpected or wrong_shape:
        problems = []
        if missing:
            problems.append(_describe(missing, "missing keys"))
        if unexpected:
            problems.append(_describe(unexpected, "unexpected keys"))
        if wrong_shape:
            problems.append(_describe(wrong_shape, "keys with a wrong shape"))
        raise CheckpointError(
            f"checkpoint does not match {type(model).__name__} ({len(own)} entries in the model, "
            f"{len(state_dict)} in the file); is it a checkpoint of another model? "
            + "; ".join(problems)
        )
    full = dict(state_dict)
    for key in kept:
        full[key] = own[key]
    model.load_state_dict(full, strict=True)
    return tuple(kept)


def _prepare(
    source: str | os.PathLike[str] | Mapping[str, object],
) -> tuple[str, StateDict, str | None, str | None, str, int, tuple[str, ...]]:
    if isinstance(source, Mapping):
        obj: object = source
        name = "<mapping>"
    else:
        obj = read_checkpoint(source)
        name = str(source)
    state_dict, container = unwrap_state_dict(obj)
    state_dict, prefix, dropped = strip_training_wrapper(state_dict)
    if prefix is None:
        state_dict, prefix = strip_prefix(state_dict)
    fmt = detect_format(state_dict)
    if fmt == "mmpose":
        state_dict = convert_mmpose(state_dict)
    elif fmt == "coupled_embedding":
        state_dict = convert_mmpose(state_dict, CE_PREFIX_TABLE)
    elif fmt == "semi_supervised":  # network 1, as the paper evaluates
        from pose_core.models.simple_baseline import semi_supervised_state_dict

        state_dict = semi_supervised_state_dict(state_dict, network=1)
    state_dict, fp16 = widen_half(state_dict)
    return name, state_dict, container, prefix, fmt, fp16, dropped


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike[str] | Mapping[str, object]
) -> LoadReport:
    """Load a checkpoint file (or an already loaded dict) into `model` in place, strictly.

    Accepts official plain state_dicts, official training checkpoints (`state_dict` with
    `module.`), the official fp16 wrapper (`1.`, float16), both together (`module.1.`), mmpose
    checkpoints, and pose_core training checkpoints (`{"model": state_dict, ...}`).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable / unsafe file, no state_dict inside, or a key / shape
            mismatch (the message names the keys).
    """
    name, state_dict, container, prefix, fmt, fp16, dropped = _prepare(path)
    kept = load_strict(model, state_dict)
    return LoadReport(
        source=name,
        container=container,
        stripped_prefix=prefix,
        format=fmt,
        fp16_tensors=fp16,
        loaded=len(state_dict),
        filled_buffers=kept,
        skipped=dropped,
    )


def load_backbone_checkpoint(
    model: nn.Module, path: str | os.PathLike[str] | Mapping[str, object]
) -> LoadReport:
    """Initialise the HRNet backbone of `model` from an ImageNet (or other pose) checkpoint.

    Only entries under `BACKBONE_ROOTS` that exist in the model are loaded (the ImageNet files
    also hold `incre_modules`, `downsamp_modules`, the classifier `final_layer`, `classifier`
    and the multi-scale fuse layers of the last module; those are reported as skipped). Every
    backbone entry of the model must be present with the right shape; head entries keep their
    initial values and are reported in `not_loaded`.

    Raises:
        CheckpointError: as `load_checkpoint`, for the backbone part.
    """
    name, state_dict, container, prefix, fmt, fp16, dropped = _prepare(path)
    own = model.state_dict()
    not_loaded = tuple(k for k in own if k.split(".", 1)[0] not in BACKBONE_ROOTS)
    head = frozenset(not_loaded)
    selected = {k: v for k, v in state_dict.items() if k in own and k not in head}
    skipped = dropped + tuple(k for k in state_dict if k not in selected)
    kept = load_strict(model, selected, allow_missing=head)
    return LoadReport(
        source=name,
        container=container,
        stripped_prefix=prefix,
        format=fmt,
        fp16_tensors=fp16,
        loaded=len(selected),
        filled_buffers=tuple(k for k in kept if k not in head),
        skipped=skipped,
        not_loaded=not_loaded,
    )
