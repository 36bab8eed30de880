"""The decoder seam: one small protocol every method's codec implements.

A codec turns people into training targets (`encode`) and network outputs into people
(`prepare` -> network -> `merge` -> `decode`). `PoseEstimator` runs any codec the same way:

    prepared = codec.prepare(image_bgr, boxes)            # network inputs, one batch per pass
    outputs  = backend(prepared.inputs[k])                # (and the mirrored input: flip test)
    maps     = codec.merge(outputs, flipped, k, pool)     # test-time augmentation of pass k
    poses    = codec.decode(maps_of_all_passes, prepared, rows, pool)   # people in image pixels

`rows` is the slice of the batch rows that belong to the image (images of one size share a
forward). A method adds one codec file in `pose_core/codecs/` and one entry in `DECODERS`
(`pose_core/codecs/__init__.py`); the model registry names the codec of each model.

Frames: `prepare` takes BGR uint8 (H, W, 3); `decode` returns `Poses` in that image's pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from pose_core.inference.buffers import BufferPool
from pose_core.models.heads import HeadLayout
from pose_core.structures import Poses

__all__ = ["Prepared", "PoseCodec", "TestOptions", "check_scales", "square_input_side"]


def check_scales(scales: Sequence[float]) -> tuple[float, ...]:
    """The test scales as floats; ValueError unless positive, with 1.0 among several (the
    bottom-up methods take their tags from the scale-1.0 pass)."""
    checked = tuple(float(s) for s in scales)
    if not checked or any(s <= 0 for s in checked):
        raise ValueError(f"scales must be positive, got {checked}")
    if len(checked) > 1 and 1.0 not in checked:
        raise ValueError("multi-scale test needs 1.0 among the scales (tags come from it)")
    return checked


def square_input_side(model_side: int, input_size: int | Sequence[int] | None) -> int:
    """The bottom-up network input side: `model_side` for None, else the one side of an int or
    a square (w, h) in [32, 4096] (ValueError otherwise)."""
    if input_size is None:
        return int(model_side)
    wh = ((int(input_size), int(input_size)) if isinstance(input_size, (int, np.integer))
          else (int(input_size[0]), int(input_size[1])))
    if min(wh) < 32 or max(wh) > 4096:
        raise ValueError(f"input_size {wh} out of range [32, 4096]")
    if wh[0] != wh[1]:
        raise ValueError("bottom-up input_size is the square training size (one number)")
    return wh[0]


@dataclass(frozen=True)
class TestOptions:
    """The test-time options of `PoseEstimator`; each codec reads the ones of its method.

    Attributes:
        flip_test: average with the mirrored input (all methods).
        flip_scale: size of the mirrored input relative to the normal one (1.0: the official
            flip test; < 1: a reduced mirrored pass whose outputs are resized back before the
            merge; bottom-up models without offset outputs only, checked by `PoseEstimator`).
        scales: bottom-up test scales.
        top_down_decoder: "quarter" (HRNet) or "dark" (DarkPose).
        dark_kernel: DARK blur size.
        dark_refine: bottom-up DARK re-offsetting (our addition).
        oks_threshold: top-down OKS-NMS threshold.
        grouping: bottom-up grouping options (a `pose_core.grouping.GroupingParams`; None:
            its defaults).
        method_options: options only one method has, as (name, value) pairs (e.g.
            ("dem_mode", "paper")); a codec takes those it knows (`method_option`) and refuses
            the rest (`check_method_options`).
    """

    __test__ = False  # not a pytest class

    flip_test: bool = True
    flip_scale: float = 1.0
    scales: tuple[float, ...] = (1.0,)
    top_down_decoder: str = "quarter"
    dark_kernel: int = 11
    dark_refine: bool = False
    oks_threshold: float = 0.9
    grouping: Any = None
    method_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", check_scales(self.scales))
        if not 0.25 <= float(self.flip_scale) <= 1.0:
            raise ValueError(f"flip_scale must be in [0.25, 1.0], got {self.flip_scale}")
        object.__setattr__(self, "flip_scale", float(self.flip_scale))
        if self.top_down_decoder not in ("quarter", "dark"):
            raise ValueError(
                f"top_down_decoder must be 'quarter' or 'dark': {self.top_down_decoder}"
            )
        object.__setattr__(self, "method_options", tuple(sorted(dict(self.method_options).items())))

    def method_option(self, name: str, default: Any = None) -> Any:
        """The value of a method option, or `default`."""
        return dict(self.method_options).get(name, default)

    def check_method_options(self, known: tuple[str, ...], method: str) -> None:
        """TypeError naming the method options `method` does not have."""
        unknown = sorted(set(dict(self.method_options)) - set(known))
        if unknown:
            raise TypeError(f"unknown PoseEstimator options for {method}: {unknown}")


@dataclass(frozen=True)
class Prepared:
    """One image ready for the network.

    Attributes:
        inputs: one (n, 3, h, w) float32 batch per test pass (bottom-up: per scale, n = 1;
            top-down: one pass, n = number of boxes).
        frame: what `decode` needs to map people back to the image (codec-specific).
        result: set when the image needs no network at all (e.g. no boxes): the answer.
    """

    inputs: tuple[torch.Tensor, ...]
    frame: Any = None
    result: Poses | None = field(default=None)

    @property
    def rows(self) -> int:
        """Batch rows this image adds to each pass."""
        return 0 if not self.inputs else int(self.inputs[0].shape[0])

    def batch_key(self) -> tuple[tuple[int, ...], ...]:
        """Images with equal keys can share one forward per pass."""
        return tuple(tuple(t.shape[1:]) for t in self.inputs)


class PoseCodec(Protocol):
    """What a method provides. Attributes: `head` (the outputs' layout), `flip_test`."""

    head: HeadLayout
    flip_test: bool

    def encode(self, keypoints: np.ndarray, **frame: Any) -> dict[str, np.ndarray]:
        """Training targets of one sample's people (P, J, 3) x, y, visibility."""
        ...

    def prepare(self, image_bgr: np.ndarray, boxes: np.ndarray | None) -> Prepared:
        """Network inputs of one checked image (raises ValueError for unsupported boxes)."""
        ...

    def merge(
        self,
        outputs: Sequence[torch.Tensor],
        flipped: Sequence[torch.Tensor] | None,
        pass_index: int,
        pool: BufferPool | None,
    ) -> Any:
        """Test-time augmentation of one pass over a whole batch (flip back and average)."""
        ...

    def decode(
        self, maps: Sequence[Any], prepared: Prepared, rows: slice, pool: BufferPool | None
    ) -> Poses:
        """People of the image whose batch rows are `rows`, in its pixels."""
        ...
