"""The shipped synthetic-world model says once that it knows only the synthetic world."""

from __future__ import annotations

import warnings

import pytest

import pose_core.default_model as default_model
from pose_core import PoseEstimator
from pose_core.default_model import DEFAULT_MODEL, SyntheticModelWarning


def test_shipped_model_warns_once_and_names_the_way_to_real_weights(monkeypatch) -> None:
    monkeypatch.setattr(default_model, "_warned", False)
    with pytest.warns(SyntheticModelWarning, match="synthetic people only") as record:
        estimator = PoseEstimator()  # the default is the shipped model
    assert estimator.info.name == DEFAULT_MODEL
    assert "checkpoint=" in str(record[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticModelWarning)
        PoseEstimator(DEFAULT_MODEL)  # said once per process, not per estimator


def test_an_explicit_checkpoint_says_nothing(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(default_model, "_warned", False)
    path = default_model.default_checkpoint_path()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SyntheticModelWarning)
        PoseEstimator(DEFAULT_MODEL, checkpoint=path)
