"""The shipped synthetic-world model says once that it knows only the synthetic world."""

from __future__ import annotations

import linecache
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

import pose_core.default_model as default_model
from pose_core import PoseEstimator
from pose_core.default_model import DEFAULT_MODEL, SyntheticModelWarning


def test_shipped_model_warns_once_and_names_the_way_to_real_weights(monkeypatch) -> None:
    monkeypatch.setattr(default_model, "_warned", False)
    with pytest.warns(SyntheticModelWarning, match="synthetic people only") as record:
        estimator = PoseEstimator()  # the default is the shipped model
    assert estimator.info.name == DEFAULT_MODEL
    message = str(record[0].message)
    assert "checkpoint=" in message
    # self-contained: the official file and where it comes from, no docs folder needed
    assert "pose_higher_hrnet_w32_512.pth" in message
    assert "github.com/HRNet/HigherHRNet-Human-Pose-Estimation" in message
    assert "docs/" not in message
    # it points at the user's call, not at the package's internals
    assert record[0].filename == __file__
    assert "PoseEstimator()" in linecache.getline(record[0].filename, record[0].lineno)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticModelWarning)
        PoseEstimator(DEFAULT_MODEL)  # said once per process, not per estimator


def test_an_explicit_checkpoint_says_nothing(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(default_model, "_warned", False)
    path = default_model.default_checkpoint_path()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticModelWarning)
        PoseEstimator(DEFAULT_MODEL, checkpoint=path)


def test_the_warning_points_at_the_call_of_a_direct_backend_user(monkeypatch) -> None:
    from pose_core.inference.backend_factory import build_backend

    monkeypatch.setattr(default_model, "_warned", False)
    with pytest.warns(SyntheticModelWarning) as record:
        build_backend("torch", DEFAULT_MODEL, None)
    assert record[0].filename == __file__
    assert "build_backend(" in linecache.getline(record[0].filename, record[0].lineno)


def test_pose_infer_warning_points_at_its_estimator_call(monkeypatch, tmp_path: Path) -> None:
    from pose_core.inference import cli

    monkeypatch.setattr(default_model, "_warned", False)
    image = tmp_path / "grey.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 127, np.uint8))
    with pytest.warns(SyntheticModelWarning) as record:
        assert cli.main([str(image), "--out", str(tmp_path / "results.json"), "--no-flip",
                         "--scales", "1"]) == 0
    assert Path(record[0].filename) == Path(cli.__file__)
    assert "PoseEstimator(" in linecache.getline(record[0].filename, record[0].lineno)
