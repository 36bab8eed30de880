"""Checkpoint loading: official layouts (plain, training dict, fp16 wrapper), foreign formats,
ImageNet backbones, and clear, safe failures.

Weights follow the parity README §1 rule (seed 0), so the plain file is the one the golden
outputs in test_models.py were made with.
"""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from official_weights import (
    REFERENCE_DIR,
    fp16_round,
    fp16_wrapper_state_dict,
    key_manifest,
    official_state_dict,
    training_checkpoint,
)

from pose_core.keypoint_specs import COCO_17
from pose_core.models import build_model
from pose_core.models.checkpoint import (
    CheckpointError,
    load_backbone_checkpoint,
    load_checkpoint,
)
from pose_core.models.higher_hrnet import HIGHER_HRNET_LITE_W16
from pose_core.models.hrnet import build_top_down_hrnet

LITE = "higherhrnet_lite_w16_256_coco"


@pytest.fixture(scope="module")
def w32_weights() -> OrderedDict[str, torch.Tensor]:
    return official_state_dict(
        os.path.join(REFERENCE_DIR, "keys_higherhrnet_w32_512_coco.json"), seed=0
    )


@pytest.fixture(scope="module")
def lite_weights() -> OrderedDict[str, torch.Tensor]:
    with torch.device("meta"):
        manifest = key_manifest(build_model(LITE))
    return official_state_dict(manifest, seed=1)


def _assert_state_equal(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert state[key].dtype == (torch.int64 if "num_batches" in key else torch.float32), key
        assert torch.equal(state[key], value.to(state[key].dtype)), key


def test_plain_official_file(tmp_path: Path, w32_weights: OrderedDict) -> None:
    path = tmp_path / "pose_higher_hrnet_w32_512.pth"
    torch.save(w32_weights, path)
    model = build_model("higherhrnet_w32_512_coco")
    report = load_checkpoint(model, path)
    assert report.container is None and report.stripped_prefix is None
    assert report.format == "official" and report.fp16_tensors == 0 and report.loaded == 1810
    _assert_state_equal(model, w32_weights)
    assert "1810 tensors loaded" in str(report)


def test_fp16_wrapper_file_equals_rounded_plain(tmp_path: Path, w32_weights: OrderedDict) -> None:
    wrapped = fp16_wrapper_state_dict(w32_weights)
    dtypes = [v.dtype for v in wrapped.values()]
    assert (dtypes.count(torch.float16), dtypes.count(torch.float32)) == (305, 1204)
    path = tmp_path / "pose_higher_hrnet_w32_640.pth"
    torch.save(wrapped, path)
    from_fp16 = build_model("higherhrnet_w32_512_coco")
    report = load_checkpoint(from_fp16, path)
    assert report.stripped_prefix == "1." and report.fp16_tensors == 305
    from_plain = build_model("higherhrnet_w32_512_coco")
    load_checkpoint(from_plain, fp16_round(w32_weights))
    plain_state = from_plain.state_dict()
    for key, value in from_fp16.state_dict().items():
        assert value.dtype == plain_state[key].dtype and torch.equal(value, plain_state[key]), key


def test_official_training_checkpoint(tmp_path: Path, w32_weights: OrderedDict) -> None:
    checkpoint = training_checkpoint(w32_weights)  # `model` is a string, state_dict "module."
    assert isinstance(checkpoint["model"], str)
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(checkpoint, path)
    model = build_model("higherhrnet_w32_512_coco")
    report = load_checkpoint(model, path)
    assert report.container == "state_dict" and report.stripped_prefix == "module."
    _assert_state_equal(model, w32_weights)


def test_fp16_training_checkpoint_module_1_prefix(
    tmp_path: Path, lite_weights: OrderedDict
) -> None:
    checkpoint = training_checkpoint(fp16_wrapper_state_dict(lite_weights))
    assert next(iter(checkpoint["state_dict"])).startswith("module.1.")
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(checkpoint, path)
    model = build_model(LITE)
    report = load_checkpoint(model, path)
    assert report.stripped_prefix == "module.1." and report.fp16_tensors > 0
    _assert_state_equal(model, fp16_round(lite_weights))


def test_container_precedence(tmp_path: Path, lite_weights: OrderedDict) -> None:
    # best_state_dict is used when state_dict is not a mapping of tensors.
    path = tmp_path / "best.pth"
    torch.save({"state_dict": {"epoch": 3}, "best_state_dict": lite_weights, "model": "x"}, path)
    model = build_model(LITE)
    assert load_checkpoint(model, path).container == "best_state_dict"
    _assert_state_equal(model, lite_weights)
    # pose_core's own training checkpoints keep the weights under "model".
    ours = {"format_version": 1, "model": lite_weights, "optimizer": {"state": {}}, "epoch": 2}
    model = build_model(LITE)
    assert load_checkpoint(model, ours).container == "model"
    _assert_state_equal(model, lite_weights)


def test_num_batches_tracked_is_optional(lite_weights: OrderedDict) -> None:
    trimmed = {k: v for k, v in lite_weights.items() if not k.endswith("num_batches_tracked")}
    model = build_model(LITE)
    report = load_checkpoint(model, trimmed)
    assert report.filled_buffers and all(
        k.endswith("num_batches_tracked") for k in report.filled_buffers
    )
    assert len(report.filled_buffers) == len(lite_weights) - len(trimmed)


def test_mmpose_checkpoint_is_converted(tmp_path: Path, lite_weights: OrderedDict) -> None:
    head_roots = ("final_layers.", "deconv_layers.")
    renamed = OrderedDict(
        (("keypoint_head." if k.startswith(head_roots) else "backbone.") + k, v)
        for k, v in lite_weights.items()
    )
    path = tmp_path / "mmpose.pth"
    torch.save({"meta": {"mmpose_version": "0.29.0"}, "state_dict": renamed}, path)
    model = build_model(LITE)
    report = load_checkpoint(model, path)
    assert report.format == "mmpose" and report.container == "state_dict"
    _assert_state_equal(model, lite_weights)


def test_imagenet_backbone_loads_backbone_only(tmp_path: Path, lite_weights: OrderedDict) -> None:
    backbone = OrderedDict(
        (k, v) for k, v in lite_weights.items()
        if not k.startswith(("final_layers.", "deconv_layers."))
    )
    extras = {
        "incre_modules.0.0.conv1.weight": torch.ones(32, 16, 1, 1),
        "downsamp_modules.0.0.weight": torch.ones(64, 128, 3, 3),
        "final_layer.0.weight": torch.ones(2048, 1024, 1, 1),
        "classifier.weight": torch.ones(1000, 2048),
        "classifier.bias": torch.ones(1000),
        "stage4.0.fuse_layers.1.0.0.0.weight": torch.ones(32, 16, 3, 3),
    }
    path = tmp_path / "hrnet_w16_imagenet.pth"
    torch.save({**backbone, **extras}, path)
    model = build_model(LITE)
    head_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("final")}
    report = load_backbone_checkpoint(model, path)
    assert set(report.skipped) == set(extras)
    assert report.loaded == len(backbone)
    assert all(k.startswith(("final_layers.", "deconv_layers.")) for k in report.not_loaded)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in backbone.items())
    assert all(torch.equal(state[k], v) for k, v in head_before.items())
    # The top-down network's own 1x1 final_layer is not taken from the classifier either.
    top_down = build_top_down_hrnet(HIGHER_HRNET_LITE_W16.backbone, COCO_17)
    report = load_backbone_checkpoint(top_down, path)
    assert report.not_loaded == ("final_layer.weight", "final_layer.bias")
    # A backbone key absent from the file is an error.
    del backbone["stage4.0.branches.3.1.conv2.weight"]
    torch.save(backbone, path)
    with pytest.raises(CheckpointError, match=r"1 missing keys: stage4\.0\.branches\.3\.1\.conv2"):
        load_backbone_checkpoint(build_model(LITE), path)


def test_checkpoint_of_another_model_names_keys(lite_weights: OrderedDict) -> None:
    top_down = official_state_dict(
        os.path.join(REFERENCE_DIR, "keys_hrnet_w32_256x192_coco.json"), seed=0
    )
    with torch.device("meta"):
        higher = build_model("higherhrnet_w32_512_coco")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(higher, top_down)
    message = str(info.value)
    assert "another model" in message
    assert "49 missing keys: final_layers.0.weight, final_layers.0.bias" in message
    assert "2 unexpected keys: final_layer.weight, final_layer.bias" in message
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(higher, lite_weights)
    message = str(info.value)
    assert "conv1.weight (file [32, 3, 3, 3] vs model [64, 3, 3, 3])" in message
    assert "keys with a wrong shape" in message and "more)" in message


def test_corrupted_and_truncated_files(tmp_path: Path, lite_weights: OrderedDict) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(build_model(LITE), garbage)
    text = tmp_path / "text.pth"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(build_model(LITE), text)
    good = tmp_path / "good.pth"
    torch.save(lite_weights, good)
    data = good.read_bytes()
    for cut in (len(data) // 2, len(data) - 100):
        truncated = tmp_path / f"truncated_{cut}.pth"
        truncated.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated"):
            load_checkpoint(build_model(LITE), truncated)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(build_model(LITE), empty)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(build_model(LITE), tmp_path / "missing.pth")


class _MakeDirectoryOnLoad:
    """A pickle payload that would create a directory when unpickled by a plain unpickler."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (self.path,)


def test_pickled_code_is_refused_not_executed(tmp_path: Path, lite_weights: OrderedDict) -> None:
    # The payload is live: a plain unpickler runs it.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_MakeDirectoryOnLoad(str(control))))
    assert control.is_dir()
    marker = tmp_path / "pwned"
    payloads = {
        "zip_state_dict.pth": lambda p: torch.save(
            {"state_dict": _MakeDirectoryOnLoad(str(marker))}, p
        ),
        "zip_tensor_mixed.pth": lambda p: torch.save(
            {**lite_weights, "evil": _MakeDirectoryOnLoad(str(marker))}, p
        ),
        "legacy.pth": lambda p: torch.save(
            _MakeDirectoryOnLoad(str(marker)), p, _use_new_zipfile_serialization=False
        ),
        "raw_pickle.pkl": lambda p: p.write_bytes(
            pickle.dumps(_MakeDirectoryOnLoad(str(marker)), protocol=2)
        ),
    }
    for name, write in payloads.items():
        path = tmp_path / name
        write(path)
        with pytest.raises(CheckpointError, match="refused|corrupted") as info:
            load_checkpoint(build_model(LITE), path)
        assert not marker.exists(), name
        assert str(path) in str(info.value)


def test_no_state_dict_inside(tmp_path: Path) -> None:
    path = tmp_path / "meta_only.pth"
    torch.save({"epoch": 3, "model": "pose_higher_hrnet", "perf": 0.5}, path)
    with pytest.raises(CheckpointError, match="no state_dict found.*'epoch'"):
        load_checkpoint(build_model(LITE), path)
    torch.save([torch.zeros(3)], path)
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(build_model(LITE), path)
