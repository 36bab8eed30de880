"""A cache of exported ONNX files, keyed by what the file depends on.

`cached_onnx(model_name, checkpoint, ...)` returns `<cache_dir>/<model>-<key>.onnx`, exporting it
first when absent or unreadable. The key is the SHA-256 of: model name, checkpoint SHA-256, flip
folding, opset, the metadata version and the torch version (the exporter); with
`precision="int8"` also the quantization recipe (`onnx_int8.INT8_RECIPE`): the int8 file is
quantized from the fp32 one, calibrated on synthetic-world frames (`synthetic_calibration`). A cached file is
reused only when its stored metadata matches the model and checkpoint; otherwise it is exported
again (a truncated or foreign file in the cache is replaced, never run).

Cache folder: `$POSE_ROS_CACHE_DIR/onnx`, else `$XDG_CACHE_HOME/pose_ros/onnx`, else
`~/.cache/pose_ros/onnx`.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch

from pose_core.export.metadata import METADATA_VERSION, MetadataMismatch, file_sha256
from pose_core.export.onnx_export import DEFAULT_OPSET, export_onnx, onnx_metadata

__all__ = ["cache_key", "cached_onnx", "default_cache_dir", "engine_cache_path"]


def default_cache_dir() -> Path:
    """Where exported files are kept (see the module docstring)."""
    if os.environ.get("POSE_ROS_CACHE_DIR"):
        return Path(os.environ["POSE_ROS_CACHE_DIR"]) / "onnx"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pose_ros" / "onnx"


def cache_key(model_name: str, checkpoint_sha256: str, *, flip_folded: bool, opset: int,
              precision: str = "fp32") -> str:
    """16 hex digits naming one export (model, weights, export options, exporter version)."""
    from pose_core.export.onnx_int8 import INT8_RECIPE

    fields = {
        "model": model_name, "checkpoint": checkpoint_sha256, "flip_folded": bool(flip_folded),
        "opset": int(opset), "metadata": METADATA_VERSION, "torch": torch.__version__,
    }
    if precision != "fp32":  # fp32 keys stay those of the files already cached
        fields.update(precision=precision, recipe=INT8_RECIPE)
    text = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_onnx(
    model_name: str,
    checkpoint: str | os.PathLike[str],
    *,
    flip_folded: bool = False,
    opset: int = DEFAULT_OPSET,
    cache_dir: str | os.PathLike[str] | None = None,
    precision: str = "fp32",
) -> Path:
    """Path of a checked ONNX export of `model_name` with `checkpoint` (exported if needed);
    `precision`: "fp32" or "int8" (quantized from the fp32 export, see the module docstring)."""
    from pose_core.export.onnx_int8 import INT8_MARK, quantize_int8, synthetic_calibration
    from pose_core.models import model_info

    if precision not in ("fp32", "int8"):
        raise ValueError(f"ONNX cache precision must be fp32 or int8, got {precision!r}")
    info = model_info(model_name)
    checkpoint_hash = file_sha256(checkpoint)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(model_name, checkpoint_hash, flip_folded=flip_folded, opset=opset,
                    precision=precision)
    path = folder / (f"{model_name}-{key}.onnx" if precision == "fp32"
                     else f"{model_name}-{precision}-{key}.onnx")
    if path.is_file():
        try:
            metadata = onnx_metadata(path)
            metadata.check_matches(info, checkpoint_hash, source=str(path))
            is_int8 = _props(path).get(INT8_MARK) == "true"
            if (metadata.flip_folded == flip_folded and metadata.opset == opset
                    and is_int8 == (precision == "int8")):
                return path
        except MetadataMismatch:
            pass  # another model / weights / version under this name: exported again below
        except Exception:  # noqa: BLE001 - a truncated file fails in protobuf's own errors
            pass
    if precision == "int8":
        from pose_core.default_model import DEFAULT_MODEL

        if model_name != DEFAULT_MODEL:
            warnings.warn(
                f"int8 graph of {model_name}: activation ranges observed on synthetic-world "
                "frames; for real cameras write one calibrated on your frames (pose-export "
                "onnx --precision int8 --calibration-images DIR) and run it with onnx_path",
                stacklevel=2)
        source = cached_onnx(model_name, checkpoint, flip_folded=flip_folded, opset=opset,
                             cache_dir=folder)
        return quantize_int8(source, path, synthetic_calibration(info),
                             calibration_name="synthetic world, 48 frames 640x480, seed 4242")
    export_onnx(model_name, checkpoint, path, flip_folded=flip_folded, opset=opset)
    return path


def _props(path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def engine_cache_path(
    model_name: str,
    checkpoint: str | os.PathLike[str],
    precision: str,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Where the TensorRT engine of a model, checkpoint and precision is looked for (and built
    with `engine_policy: rebuild`): `<cache>/tensorrt/<model>-<precision>-<key>.engine`."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(model_name, file_sha256(checkpoint), flip_folded=False, opset=DEFAULT_OPSET)
    return folder / "tensorrt" / f"{model_name}-{precision}-{key}.engine"
