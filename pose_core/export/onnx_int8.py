"""FP32 ONNX -> INT8 ONNX for ONNX Runtime on the CPU (static quantization, QDQ format).

`quantize_int8(src, dst, calibration)` writes the exported graph with its convolutions, residual
additions and ReLUs quantized by onnxruntime's own `quantize_static`:
- weights int8 per output channel, activations uint8 per tensor with MinMax ranges observed on
  `calibration` (normalised network inputs, (N, 3, h, w) float32 arrays);
- the convolutions that write the graph's outputs (heatmaps, tags) stay float32: the tag values
  carry the grouping's margins, and these 1x1 layers cost little;
- input and outputs stay float32; the metadata of `src` is kept and gains
  `pose_ros.int8 = "true"` and `pose_ros.int8_calibration` (what the ranges were observed on).

`synthetic_calibration(info, image_wh)` gives the default calibration batches: frames of the
package's synthetic world, warped and normalised as the estimator does. They suit the shipped
synthetic model; for official checkpoints pass frames of the user's own cameras
(`pose-export onnx --precision int8 --calibration-images DIR`). Accuracy and speed of the shipped
model in int8: docs/deployment.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["INT8_MARK", "INT8_RECIPE", "quantize_int8", "synthetic_calibration",
           "calibration_from_images"]

INT8_MARK = "pose_ros.int8"
# the residual Adds (and their ReLUs) in int8 too: fewer quantize / dequantize pairs around
# them than with Conv alone, a faster graph (docs/deployment.md, "INT8 on the CPU")
QUANTIZED_OPS = ("Conv", "Add", "Relu")
# changes whenever the quantization recipe does (it is part of the int8 cache key)
INT8_RECIPE = "qdq-conv-add-relu-minmax-perchannel-outputs-fp32-v1"


def quantize_int8(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    calibration: Iterable[np.ndarray],
    calibration_name: str = "user frames",
) -> Path:
    """Write the INT8 form of `src` to `dst` (see the module docstring); returns `dst`."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = [np.ascontiguousarray(b, dtype=np.float32) for b in calibration]
    if not batches:
        raise ValueError("int8 quantization needs at least one calibration batch")
    for batch in batches:
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"calibration batches must be (N, 3, h, w), got {batch.shape}")
    model = onnx.load(str(src))
    input_name = model.graph.input[0].name
    outputs = {o.name for o in model.graph.output}
    keep_float = [n.name for n in model.graph.node if any(o in outputs for o in n.output)]
    props = {p.key: p.value for p in model.metadata_props}

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent) as folder:
        prepared = Path(folder) / "prepared.onnx"
        quantized = Path(folder) / "quantized.onnx"
        # symbolic shape inference cannot follow the dynamic Resize sizes; ONNX's own does
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(quantized), _Reader(), quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=keep_float,
            calibrate_method=CalibrationMethod.MinMax,
        )
        result = onnx.load(str(quantized))
        del result.metadata_props[:]
        props.update({INT8_MARK: "true", f"{INT8_MARK}_calibration": calibration_name,
                      f"{INT8_MARK}_recipe": INT8_RECIPE})
        for key, value in props.items():
            entry = result.metadata_props.add()
            entry.key, entry.value = key, value
        partial = Path(folder) / "out.onnx"
        onnx.save(result, str(partial))
        os.replace(partial, dst)
    return dst


def _normalised(image_bgr: np.ndarray, info: Any, input_size: int) -> np.ndarray:
    from pose_core.inference.preprocess import bottom_up_input

    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    return bottom_up_input(rgb, input_size, 1.0, 1.0, info.mean, info.std).tensor.numpy()


def synthetic_calibration(
    info: Any, image_wh: tuple[int, int] = (640, 480), frames: int = 48, seed: int = 4242,
    input_size: int | None = None,
) -> list[np.ndarray]:
    """`frames` synthetic-world frames (4 walkers, `image_wh`, every 8th frame of a clip) as
    one-image network inputs at the model's bottom-up input size (short side)."""
    from pose_core.data.synthetic import SyntheticVideo

    video = SyntheticVideo(image_wh[0], image_wh[1], 4, fps=10.0, seed=seed)
    size = int(input_size or min(info.input_size))
    return [_normalised(video.frame(8 * i).image_bgr, info, size) for i in range(frames)]


def calibration_from_images(
    info: Any, paths: Sequence[str | os.PathLike[str]], input_size: int | None = None
) -> list[np.ndarray]:
    """Network inputs of image files (each warped and normalised as the estimator does)."""
    import cv2

    size = int(input_size or min(info.input_size))
    batches = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"calibration image {path} cannot be read")
        batches.append(_normalised(image, info, size))
    if not batches:
        raise ValueError("no calibration images given")
    return batches
