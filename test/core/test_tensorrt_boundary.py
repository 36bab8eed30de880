"""The TensorRT engine builder and backend up to the TensorRT API boundary.

TensorRT cannot be installed on these machines, so `StandInTensorRT` (below) takes its place: a
module-like object with the TensorRT 10 / 11 Python API names the builder and the backend call.
It parses the real exported ONNX into layers (one per node, named outputs) and records every
flag, profile and precision setting, so the tests assert what our code asks of TensorRT. What
TensorRT itself does with it has never run (README, docs/deployment.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import onnx
import pytest
import torch

from pose_core.default_model import DEFAULT_MODEL, default_checkpoint_path
from pose_core.export.engine_metadata import (
    EngineMetadata,
    EngineMismatch,
    RuntimeFacts,
    ShapeProfile,
    camera_profile,
)
from pose_core.export.metadata import file_sha256
from pose_core.export.onnx_export import export_onnx
from pose_core.export.onnx_fp16 import FP16_MARK
from pose_core.export.tensorrt_builder import (
    BuildOptions,
    build_engine,
    calibration_batches,
    layer_precision_report,
    tensorrt_major,
)
from pose_core.inference.backend_factory import BackendOptions
from pose_core.inference.tensorrt_backend import TensorRTBackend

FACTS = RuntimeFacts("10.3.0", "NVIDIA Jetson Orin", "8.7")
PROFILE = ShapeProfile((1, 3, 256, 256), (2, 3, 256, 256), (2, 3, 512, 512))


class StandInTensorRT:
    """The TensorRT names our code uses, recording what it is asked (see the module docstring).

    `honours_precision=False` imitates a build that silently runs every layer in FP32.
    """

    class Logger:
        WARNING = "warning"

        def __init__(self, level: str):
            self.level = level

    NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=5)
    BuilderFlag = SimpleNamespace(FP16="FP16", INT8="INT8",
                                  OBEY_PRECISION_CONSTRAINTS="OBEY_PRECISION_CONSTRAINTS")
    MemoryPoolType = SimpleNamespace(WORKSPACE="WORKSPACE")
    ProfilingVerbosity = SimpleNamespace(DETAILED="DETAILED")
    LayerInformationFormat = SimpleNamespace(JSON="JSON")
    TensorIOMode = SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    float32 = "float32"

    class IInt8EntropyCalibrator2:
        def __init__(self) -> None:
            pass

    def __init__(self, version: str = "10.3.0", honours_precision: bool = True):
        self.__version__ = version
        self.honours_precision = honours_precision
        self.builds: list[SimpleNamespace] = []
        stand_in = self

        class Builder:
            def __init__(self, logger):
                self.logger = logger

            def create_network(self, flags):
                return SimpleNamespace(flags=flags, layers=[], parsed_onnx=None,
                                       num_layers=0, get_layer=None)

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                record = SimpleNamespace(network=network, config=config)
                stand_in.builds.append(record)
                return b"ENGINE" + json.dumps(stand_in.precision_of(network, config)).encode()

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, low, opt, high):
                self.shapes[name] = (tuple(low), tuple(opt), tuple(high))

        class Config:
            def __init__(self):
                self.flags, self.profiles, self.pools = set(), [], {}
                self.int8_calibrator = None
                self.profiling_verbosity = None
                self.timing_cache = None

            def set_flag(self, flag):
                self.flags.add(flag)

            def set_memory_pool_limit(self, pool, size):
                self.pools[pool] = size

            def add_optimization_profile(self, profile):
                self.profiles.append(profile)

            def create_timing_cache(self, data):
                return SimpleNamespace(data=bytes(data), serialize=lambda: b"TIMING" + data)

            def set_timing_cache(self, cache, ignore_mismatch):
                self.timing_cache = cache

            def get_timing_cache(self):
                return self.timing_cache

        class OnnxParser:
            def __init__(self, network, logger):
                self.network = network
                self.errors: list[str] = []

            @property
            def num_errors(self):
                return len(self.errors)

            def get_error(self, index):
                return self.errors[index]

            def parse(self, data):
                try:
                    model = onnx.load_from_string(data)
                except Exception as error:  # noqa: BLE001 - reported like TensorRT's parser
                    self.errors.append(str(error))
                    return False
                layers = [Layer(node) for node in model.graph.node]
                self.network.parsed_onnx = model
                self.network.layers = layers
                self.network.num_layers = len(layers)
                self.network.get_layer = layers.__getitem__
                return True

        class Layer:
            def __init__(self, node):
                self.type = node.op_type
                self.outputs = [SimpleNamespace(name=name) for name in node.output]
                self.num_outputs = len(self.outputs)
                self.precision = None
                self.output_types = {}

            def get_output(self, slot):
                return self.outputs[slot]

            def set_output_type(self, slot, dtype):
                self.output_types[slot] = dtype

        class Runtime:
            def __init__(self, logger):
                pass

            def deserialize_cuda_engine(self, data):
                data = bytes(data)
                if not data.startswith(b"ENGINE"):
                    return None
                return Engine(json.loads(data[len(b"ENGINE"):]))

        class Engine:
            num_io_tensors = 3

            def __init__(self, layer_types):
                self.layer_types = layer_types

            def create_engine_inspector(self):
                layers = [{"Name": f"l{i}", "LayerType": kind,
                           "Outputs": [{"Format/Datatype": f"{dtype} format NCHW"}]}
                          for i, (kind, dtype) in enumerate(self.layer_types)]
                text = json.dumps({"Layers": layers})
                return SimpleNamespace(get_engine_information=lambda fmt: text)

            def create_execution_context(self):
                return SimpleNamespace()

            def get_tensor_name(self, index):
                return ["image", "output_0", "output_1"][index]

            def get_tensor_mode(self, name):
                return "INPUT" if name == "image" else "OUTPUT"

        self.Builder, self.OnnxParser, self.Runtime = Builder, OnnxParser, Runtime

    def precision_of(self, network, config) -> list[tuple[str, str]]:
        """What each layer would run in: FP16 flag / strongly typed fp16 graph -> Half, except
        layers pinned to float32; INT8 flag -> Int8 for convolutions."""
        strongly_typed = bool(network.flags & (1 << 5))
        fp16_graph = strongly_typed and any(
            p.key == FP16_MARK for p in network.parsed_onnx.metadata_props)
        kinds = []
        for layer in network.layers:
            dtype = "Float"
            if self.honours_precision:
                if "INT8" in config.flags and layer.type == "Conv":
                    dtype = "Int8"
                elif "FP16" in config.flags or fp16_graph:
                    dtype = "Half"
                if layer.precision == "float32" or (
                        fp16_graph and any(o.name == "output_0" for o in layer.outputs)):
                    dtype = "Float"
            kinds.append((layer.type, dtype))
        return kinds


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    return export_onnx(DEFAULT_MODEL, default_checkpoint_path(), folder / "lite.onnx",
                       check_sizes_wh=((256, 256),)).path


def _build(onnx_path: Path, out: Path, trt: StandInTensorRT, **options) -> EngineMetadata:
    settings = {"precision": "fp16", "profiles": (PROFILE,), **options}
    return build_engine(onnx_path, out, BuildOptions(**settings), trt=trt, facts=FACTS)


def test_tensorrt_10_uses_builder_flags_and_pins_the_tag_layers(onnx_file: Path,
                                                              tmp_path: Path) -> None:
    trt = StandInTensorRT("10.3.0")
    cache = tmp_path / "timing.cache"
    metadata = _build(onnx_file, tmp_path / "e.engine", trt, workspace_mib=512,
                      timing_cache=str(cache))
    build = trt.builds[-1]
    assert build.network.flags == 0  # weakly typed
    assert {"FP16", "OBEY_PRECISION_CONSTRAINTS"} <= build.config.flags
    assert build.config.pools["WORKSPACE"] == 512 << 20
    assert build.config.profiling_verbosity == "DETAILED"
    assert [p.shapes["image"] for p in build.config.profiles] == [
        (PROFILE.min, PROFILE.opt, PROFILE.max)]
    pinned = [layer for layer in build.network.layers if layer.precision == "float32"]
    assert [o.name for layer in pinned for o in layer.outputs] == ["output_0"]
    assert cache.read_bytes().startswith(b"TIMING")
    assert metadata.layer_precisions["Conv"]["fp16"] > 0
    assert metadata.layer_precisions["Conv"]["fp32"] == 1  # the tag layer
    written = EngineMetadata.read(tmp_path / "e.engine")
    assert written == metadata
    assert (written.tensorrt_version, written.gpu_name, written.compute_capability) == (
        "10.3.0", "NVIDIA Jetson Orin", "8.7")
    assert written.model == DEFAULT_MODEL and written.keypoint_set == "coco"
    assert written.onnx_sha256 == file_sha256(onnx_file)
    assert written.profiles == (PROFILE,) and written.precision == "fp16"


def test_tensorrt_11_builds_strongly_typed_from_an_fp16_onnx(onnx_file: Path,
                                                           tmp_path: Path) -> None:
    trt = StandInTensorRT("11.0.0")
    metadata = _build(onnx_file, tmp_path / "e.engine", trt)
    build = trt.builds[-1]
    assert build.network.flags == 1 << 5  # STRONGLY_TYPED
    assert build.config.flags == set()  # no FP16 / INT8 flags exist in TensorRT 11
    parsed = build.network.parsed_onnx
    assert any(p.key == FP16_MARK for p in parsed.metadata_props)
    assert metadata.layer_precisions["Conv"]["fp16"] > 0
    assert metadata.onnx_sha256 == file_sha256(onnx_file)  # the file the user gave
    with pytest.raises(ValueError, match="QuantizeLinear"):
        _build(onnx_file, tmp_path / "i8.engine", trt, precision="int8")


def test_int8_calibration_on_tensorrt_10(onnx_file: Path, tmp_path: Path,
                                         fixtures_dir: Path) -> None:
    trt = StandInTensorRT("10.3.0")
    with pytest.raises(ValueError, match="calibration batches"):
        _build(onnx_file, tmp_path / "e.engine", trt, precision="int8")
    images = [cv2.imread(str(p)) for p in sorted((fixtures_dir / "coco").glob("*.jpg"))]
    batches = calibration_batches(images, DEFAULT_MODEL, 256, batch=1)
    assert len(batches) == 4 and all(b.shape[:2] == (1, 3) for b in batches)
    assert all(min(b.shape[2:]) == 256 and b.dtype == np.float32 for b in batches)
    metadata = _build(onnx_file, tmp_path / "e.engine", trt, precision="int8",
                      calibration=batches, calibration_cache=str(tmp_path / "calib.cache"))
    config = trt.builds[-1].config
    assert "INT8" in config.flags
    calibrator = config.int8_calibrator
    assert isinstance(calibrator, trt.IInt8EntropyCalibrator2)
    assert calibrator.get_batch_size() == 1
    served = 0
    while calibrator.get_batch(["image"]) is not None:
        served += 1
    assert served == 4
    calibrator.write_calibration_cache(b"table")
    assert calibrator.read_calibration_cache() == b"table"
    assert metadata.layer_precisions["Conv"]["int8"] > 0


def test_fp16_engine_that_runs_fp32_is_refused(onnx_file: Path, tmp_path: Path) -> None:
    trt = StandInTensorRT("10.3.0", honours_precision=False)
    with pytest.raises(RuntimeError, match="refusing to label it fp16"):
        _build(onnx_file, tmp_path / "e.engine", trt)
    assert not (tmp_path / "e.engine").exists()
    with pytest.raises(RuntimeError, match="not supported"):
        tensorrt_major(SimpleNamespace(__version__="8.6.1"))


def test_layer_precision_report_reads_the_inspector_json() -> None:
    text = json.dumps({"Layers": [
        {"LayerType": "CaskConvolution", "Outputs": [{"Format/Datatype": "Half format"}]},
        {"LayerType": "CaskConvolution", "Outputs": [{"Format/Datatype": "Float format"}]},
        {"LayerType": "Reformat", "Outputs": [{"Format/Datatype": "Int8 NC/32HW32"}]},
    ]})
    assert layer_precision_report(text) == {"CaskConvolution": {"fp16": 1, "fp32": 1},
                                            "Reformat": {"int8": 1}}
    with pytest.raises(ValueError, match="DETAILED"):
        layer_precision_report(json.dumps({"Layers": ["conv1", "conv2"]}))


@pytest.fixture(scope="module")
def engine(onnx_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engine") / "lite.engine"
    _build(onnx_file, path, StandInTensorRT("10.3.0"))
    return path


@pytest.mark.parametrize(("field", "value"), [
    ("tensorrt_version", "10.0.1"), ("gpu_name", "NVIDIA H100"), ("compute_capability", "9.0"),
])
def test_engine_for_another_tensorrt_or_gpu_is_refused(engine: Path, field: str,
                                                       value: str) -> None:
    facts = RuntimeFacts(**{**FACTS.__dict__, field: value})
    with pytest.raises(EngineMismatch, match=f"{field}: engine has .*pose-export tensorrt"):
        TensorRTBackend(engine, DEFAULT_MODEL, trt=StandInTensorRT(), facts=facts)
    TensorRTBackend(engine, DEFAULT_MODEL, trt=StandInTensorRT(), facts=FACTS)  # matching


def test_engine_of_another_model_keypoints_onnx_or_precision_is_refused(engine: Path) -> None:
    trt = StandInTensorRT()
    with pytest.raises(EngineMismatch, match="model: engine has"):
        TensorRTBackend(engine, "higherhrnet_w32_512_coco", trt=trt, facts=FACTS)
    with pytest.raises(EngineMismatch, match="keypoint_set: engine has 'coco', here 'crowdpose'"):
        TensorRTBackend(engine, "higherhrnet_w32_512_crowdpose", trt=trt, facts=FACTS)
    with pytest.raises(EngineMismatch, match="onnx_sha256"):
        TensorRTBackend(engine, DEFAULT_MODEL, onnx_sha256="0" * 64, trt=trt, facts=FACTS)
    with pytest.raises(EngineMismatch, match="precision: engine has 'fp16', here 'int8'"):
        TensorRTBackend(engine, DEFAULT_MODEL, precision="int8", trt=trt, facts=FACTS)


def test_corrupt_engine_or_missing_metadata(engine: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.engine"
    corrupt.write_bytes(b"\x00garbage")
    (tmp_path / "corrupt.engine.json").write_text(Path(f"{engine}.json").read_text())
    with pytest.raises(EngineMismatch, match="corrupt"):
        TensorRTBackend(corrupt, DEFAULT_MODEL, trt=StandInTensorRT(), facts=FACTS)
    bare = tmp_path / "bare.engine"
    bare.write_bytes(engine.read_bytes())
    with pytest.raises(EngineMismatch, match="no metadata file"):
        TensorRTBackend(bare, DEFAULT_MODEL, trt=StandInTensorRT(), facts=FACTS)
    (tmp_path / "bare.engine.json").write_text("{\"model\": 1}")
    with pytest.raises(EngineMismatch, match="not written by `pose-export tensorrt`"):
        TensorRTBackend(bare, DEFAULT_MODEL, trt=StandInTensorRT(), facts=FACTS)


def test_input_outside_the_engine_shape_range(engine: Path) -> None:
    backend = TensorRTBackend(engine, DEFAULT_MODEL, trt=StandInTensorRT(), facts=FACTS)
    with pytest.raises(EngineMismatch, match="1x3x768x512 is outside .*1x3x256x256..2x3x512x512"):
        backend(torch.zeros(1, 3, 768, 512))
    with pytest.raises(EngineMismatch, match="outside"):
        backend(torch.zeros(3, 3, 256, 256))


def test_engine_policy_error_or_rebuild(engine: Path, onnx_file: Path, tmp_path: Path) -> None:
    stale = tmp_path / "stale.engine"
    stale.write_bytes(engine.read_bytes())
    data = json.loads(Path(f"{engine}.json").read_text())
    Path(f"{stale}.json").write_text(json.dumps({**data, "tensorrt_version": "10.0.1"}))
    trt = StandInTensorRT("10.3.0")
    with pytest.raises(EngineMismatch, match="Rebuild it here: pose-export tensorrt"):
        TensorRTBackend.for_model(DEFAULT_MODEL, stale, lambda: onnx_file, BackendOptions(),
                                  "cuda", trt=trt, facts=FACTS)
    rebuilt = TensorRTBackend.for_model(
        DEFAULT_MODEL, stale, lambda: onnx_file, BackendOptions(engine_policy="rebuild"),
        "cuda", trt=trt, facts=FACTS)
    assert rebuilt.metadata.tensorrt_version == "10.3.0"
    assert rebuilt.metadata.profiles == (PROFILE,) and rebuilt.metadata.precision == "fp16"
    missing = TensorRTBackend.for_model(
        DEFAULT_MODEL, tmp_path / "new.engine", lambda: onnx_file,
        BackendOptions(engine_policy="rebuild", precision="fp16"), "cuda", trt=trt,
        facts=FACTS)
    assert missing.metadata.precision == "fp16" and len(missing.metadata.profiles) == 1


def test_onnx_of_another_keypoint_set_cannot_serve_this_model(onnx_file: Path,
                                                              tmp_path: Path) -> None:
    model = onnx.load(str(onnx_file))
    for prop in model.metadata_props:
        if prop.key == "pose_ros.keypoint_set":
            prop.value = "crowdpose"
    other = tmp_path / "other.onnx"
    onnx.save(model, str(other))
    metadata = _build(other, tmp_path / "o.engine", StandInTensorRT())
    assert metadata.keypoint_set == "crowdpose"
    with pytest.raises(EngineMismatch, match="keypoint_set"):
        TensorRTBackend(tmp_path / "o.engine", DEFAULT_MODEL, trt=StandInTensorRT(),
                        facts=FACTS)


def test_profiles_and_camera_profiles() -> None:
    assert camera_profile((640, 480), 512).min == (1, 3, 512, 704)
    assert camera_profile((480, 640), 512, batch=2).max == (2, 3, 704, 512)
    parsed = ShapeProfile.parse("1x3x256x256:2x3x512x512:2x3x1024x1024")
    assert parsed.contains((2, 3, 512, 768)) and not parsed.contains((3, 3, 512, 512))
    with pytest.raises(ValueError, match="min <= opt <= max"):
        ShapeProfile.parse("1x3x512x512:1x3x256x256:1x3x1024x1024")
    with pytest.raises(ValueError, match="multiples of 64"):
        ShapeProfile.parse("1x3x200x256").check_multiple(64)
