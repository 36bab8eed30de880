"""Deterministic official-format weights (shared/reference/parity/README.md §1), for tests.

`official_state_dict(keys_json_path, seed)` rebuilds, bit for bit, the weights the parity
fixtures were made with. The same rule on any model's official key order (`key_manifest(model)`)
gives that model's weights. Also builds the other official file layouts: the fp16 wrapper
(`fp16_wrapper_state_dict`) and the training checkpoint (`training_checkpoint`).

Import from tests in test/core as `from official_weights import ...` (pytest puts this folder on
the import path because it has no `__init__.py`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn

__all__ = [
    "REFERENCE_DIR",
    "PARITY_DIR",
    "key_manifest",
    "official_state_dict",
    "state_dict_sha256",
    "is_batchnorm_entry",
    "fp16_wrapper_state_dict",
    "fp16_round",
    "training_checkpoint",
]

_REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The shared reference lives beside the checkout (../shared) or inside it (shared/).
REFERENCE_DIR = next(
    (
        candidate
        for candidate in (
            os.path.join(_REPO_ROOT, "shared", "reference"),
            os.path.join(_REPO_ROOT, "..", "shared", "reference"),
        )
        if os.path.isdir(candidate)
    ),
    os.path.join(_REPO_ROOT, "..", "shared", "reference"),
)
PARITY_DIR = os.path.join(REFERENCE_DIR, "parity")

_DTYPES = {"float32": torch.float32, "int64": torch.int64, "float16": torch.float16}

Manifest = Mapping[str, Mapping[str, object]]


def key_manifest(model: nn.Module) -> OrderedDict[str, dict[str, object]]:
    """`{key: {"shape": [...], "dtype": "float32"|"int64"}}` in state_dict order."""
    return OrderedDict(
        (k, {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")})
        for k, v in model.state_dict().items()
    )


def _load_manifest(keys: str | os.PathLike[str] | Manifest) -> Manifest:
    if isinstance(keys, Mapping):
        return keys
    with open(keys, encoding="utf-8") as handle:
        return json.load(handle, object_pairs_hook=OrderedDict)


def official_state_dict(
    keys_json_path: str | os.PathLike[str] | Manifest, seed: int
) -> OrderedDict[str, torch.Tensor]:
    """Apply the README §1 weight-fill rule to a key manifest (a JSON path or a mapping)."""
    manifest = _load_manifest(keys_json_path)
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, meta in manifest.items():
        shape = [int(s) for s in meta["shape"]]  # type: ignore[union-attr]
        if name.endswith("num_batches_tracked"):
            tensor = torch.zeros(shape, dtype=torch.int64)
        elif name.endswith("running_mean"):
            tensor = torch.randn(shape, generator=generator) * 0.1
        elif name.endswith("running_var"):
            tensor = torch.rand(shape, generator=generator) + 0.5
        elif len(shape) >= 2:
            fan = math.prod(shape) // shape[0]
            tensor = torch.randn(shape, generator=generator) * (0.5 / math.sqrt(fan))
        elif name.endswith(".weight"):
            tensor = torch.randn(shape, generator=generator) * 0.1 + 1.0
        elif name.endswith(".bias"):
            tensor = torch.randn(shape, generator=generator) * 0.1
        else:
            raise ValueError(f"no fill rule for {name!r} with shape {shape}")
        out[name] = tensor.to(_DTYPES[str(meta["dtype"])])
    return out


def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of the raw little-endian bytes of every tensor, in key order."""
    digest = hashlib.sha256()
    for tensor in state_dict.values():
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


def is_batchnorm_entry(key: str, state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for tensors of a BatchNorm module (its module also has a `running_mean`)."""
    module = key.rsplit(".", 1)[0]
    return f"{module}.running_mean" in state_dict


def fp16_round(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """The numbers of the fp16 wrapper file, widened back: non-BN floats rounded via float16."""
    return OrderedDict(
        (k, v.half().float() if v.is_floating_point() and not is_batchnorm_entry(k, state_dict)
         else v.clone())
        for k, v in state_dict.items()
    )


def fp16_wrapper_state_dict(
    state_dict: Mapping[str, torch.Tensor],
) -> OrderedDict[str, torch.Tensor]:
    """Official fp16 wrapper layout: keys prefixed `1.`, non-BN floating tensors as float16."""
    return OrderedDict(
        (f"1.{k}", v.half() if v.is_floating_point() and not is_batchnorm_entry(k, state_dict)
         else v.clone())
        for k, v in state_dict.items()
    )


def training_checkpoint(state_dict: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict:
    """Official HigherHRNet trainer `checkpoint.pth.tar` layout (`model` is a string)."""
    return {
        "epoch": 3,
        "model": "pose_higher_hrnet",
        "state_dict": OrderedDict((prefix + k, v) for k, v in state_dict.items()),
        "best_state_dict": OrderedDict(state_dict),
        "perf": 0.123,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "params": [0, 1]}]},
    }
