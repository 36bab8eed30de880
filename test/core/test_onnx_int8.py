"""INT8 ONNX for onnxruntime: quantization, its cache, the backend option, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from pose_core import PoseEstimator
from pose_core.data.synthetic import SyntheticVideo
from pose_core.default_model import DEFAULT_MODEL, default_checkpoint_path
from pose_core.export.onnx_cache import cache_key, cached_onnx
from pose_core.export.onnx_int8 import INT8_MARK, quantize_int8, synthetic_calibration
from pose_core.inference.backend_factory import BackendOptions, build_backend
from pose_core.models import model_info

# people of the fp32 graph found again by the int8 one (shipped model, 640x480 frames)
STRONG_SCORE = 0.4
MAX_MEDIAN_SHIFT_PX = 2.0


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx_cache")


def _props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_int8_graph_quantizes_convolutions_but_keeps_the_output_layers_float(cache: Path) -> None:
    path = cached_onnx(DEFAULT_MODEL, default_checkpoint_path(), cache_dir=cache, precision="int8")
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 50
    outputs = {o.name for o in model.graph.output}
    writers = [n for n in model.graph.node if any(o in outputs for o in n.output)]
    assert writers and all(n.op_type == "Conv" for n in writers)
    # the output convolutions read float weights (no DequantizeLinear in front of them)
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    assert all(n.input[1] not in dequantized for n in writers)
    props = _props(path)
    assert props[INT8_MARK] == "true" and "synthetic" in props[f"{INT8_MARK}_calibration"]
    assert props["pose_ros.model"] == DEFAULT_MODEL  # the export's metadata is kept


def test_int8_cache_reuses_its_file_and_leaves_fp32_keys_unchanged(cache: Path) -> None:
    checkpoint = default_checkpoint_path()
    first = cached_onnx(DEFAULT_MODEL, checkpoint, cache_dir=cache, precision="int8")
    stamp = first.stat().st_mtime_ns
    again = cached_onnx(DEFAULT_MODEL, checkpoint, cache_dir=cache, precision="int8")
    assert again == first and again.stat().st_mtime_ns == stamp
    fp32 = cached_onnx(DEFAULT_MODEL, checkpoint, cache_dir=cache)
    assert fp32 != first and INT8_MARK not in _props(fp32)
    assert cache_key("m", "c", flip_folded=False, opset=17) == cache_key(
        "m", "c", flip_folded=False, opset=17, precision="fp32")
    assert cache_key("m", "c", flip_folded=False, opset=17, precision="int8") != cache_key(
        "m", "c", flip_folded=False, opset=17)
    # a file at the int8 name that is not int8 (e.g. a copied fp32 export) is replaced
    first.write_bytes(fp32.read_bytes())
    replaced = cached_onnx(DEFAULT_MODEL, checkpoint, cache_dir=cache, precision="int8")
    assert _props(replaced)[INT8_MARK] == "true"


def test_int8_estimator_finds_the_fp32_people(cache: Path) -> None:
    """On frames where the fp32 graph finds people, the int8 graph finds each strong one again
    within a few pixels (median over the joints both found), and its maps are not the fp32
    ones exactly (it ran quantized)."""
    options = {"cache_dir": str(cache)}
    fp32 = PoseEstimator(backend="onnxruntime", backend_options=options, flip_test=False,
                         scales=(1.0,))
    int8 = PoseEstimator(backend="onnxruntime", backend_options={**options, "precision": "int8"},
                         flip_test=False, scales=(1.0,))
    assert _props(int8.backend.path)[INT8_MARK] == "true"
    video = SyntheticVideo(640, 480, num_people=4, fps=10.0, seed=21)
    differs = False
    for index in (0, 12):
        image = video.frame(index).image_bgr
        expected = fp32(image).with_min_score(STRONG_SCORE)
        found = int8(image)
        assert len(expected) >= 2, f"the shipped model must find people in frame {index}"
        differs |= not np.array_equal(np.sort(found.scores), np.sort(fp32(image).scores))
        for person in expected.keypoints:
            both = (person[None, :, 2] > 0) & (found.keypoints[..., 2] > 0)
            distance = np.linalg.norm(found.keypoints[..., :2] - person[None, :, :2], axis=2)
            medians = [np.median(d[b]) if b.sum() >= 8 else np.inf
                       for d, b in zip(distance, both)]
            assert min(medians) <= MAX_MEDIAN_SHIFT_PX, (index, medians)
    assert differs, "the int8 graph gave exactly the fp32 scores"


def test_int8_refusals(cache: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="torch backend runs"):
        build_backend("torch", DEFAULT_MODEL, None, options={"precision": "int8"})
    with pytest.raises(ValueError, match="onnxruntime backend runs fp32 or int8"):
        build_backend("onnxruntime", DEFAULT_MODEL, None,
                      options={"precision": "fp16", "cache_dir": str(cache)})
    with pytest.raises(ValueError, match="precision must be one of"):
        BackendOptions(precision="int4")
    source = cached_onnx(DEFAULT_MODEL, default_checkpoint_path(), cache_dir=cache)
    with pytest.raises(ValueError, match="at least one calibration batch"):
        quantize_int8(source, tmp_path / "x.onnx", [])
    with pytest.raises(ValueError, match=r"\(N, 3, h, w\)"):
        quantize_int8(source, tmp_path / "x.onnx", [np.zeros((3, 64, 64), np.float32)])
    assert not (tmp_path / "x.onnx").exists()


def test_synthetic_calibration_is_the_estimators_input() -> None:
    batches = synthetic_calibration(model_info(DEFAULT_MODEL), (640, 480), frames=3)
    assert len(batches) == 3 and all(b.shape == (1, 3, 256, 384) for b in batches)
    assert all(b.dtype == np.float32 for b in batches)
    again = synthetic_calibration(model_info(DEFAULT_MODEL), (640, 480), frames=3)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_pose_export_writes_an_int8_file_from_calibration_images(tmp_path: Path) -> None:
    import cv2

    from pose_core.export.cli import main
    from pose_core.export.onnx_export import onnx_metadata

    frames = tmp_path / "frames"
    frames.mkdir()
    video = SyntheticVideo(320, 240, num_people=2, fps=10.0, seed=5)
    for index in range(3):
        cv2.imwrite(str(frames / f"{index}.png"), video.frame(index).image_bgr)
    out = tmp_path / "int8.onnx"
    assert main(["onnx", "--model", DEFAULT_MODEL, "--out", str(out), "--precision", "int8",
                 "--calibration-images", str(frames)]) == 0
    assert _props(out)[INT8_MARK] == "true" and "3 user frames" in _props(out)[
        f"{INT8_MARK}_calibration"]
    assert onnx_metadata(out).model == DEFAULT_MODEL
    assert main(["onnx", "--model", DEFAULT_MODEL, "--out", str(tmp_path / "x.onnx"),
                 "--calibration-images", str(frames)]) == 2
