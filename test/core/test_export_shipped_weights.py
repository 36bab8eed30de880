"""training/export_shipped_weights.py: a training checkpoint -> the shipped weights file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from pose_core.default_model import DEFAULT_MODEL
from pose_core.engine.checkpointing import save_training_checkpoint
from pose_core.models import build_model
from pose_core.models.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _exporter():  # training/ is a scripts folder, not a package
    spec = importlib.util.spec_from_file_location(
        "export_shipped_weights", REPO / "training" / "export_shipped_weights.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _training_checkpoint(path: Path, model_name: str, half: bool = False,
                         config_name: str | None = "") -> torch.nn.Module:
    """A format-1 checkpoint of `model_name`, its config naming `config_name` ("": the same;
    None: no model name)."""
    torch.manual_seed(0)
    model = build_model(model_name)
    if half:  # a run that kept its weights in bf16: the shipped file is fp32 all the same
        model = model.to(torch.bfloat16)
    save_training_checkpoint(path, model=model, optimizer=None, scheduler=None, scaler=None,
                             epoch=3, step=30, best_metric=0.5,
                             config={} if config_name is None
                             else {"model": {"name": config_name or model_name}})
    return model


def test_export_writes_an_fp32_state_dict_with_official_keys(tmp_path: Path) -> None:
    exporter = _exporter()
    model = _training_checkpoint(tmp_path / "best.pt", DEFAULT_MODEL, half=True)
    out = tmp_path / "weights" / f"{DEFAULT_MODEL}.pt"
    assert exporter.main(["--checkpoint", str(tmp_path / "best.pt"), "--out", str(out)]) == 0
    state = torch.load(out, weights_only=True)
    assert list(state) == list(build_model(DEFAULT_MODEL).state_dict())  # keys and their order
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value.float()), key
    # the package loads it strictly, as the shipped file
    load_checkpoint(build_model(DEFAULT_MODEL), out)


def test_export_refuses_big_files_and_wrong_models_and_keeps_the_old_file(
    tmp_path: Path, capsys
) -> None:
    exporter = _exporter()
    _training_checkpoint(tmp_path / "best.pt", DEFAULT_MODEL)
    out = tmp_path / "shipped.pt"
    out.write_bytes(b"previous weights")
    with pytest.raises(exporter.ExportRefused, match="over the"):
        exporter.export_weights(tmp_path / "best.pt", out, max_bytes=1024)
    assert out.read_bytes() == b"previous weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "shipped.pt"]  # no temp
    # a checkpoint of another network, named by its config or found by its keys
    _training_checkpoint(tmp_path / "other.pt", "dem_higherhrnet_lite_w16_256_coco")
    assert exporter.main(["--checkpoint", str(tmp_path / "other.pt"), "--out", str(out)]) == 1
    assert "trained as dem_higherhrnet_lite_w16_256_coco" in capsys.readouterr().err
    _training_checkpoint(tmp_path / "other.pt", "dem_higherhrnet_lite_w16_256_coco",
                         config_name=None)
    assert exporter.main(["--checkpoint", str(tmp_path / "other.pt"), "--out", str(out)]) == 1
    assert f"does not fit {DEFAULT_MODEL}" in capsys.readouterr().err
    assert exporter.main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 1
    assert out.read_bytes() == b"previous weights"
