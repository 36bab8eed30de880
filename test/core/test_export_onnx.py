"""`pose-export onnx`: ONNX Runtime equals PyTorch (fp32, 1e-4) for HigherHRNet-W32 COCO and
CrowdPose at two input sizes (one non-square) and for the shipped model; the graph is what
TensorRT parses (opset, dynamic axes, constant Resize scales); metadata round trip and refusals.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from pose_core.default_model import DEFAULT_MODEL, default_checkpoint_path
from pose_core.export.cli import main as export_main
from pose_core.export.metadata import MetadataMismatch, OnnxMetadata, file_sha256
from pose_core.export.onnx_cache import cached_onnx
from pose_core.export.onnx_export import (
    DEFAULT_OPSET,
    check_against_torch,
    check_resize_scales,
    export_onnx,
    load_network,
    onnx_metadata,
)
from pose_core.models import build_model, model_info

SIZES_WH = ((256, 256), (384, 256))  # one square, one non-square (multiples of 64)


def seeded_checkpoint(folder: Path, name: str, seed: int = 0) -> Path:
    """A checkpoint of the registered network with seeded random weights (BN stats perturbed
    so that the normalisation is not the identity)."""
    torch.manual_seed(seed)
    model = build_model(name)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = folder / f"{name}_seed{seed}.pt"
    torch.save(model.state_dict(), path)
    return path


def _ort_vs_torch(onnx_path: Path, network: torch.nn.Module, sizes_wh, batch: int = 2) -> float:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(1)
    worst = 0.0
    for width, height in sizes_wh:
        image = torch.randn(batch, 3, height, width, generator=generator)
        with torch.inference_mode():
            expected = network(image)
        expected = [expected] if isinstance(expected, torch.Tensor) else expected
        got = session.run(None, {"image": image.numpy()})
        assert len(got) == len(expected)
        for ours, reference in zip(got, expected):
            assert ours.shape == tuple(reference.shape)
            worst = max(worst, float(np.abs(ours - reference.numpy()).max()))
    return worst


@pytest.mark.slow
@pytest.mark.parametrize("name", ["higherhrnet_w32_512_coco", "higherhrnet_w32_512_crowdpose"])
def test_w32_onnx_runtime_equals_pytorch(tmp_path: Path, name: str) -> None:
    checkpoint = seeded_checkpoint(tmp_path, name)
    result = export_onnx(name, checkpoint, tmp_path / "model.onnx", check_sizes_wh=SIZES_WH)
    network = load_network(name, checkpoint)
    worst = _ort_vs_torch(result.path, network, SIZES_WH)
    assert worst <= 1e-4
    info = model_info(name)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    channels = [out.shape[1] for out in session.get_outputs()]
    assert channels == [info.head_layout.output_channels(i) for i in range(2)]


def test_shipped_model_onnx_runtime_equals_pytorch(tmp_path: Path) -> None:
    checkpoint = default_checkpoint_path()
    result = export_onnx(DEFAULT_MODEL, checkpoint, tmp_path / "shipped.onnx",
                         check_sizes_wh=((256, 256), (320, 192)))
    worst = _ort_vs_torch(result.path, load_network(DEFAULT_MODEL, checkpoint),
                          ((256, 256), (320, 192), (448, 256)))
    assert worst <= 1e-4


def test_graph_is_what_tensorrt_parses_and_carries_metadata(tmp_path: Path) -> None:
    checkpoint = default_checkpoint_path()
    path = export_onnx(DEFAULT_MODEL, checkpoint, tmp_path / "m.onnx").path
    model = onnx.load(str(path))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [
        DEFAULT_OPSET
    ]
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]
    for output in model.graph.output:
        out_dims = output.type.tensor_type.shape.dim
        assert out_dims[0].dim_param and out_dims[2].dim_param and out_dims[3].dim_param
    assert check_resize_scales(model) > 0  # the HRNet fuse layers' upsamplings
    metadata = onnx_metadata(path)
    info = model_info(DEFAULT_MODEL)
    assert metadata.model == DEFAULT_MODEL
    assert metadata.checkpoint_sha256 == file_sha256(checkpoint)
    assert metadata.keypoint_names == info.keypoints.names
    assert metadata.head_layout == info.head_layout
    assert metadata.mean == info.mean and metadata.std == info.std
    assert metadata.size_multiple == 64 and not metadata.flip_folded
    metadata.check_matches(info, file_sha256(checkpoint))


def test_flip_folded_graph_returns_normal_then_mirrored_rows(tmp_path: Path) -> None:
    checkpoint = default_checkpoint_path()
    path = export_onnx(DEFAULT_MODEL, checkpoint, tmp_path / "flip.onnx", flip_folded=True,
                       check_sizes_wh=((256, 192),)).path
    assert onnx_metadata(path).flip_folded
    network = load_network(DEFAULT_MODEL, checkpoint)
    image = torch.randn(2, 3, 192, 320, generator=torch.Generator().manual_seed(3))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": image.numpy()})
    with torch.inference_mode():
        expected = network(torch.cat((image, torch.flip(image, dims=[3]))))
    for ours, reference in zip(got, expected):
        assert ours.shape[0] == 4
        np.testing.assert_allclose(ours, reference.numpy(), atol=1e-4, rtol=0)


def test_metadata_of_another_model_keypoints_or_weights_is_refused(tmp_path: Path) -> None:
    info = model_info("higherhrnet_w32_512_coco")
    metadata = OnnxMetadata.for_model(info, "a" * 64, flip_folded=False, opset=17,
                                      size_multiple=64)
    assert OnnxMetadata.from_props(metadata.to_props()) == metadata
    with pytest.raises(MetadataMismatch, match="keypoint_set.*coco.*crowdpose"):
        metadata.check_matches(model_info("higherhrnet_w32_512_crowdpose"), "a" * 64)
    with pytest.raises(MetadataMismatch, match="model: file has 'higherhrnet_w32_512_coco'"):
        metadata.check_matches(model_info("higherhrnet_w32_640_coco"), "a" * 64)
    with pytest.raises(MetadataMismatch, match="checkpoint_sha256"):
        metadata.check_matches(info, "b" * 64)
    with pytest.raises(MetadataMismatch, match="pose-export onnx"):
        OnnxMetadata.from_props({}, source="x.onnx")


def test_checks_refuse_wrong_graphs(tmp_path: Path) -> None:
    checkpoint = default_checkpoint_path()
    data = export_onnx(DEFAULT_MODEL, checkpoint, tmp_path / "m.onnx",
                       check_sizes_wh=((256, 256),)).path.read_bytes()
    torch.manual_seed(5)
    other = build_model(DEFAULT_MODEL).eval()
    with pytest.raises(ValueError, match="differs from PyTorch"):
        check_against_torch(data, other, ((256, 256),), atol=1e-4)
    # A Resize whose output size is computed at run time (sizes input) is refused.
    from onnx import TensorProto, helper

    node = helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2]),
                      helper.make_tensor_value_info("sizes", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    with pytest.raises(ValueError, match="constant scales"):
        check_resize_scales(helper.make_model(graph))


def test_cli_and_cache(tmp_path: Path) -> None:
    out = tmp_path / "cli.onnx"
    assert export_main(["onnx", "--model", DEFAULT_MODEL, "--out", str(out),
                        "--check-size", "256"]) == 0
    assert onnx_metadata(out).model == DEFAULT_MODEL
    assert export_main(["onnx", "--model", "higherhrnet_w32_512_coco", "--out",
                        str(tmp_path / "x.onnx")]) == 2  # no checkpoint for a random model
    checkpoint = default_checkpoint_path()
    first = cached_onnx(DEFAULT_MODEL, checkpoint, cache_dir=tmp_path / "cache")
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(DEFAULT_MODEL, checkpoint, cache_dir=tmp_path / "cache") == first
    assert first.stat().st_mtime_ns == stamp  # reused, not exported again
    folded = cached_onnx(DEFAULT_MODEL, checkpoint, flip_folded=True,
                         cache_dir=tmp_path / "cache")
    assert folded != first and onnx_metadata(folded).flip_folded
    first.write_bytes(first.read_bytes()[:1000])  # a truncated cache entry is exported again
    again = cached_onnx(DEFAULT_MODEL, checkpoint, cache_dir=tmp_path / "cache")
    assert again == first and onnx_metadata(again).model == DEFAULT_MODEL


def test_fp16_onnx_for_strongly_typed_tensorrt(tmp_path: Path) -> None:
    from pose_core.export.onnx_fp16 import FP16_MARK, convert_to_fp16

    checkpoint = default_checkpoint_path()
    fp32 = export_onnx(DEFAULT_MODEL, checkpoint, tmp_path / "m.onnx",
                       check_sizes_wh=((256, 256),)).path
    fp16 = convert_to_fp16(fp32, tmp_path / "m16.onnx")
    model = onnx.load(str(fp16))
    assert any(p.key == FP16_MARK for p in model.metadata_props)
    assert onnx_metadata(fp16).model == DEFAULT_MODEL
    float_type = onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == float_type
    assert all(o.type.tensor_type.elem_type == float_type for o in model.graph.output)
    weights = {i.name: i.data_type for i in model.graph.initializer}
    tag_conv = next(n for n in model.graph.node if "output_0" in n.output)
    assert weights[tag_conv.input[1]] == float_type  # the tag layer keeps FP32
    other_convs = [n for n in model.graph.node if n.op_type == "Conv" and n is not tag_conv
                   and "output_0" not in n.output]
    assert all(weights[n.input[1]] == onnx.TensorProto.FLOAT16 for n in other_convs)
    image = np.random.default_rng(0).standard_normal((1, 3, 256, 320)).astype(np.float32)
    reference = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    half = ort.InferenceSession(str(fp16), providers=["CPUExecutionProvider"])
    for ours, full in zip(half.run(None, {"image": image}), reference.run(None, {"image": image})):
        assert ours.dtype == np.float32
        assert np.abs(ours - full).max() <= 1e-2 * np.abs(full).max()
