"""Backends by name: the same maps on the real fixture images and the same people (1e-3 px,
people scoring >= 0.05) on synthetic frames through torch and onnxruntime; the flip test folded
into the graph; options and refusals of the factory."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pose_core.data.synthetic import SyntheticVideo
from pose_core.default_model import DEFAULT_MODEL
from pose_core.export.metadata import MetadataMismatch
from pose_core.inference.backend_factory import BackendOptions, build_backend
from pose_core.inference.backends import TorchBackend
from pose_core.inference.estimator import PoseEstimator
from pose_core.inference.onnxruntime_backend import OnnxRuntimeBackend, resolve_providers
from pose_core.models import build_model


def _images(fixtures_dir: Path) -> list[np.ndarray]:
    paths = sorted((fixtures_dir / "coco").glob("*.jpg")) + sorted(
        (fixtures_dir / "crowdpose").glob("*.jpg"))
    assert len(paths) == 6
    return [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]


# People the two backends must both find. Below it, a candidate joint whose heatmap value sits
# within float rounding of the detection threshold may exist in one backend's maps and not the
# other's, which changes a low-score fragment (the shipped model on real photographs finds
# dozens of such fragments, scores ~0.01), not the people.
SAME_PEOPLE_MIN_SCORE = 0.05


def _assert_same_people(reference, other) -> int:
    """Every person of either side scoring >= SAME_PEOPLE_MIN_SCORE has its twin on the other
    side: keypoints within 1e-3 px, joint values and person score within 1e-4."""
    def twins(a, b) -> int:
        found = 0
        for index in np.flatnonzero(a.scores >= SAME_PEOPLE_MIN_SCORE):
            distance = np.abs(b.keypoints[..., :2] - a.keypoints[index, :, :2]).max(axis=(1, 2))
            assert len(distance) and distance.min() <= 1e-3, f"person {index} has no twin"
            twin = int(distance.argmin())
            np.testing.assert_allclose(b.keypoints[twin, :, 2], a.keypoints[index, :, 2],
                                       atol=1e-4, rtol=0)
            assert abs(float(b.scores[twin]) - float(a.scores[index])) <= 1e-4
            found += 1
        return found

    found = twins(reference, other)
    twins(other, reference)
    return found


@pytest.mark.slow
def test_onnxruntime_finds_the_people_torch_finds(fixtures_dir: Path, tmp_path: Path) -> None:
    cache = {"cache_dir": str(tmp_path)}
    torch_estimator = PoseEstimator(DEFAULT_MODEL, backend="torch")
    onnx_estimator = PoseEstimator(DEFAULT_MODEL, backend="onnxruntime", backend_options=cache)
    folded = PoseEstimator(DEFAULT_MODEL, backend="onnxruntime",
                           backend_options={**cache, "flip_folded": True})
    assert isinstance(onnx_estimator.backend, OnnxRuntimeBackend)
    assert folded.backend.flip_folded and not onnx_estimator.backend.flip_folded
    # What the grouping sees (flip test and the model's scales merged) on the real photographs.
    for image in _images(fixtures_dir):
        heatmaps, tags = torch_estimator.bottom_up_maps(image)
        for estimator in (onnx_estimator, folded):
            other_heatmaps, other_tags = estimator.bottom_up_maps(image)
            np.testing.assert_allclose(other_heatmaps.numpy(), heatmaps.numpy(), atol=1e-4,
                                       rtol=0)
            for joint in range(heatmaps.shape[0]):
                np.testing.assert_allclose(other_tags.dense(joint).numpy(),
                                           tags.dense(joint).numpy(), atol=1e-3, rtol=0)
    # The people, on frames of the synthetic world the shipped model knows (on photographs it
    # finds only low-score fragments).
    video = SyntheticVideo(640, 480, num_people=4, fps=10.0, seed=3)
    people = 0
    for index in (0, 15, 30):
        image = video.frame(index).image_bgr
        reference = torch_estimator(image)
        people += _assert_same_people(reference, onnx_estimator(image))
        _assert_same_people(reference, folded(image))
    assert people >= 10  # the shipped model finds the walkers (12 with version 3)
    # The export is cached: a second estimator reuses the file.
    files = sorted(tmp_path.glob("*.onnx"))
    assert len(files) == 2
    stamps = [f.stat().st_mtime_ns for f in files]
    PoseEstimator(DEFAULT_MODEL, backend="onnxruntime", backend_options=cache)
    assert [f.stat().st_mtime_ns for f in files] == stamps


def test_folded_graph_needs_the_flip_test(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flip test"):
        PoseEstimator(DEFAULT_MODEL, backend="onnxruntime", flip_test=False,
                      backend_options={"cache_dir": str(tmp_path), "flip_folded": True})


def test_onnx_file_of_another_model_is_refused(tmp_path: Path) -> None:
    from pose_core.export.onnx_cache import cached_onnx

    torch.manual_seed(0)
    checkpoint = tmp_path / "w32_crowdpose.pt"
    torch.save(build_model("higherhrnet_lite_w16_256_coco").state_dict(), checkpoint)
    other_weights = cached_onnx(DEFAULT_MODEL, checkpoint, cache_dir=tmp_path)
    with pytest.raises(MetadataMismatch, match="checkpoint_sha256"):
        build_backend("onnxruntime", DEFAULT_MODEL, None,
                      options={"onnx_path": str(other_weights)})


def test_factory_refusals() -> None:
    with pytest.raises(ValueError, match="unknown backend 'openvino'"):
        build_backend("openvino", DEFAULT_MODEL, None)
    with pytest.raises(TypeError, match="unknown backend options: threads"):
        BackendOptions.from_mapping({"threads": 2})
    with pytest.raises(ValueError, match="precision"):
        BackendOptions(precision="int4")
    with pytest.raises(ValueError, match="needs a checkpoint"), pytest.warns(UserWarning):
        build_backend("onnxruntime", "higherhrnet_w32_512_coco", None)
    with pytest.raises(ValueError, match="'cuda' is not available here; available: "):
        resolve_providers(["cuda"], ["CPUExecutionProvider"])
    assert resolve_providers(None, ["CPUExecutionProvider", "CUDAExecutionProvider"]) == [
        "CUDAExecutionProvider", "CPUExecutionProvider"]


def test_torch_backend_options_on_cpu() -> None:
    torch.manual_seed(0)
    model = build_model(DEFAULT_MODEL)
    batch = torch.randn(1, 3, 128, 128)
    reference = TorchBackend(model, precision="fp32", channels_last=False)(batch)
    nhwc = TorchBackend(model, channels_last=True)(batch)
    bf16 = TorchBackend(model, precision="bf16")(batch)
    for ref, a, b in zip(reference, nhwc, bf16):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, ref, atol=1e-4, rtol=1e-4)
        scale = float(ref.abs().max())
        assert float((b - ref).abs().max()) <= 0.1 * scale + 1e-3  # bf16: 8 mantissa bits
    with pytest.raises(ValueError, match="CUDA"):
        TorchBackend(model, precision="fp16")
    with pytest.raises(ValueError, match="CUDA graphs"):
        TorchBackend(model, cuda_graphs=True)


def test_auto_backend(tmp_path: Path) -> None:
    from pose_core.inference.backend_factory import CPU_DEFAULT_BACKEND, default_backend

    assert default_backend("cuda:0") == "torch"
    assert default_backend("cpu") == CPU_DEFAULT_BACKEND == "onnxruntime"
    auto = build_backend("auto", DEFAULT_MODEL, None, options={"cache_dir": str(tmp_path)})
    assert isinstance(auto, OnnxRuntimeBackend)
    with pytest.warns(UserWarning, match="RANDOM"):
        random_weights = build_backend("auto", "higherhrnet_w32_512_coco", None)
    assert isinstance(random_weights, TorchBackend)  # nothing to export: torch
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.warns(UserWarning, match="backend auto: onnxruntime failed"):
        fallback = build_backend("auto", DEFAULT_MODEL, None,
                                 options={"onnx_path": str(broken)})
    assert isinstance(fallback, TorchBackend)
