"""Model name + checkpoint -> ONNX file that ONNX Runtime and the TensorRT 10/11 parsers read.

Graph: input `image` (N, 3, H, W) float32 (`metadata.INPUT_LAYOUT`) with dynamic N, H and W
(multiples of 64 for the bottom-up HigherHRNet: the 1/32 branch and its 2x, 4x, 8x nearest
upsamplings then meet exactly; multiples of 32 for top-down HRNet); outputs `output_0`,
`output_1`, ... as `ModelInfo.head` describes, with dynamic N, h, w.

Choices made for TensorRT:
- opset 17 (`DEFAULT_OPSET`), written by the TorchScript exporter: parsed by TensorRT 8.6, 10
  and 11 (their ONNX parsers cover opsets 9 to 20+) and by ONNX Runtime;
- every upsampling is a `Resize` whose `scales` is a constant (the HRNet fuse layers'
  `nn.Upsample(scale_factor=2**k)`), never sizes computed from `Shape` ops at run time;
  `check_resize_scales` refuses a graph that has any other kind;
- with `flip_folded` the mirror pass is part of the graph: (N, 3, H, W) -> outputs of 2N rows,
  the N normal passes then the N mirrored ones (`torch.flip` along W -> a negative-step Slice).

Before the file is written the graph passes `onnx.checker` and ONNX Runtime (CPU) reproduces
the PyTorch outputs within `atol` at the check size(s) (`check_against_torch`).
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pose_core.export.metadata import OnnxMetadata, file_sha256

__all__ = [
    "DEFAULT_OPSET",
    "ExportResult",
    "FlipFoldedNetwork",
    "check_against_torch",
    "check_resize_scales",
    "export_onnx",
    "load_network",
    "onnx_metadata",
    "size_multiple_of",
]

DEFAULT_OPSET = 17
INPUT_NAME = "image"


class FlipFoldedNetwork(nn.Module):
    """`network(cat(x, mirror(x)))` as one module: outputs hold 2N rows (normal, mirrored)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    def forward(self, batch: torch.Tensor) -> list[torch.Tensor] | torch.Tensor:
        return self.network(torch.cat((batch, torch.flip(batch, dims=[3])), dim=0))


@dataclass(frozen=True)
class ExportResult:
    """What `export_onnx` wrote and how closely ONNX Runtime matched PyTorch."""

    path: Path
    metadata: OnnxMetadata
    max_abs_error: float
    checked_sizes_wh: tuple[tuple[int, int], ...]


def size_multiple_of(family: str) -> int:
    """Input sides must be multiples of this (bottom-up 64, top-down 32)."""
    return 64 if family == "higherhrnet" else 32


def load_network(model_name: str, checkpoint: str | os.PathLike[str]) -> nn.Module:
    """The registered network with the checkpoint's weights, in eval mode, float32, CPU."""
    from pose_core.models import build_model
    from pose_core.models.checkpoint import load_checkpoint

    network = build_model(model_name)
    load_checkpoint(network, checkpoint)
    return network.eval().float()


def _output_names(num_outputs: int) -> list[str]:
    return [f"output_{i}" for i in range(num_outputs)]


def _export_bytes(network: nn.Module, size_wh: tuple[int, int], num_outputs: int,
                  opset: int) -> bytes:
    """TorchScript-exporter ONNX bytes with dynamic batch / height / width."""
    names = _output_names(num_outputs)
    dynamic = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
    for name in names:
        dynamic[name] = {0: "batch_out", 2: f"{name}_height", 3: f"{name}_width"}
    buffer = io.BytesIO()
    example = torch.zeros(1, 3, size_wh[1], size_wh[0])
    network.eval()  # the exporter restores the module's mode afterwards: eval in, eval out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        torch.onnx.export(
            network, (example,), buffer, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=names, dynamic_axes=dynamic,
            do_constant_folding=True,
        )
    return buffer.getvalue()


def check_resize_scales(model: object) -> int:
    """Number of `Resize` nodes; ValueError unless each takes constant `scales` and no `sizes`."""
    graph = model.graph  # type: ignore[attr-defined]
    constants = {i.name for i in graph.initializer}
    constants |= {o for node in graph.node if node.op_type == "Constant" for o in node.output}
    resizes = [node for node in graph.node if node.op_type == "Resize"]
    for node in resizes:
        scales = node.input[2] if len(node.input) > 2 else ""
        sizes = node.input[3] if len(node.input) > 3 else ""
        if sizes or not scales or scales not in constants:
            raise ValueError(
                f"Resize node {node.name!r} does not use constant scales (inputs "
                f"{list(node.input)}); TensorRT needs explicit scales or sizes"
            )
    return len(resizes)


def check_against_torch(
    onnx_bytes: bytes,
    network: nn.Module,
    sizes_wh: Sequence[tuple[int, int]],
    atol: float,
    batch: int = 1,
    seed: int = 0,
) -> float:
    """Run both on the same random inputs; ValueError when an output differs by more than atol.

    Returns the largest absolute difference over every output and size.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    worst = 0.0
    for width, height in sizes_wh:
        image = torch.randn(batch, 3, height, width, generator=generator)
        with torch.inference_mode():
            expected = network(image)
        if isinstance(expected, torch.Tensor):
            expected = [expected]
        got = session.run(None, {INPUT_NAME: image.numpy()})
        if len(got) != len(expected):
            raise ValueError(f"ONNX graph has {len(got)} outputs, PyTorch {len(expected)}")
        for i, (ours, reference) in enumerate(zip(got, expected)):
            reference = reference.numpy()
            if ours.shape != reference.shape:
                raise ValueError(f"output {i} at {width}x{height}: ONNX shape {ours.shape}, "
                                 f"PyTorch {reference.shape}")
            error = float(np.max(np.abs(ours - reference)))
            worst = max(worst, error)
            if not error <= atol:
                raise ValueError(f"output {i} at {width}x{height}: ONNX Runtime differs from "
                                 f"PyTorch by {error:.3g} > {atol:g}")
    return worst


def onnx_metadata(path: str | os.PathLike[str]) -> OnnxMetadata:
    """The `OnnxMetadata` stored in an ONNX file (MetadataMismatch when it has none)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    return OnnxMetadata.from_props(props, source=str(path))


def export_onnx(
    model_name: str,
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    flip_folded: bool = False,
    opset: int = DEFAULT_OPSET,
    check_sizes_wh: Sequence[tuple[int, int]] | None = None,
    atol: float = 1e-4,
) -> ExportResult:
    """Export, check (onnx.checker, constant Resize scales, ONNX Runtime vs PyTorch) and write.

    Args:
        model_name: registered model name.
        checkpoint: weights file (`load_checkpoint` formats).
        out: ONNX path to write (written atomically, only after every check passed).
        flip_folded: put the mirror pass into the graph (outputs of 2N rows).
        opset: ONNX opset.
        check_sizes_wh: input sizes of the ONNX Runtime check; default: the model's input
            size and a non-square size (w + one size multiple, h).
        atol: largest absolute output difference accepted.
    """
    import onnx

    from pose_core.models import model_info

    info = model_info(model_name)
    multiple = size_multiple_of(info.family)
    width, height = info.input_size
    if check_sizes_wh is None:
        check_sizes_wh = ((width, height), (width + multiple, height))
    for w, h in check_sizes_wh:
        if w % multiple or h % multiple:
            raise ValueError(f"check size {w}x{h} is not a multiple of {multiple}")
    network = load_network(model_name, checkpoint)
    exported: nn.Module = (FlipFoldedNetwork(network) if flip_folded else network).eval()
    num_outputs = info.head_layout.num_outputs
    model = onnx.load_from_string(_export_bytes(exported, (width, height), num_outputs, opset))
    metadata = OnnxMetadata.for_model(info, file_sha256(checkpoint), flip_folded=flip_folded,
                                      opset=opset, size_multiple=multiple)
    for key, value in metadata.to_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    check_resize_scales(model)
    data = model.SerializeToString()
    worst = check_against_torch(data, exported, check_sizes_wh, atol)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".onnx.part", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)
    return ExportResult(path, metadata, worst, tuple(tuple(s) for s in check_sizes_wh))
