"""FP32 ONNX -> FP16 ONNX with FP32 input/outputs, for TensorRT 11's strongly typed networks.

TensorRT 11 has no FP16 builder flag: a network runs in the types its ONNX states. This writes
the exported graph with float16 weights and activations, with
- the input `image` still float32 (a Cast to float16 after it),
- every output still float32 (a Cast after the float16 producer),
- the nodes that write the outputs named in `keep_fp32` (the tag output `output_0` by default:
  HRNet-style tag values lose the grouping margin in FP16) computed in float32 from a Cast of
  their float16 input, with their float32 weights,
- `Resize` scales and other shape inputs untouched (they must stay float32 / int64).
The metadata gains `pose_ros.fp16 = "true"` (the engine builder checks it).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FP16_MARK", "convert_to_fp16"]

FP16_MARK = "pose_ros.fp16"
# (op type, input index) pairs that are shapes / scales / indices, never converted
_KEEP_INPUTS = {("Resize", 1), ("Resize", 2), ("Resize", 3), ("Slice", 1), ("Slice", 2),
                ("Slice", 3), ("Slice", 4), ("Reshape", 1)}


def _float_constants(graph: Any) -> dict[str, Any]:
    """Name -> TensorProto of the float32 initializers and Constant-node values."""
    from onnx import TensorProto

    found = {i.name: i for i in graph.initializer if i.data_type == TensorProto.FLOAT}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute[0].t.data_type == TensorProto.FLOAT:
            found[node.output[0]] = node.attribute[0].t
    return found


def convert_to_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                    keep_fp32: Sequence[str] = ("output_0",)) -> Path:
    """Write the FP16 form of `src` to `dst` (see the module docstring); returns `dst`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    outputs = [o.name for o in graph.output]
    kept_nodes = {i for i, n in enumerate(graph.node) if any(o in keep_fp32 for o in n.output)}
    constants = _float_constants(graph)
    to_half: set[str] = set()
    stays_float: set[str] = set()
    for index, node in enumerate(graph.node):
        for slot, name in enumerate(node.input):
            if name not in constants:
                continue
            if index in kept_nodes or (node.op_type, slot) in _KEEP_INPUTS:
                stays_float.add(name)
            else:
                to_half.add(name)
    if to_half & stays_float:
        shared = sorted(to_half & stays_float)
        raise ValueError(f"constants used both as fp16 data and as fp32: {shared}")
    for name in to_half:
        tensor = constants[name]
        tensor.CopyFrom(numpy_helper.from_array(
            numpy_helper.to_array(tensor).astype(np.float16), tensor.name))
    input_name = graph.input[0].name
    half_input = f"{input_name}_fp16"
    new_nodes = [helper.make_node("Cast", [input_name], [half_input], to=TensorProto.FLOAT16,
                                  name="cast_input_fp16")]
    for index, node in enumerate(graph.node):
        for slot, name in enumerate(node.input):
            if name == input_name:
                node.input[slot] = half_input
            elif name in outputs:  # a graph output also feeds later layers: its fp16 form
                node.input[slot] = f"{name}_fp16"
        if index in kept_nodes:
            data = node.input[0]
            cast = f"{data}_fp32"
            new_nodes.append(helper.make_node("Cast", [data], [cast], to=TensorProto.FLOAT,
                                              name=f"cast_{node.name}_fp32"))
            node.input[0] = cast
            new_nodes.append(node)
            new_nodes.extend(
                helper.make_node("Cast", [name], [f"{name}_fp16"], to=TensorProto.FLOAT16,
                                 name=f"cast_{name}_fp16")
                for name in node.output if name in outputs
            )
            continue
        for slot, name in enumerate(node.output):
            if name in outputs:
                node.output[slot] = f"{name}_fp16"
        new_nodes.append(node)
    for name in outputs:
        if name not in keep_fp32:
            new_nodes.append(helper.make_node("Cast", [f"{name}_fp16"], [name],
                                              to=TensorProto.FLOAT, name=f"cast_{name}_fp32"))
    new_nodes = [copy.deepcopy(node) for node in new_nodes]  # detached before the clear
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.value_info[:]
    model.metadata_props.add(key=FP16_MARK, value="true")
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model, full_check=True)
    path = Path(dst)
    onnx.save(model, str(path))
    return path
