"""DARK and quarter-offset decoding against the DarkPose / HRNet fixture (dark_64x48_k11)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pose_core import dark_decode
from pose_core.codecs.refinement import _modulate, dark_offsets_at, quarter_offset_decode
from pose_core.geometry import back_project_centre_aligned, back_project_corner_aligned

DARK_TOL = 1e-4  # heatmap pixels (promised tolerance)


@pytest.fixture(scope="module")
def dark(parity_dir: Path) -> dict[str, np.ndarray]:
    with np.load(parity_dir / "dark_64x48_k11.npz") as data:
        return {k: data[k] for k in data.files}


def test_modulation_matches_darkpose_blur(dark: dict[str, np.ndarray]) -> None:
    blurred = _modulate(torch.from_numpy(dark["heatmaps"]), 11).numpy()
    np.testing.assert_allclose(blurred, dark["blurred"], atol=1e-6, rtol=0)


def test_dark_decode_numpy_matches_fixture(dark: dict[str, np.ndarray]) -> None:
    heatmaps = dark["heatmaps"].copy()
    coords, maxvals = dark_decode(heatmaps, kernel=11)
    assert isinstance(coords, np.ndarray) and coords.shape == (2, 17, 2)
    assert maxvals.shape == (2, 17)
    np.testing.assert_array_equal(heatmaps, dark["heatmaps"])  # input untouched
    np.testing.assert_allclose(coords, dark["dark_coords_heatmap"], atol=DARK_TOL, rtol=0)
    np.testing.assert_allclose(maxvals, dark["maxvals"][..., 0], atol=0, rtol=0)
    # the strict border rule: an argmax at x <= 1 keeps its integer coordinates
    argmax = dark["argmax_coords"]
    at_border = argmax[..., 0] <= 1
    assert at_border.any()
    np.testing.assert_array_equal(coords[at_border], argmax[at_border])


def test_dark_decode_torch_in_torch_out(dark: dict[str, np.ndarray]) -> None:
    coords, maxvals = dark_decode(torch.from_numpy(dark["heatmaps"]))
    assert isinstance(coords, torch.Tensor) and isinstance(maxvals, torch.Tensor)
    np.testing.assert_allclose(coords.numpy(), dark["dark_coords_heatmap"], atol=DARK_TOL, rtol=0)


def test_dark_back_projection_corner_aligned(dark: dict[str, np.ndarray]) -> None:
    coords, _ = dark_decode(dark["heatmaps"])
    preds = back_project_corner_aligned(coords, dark["center"], dark["scale"], (48, 64))
    np.testing.assert_allclose(preds, dark["dark_preds"], atol=1e-3, rtol=0)


def test_quarter_offset_decode_matches_hrnet(dark: dict[str, np.ndarray]) -> None:
    coords, maxvals = quarter_offset_decode(dark["heatmaps"])
    preds = back_project_centre_aligned(coords, dark["center"], dark["scale"], (48, 64))
    np.testing.assert_allclose(preds, dark["hrnet_preds"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(maxvals, dark["maxvals"][..., 0], atol=0, rtol=0)


def test_dark_rejects_bad_maps() -> None:
    with pytest.raises(ValueError, match="NaN"):
        dark_decode(np.full((1, 1, 8, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match="N, J, H, W"):
        dark_decode(np.zeros((8, 8), np.float32))
    coords, maxvals = dark_decode(np.zeros((1, 2, 8, 8), np.float32))
    assert np.all(coords == 0) and np.all(maxvals == 0)


def test_dark_offsets_at_points_match_full_map_decode(dark: dict[str, np.ndarray]) -> None:
    maps = torch.from_numpy(dark["heatmaps"]).reshape(34, 64, 48)
    points = torch.from_numpy(dark["argmax_coords"].reshape(34, 2)).long()
    offsets = dark_offsets_at(maps, torch.arange(34), points, kernel=11)
    coords = points.double() + offsets
    expected = dark["dark_coords_heatmap"].reshape(34, 2)
    np.testing.assert_allclose(coords.numpy(), expected, atol=DARK_TOL, rtol=0)
