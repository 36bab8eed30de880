"""Flip test and multi-scale aggregation of HigherHRNet outputs (official test path, spec d.3).

Mirrors `get_multi_stage_outputs` and `aggregate_results` of HigherHRNet `lib/core/inference.py`
with PROJECT2IMAGE on:

- every output but the last is bilinearly upsampled (align_corners=False) to the last one's size
  (1/2 of the input); heatmaps = mean of the outputs' first J channels; tags = channels J: of
  output 0;
- flip: the network's outputs for the mirrored input are upsampled the same way, mirrored back
  along width (no pixel shift) and their joint channels reordered by the flip index;
- per scale, heatmaps (normal + flipped) / 2 are projected (bilinear) to `base_size` (the network
  input size at scale 1.0) and summed over scales, then divided by the number of scales;
- tags come from scale 1.0 only (or from the single scale when only one is used), normal then
  flipped, stacked on a last axis of length L.

The heatmaps are built in full at base size; the tags are kept at 1/2 resolution and sampled
lazily by the parser (`ResizedTags`), which is the same bilinear projection evaluated only where
the parser needs it. Bilinear upsampling is linear and commutes with the mirror along width, so
the flip-back and the normal + flipped sum are done at each output's own resolution before any
upsampling: one 1/4 -> 1/2 upsampling of J heatmap channels, one of both tag passes (in
channels-last memory, the faster kernel) and one projection of J channels to base size, instead
of one per pass and output. Results agree with the official order to float rounding (~1e-7;
checked against the official fixtures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pose_core.grouping.tag_grouping import ResizedTags
from pose_core.inference.buffers import BufferPool, new_empty

__all__ = ["ScaleMaps", "merge_stage_outputs", "aggregate_scales", "upsample_bilinear"]


@dataclass(frozen=True)
class ScaleMaps:
    """Maps of one scale pass at the last output's resolution (1/2 of that pass's input).

    Attributes:
        scale_factor: the pass's scale.
        heatmaps: (N, J, h, w): flip-averaged heatmaps.
        tags: (N, L, J, h, w): tag maps (L = 2 with flip: normal, flipped); a view of
            channels-last memory when upsampled (see `merge_stage_outputs`).
    """

    scale_factor: float
    heatmaps: torch.Tensor
    tags: torch.Tensor


def upsample_bilinear(
    maps: torch.Tensor, size_hw: Sequence[int], pool: BufferPool | None = None
) -> torch.Tensor:
    """Bilinear resize of (N, C, h, w) maps to `size_hw`, align_corners=False (torch's rule).

    An exact 2x resize (the 1/4 -> 1/2 and 1/2 -> input steps of HigherHRNet) runs separably:
    along each axis every output is a lerp of two neighbours with weight 1/4 or 3/4 (the first
    and last output repeat the edge input, as the clamped source index gives), written into the
    even and odd output columns, then rows. On this CPU that is 6-7 ms against 11-21 ms for
    `F.interpolate` (17 maps of 256 x 384 -> 512 x 768, 1 thread; 3.6-4.0 vs 9.8-12 ms with 2
    threads). The values differ from `F.interpolate`'s by rounding only: lerp rounds
    a + w (b - a) where the kernel rounds w0 a + w1 b (~15 % of the pixels differ, by a few ulp
    of the maps' magnitude). Any other size goes to torch's bilinear kernel (F.interpolate's).

    `pool`: the output (and the intermediate of the 2x path) come from it (see `BufferPool`).
    """
    height, width = int(size_hw[0]), int(size_hw[1])
    exact_2x = (height, width) == (2 * maps.shape[-2], 2 * maps.shape[-1])
    if not exact_2x or maps.shape[-2] == 0 or maps.shape[-1] == 0:
        return _bilinear_into(maps, new_empty(pool, maps.shape[:-2] + (height, width), maps))
    return _double_along(_double_along(maps, -1, pool), -2, pool)


def _bilinear_into(maps: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """F.interpolate(maps, size=out's size, bilinear, align_corners=False) written into `out`
    (same kernel and arguments; it keeps `out`'s memory format)."""
    torch.ops.aten.upsample_bilinear2d.out(
        maps, list(out.shape[-2:]), False, None, None, out=out
    )
    return out


def _double_along(maps: torch.Tensor, dim: int, pool: BufferPool | None = None) -> torch.Tensor:
    """2x linear upsampling along `dim` (-1 or -2), align_corners=False: output 2i is
    lerp(x[i - 1], x[i], 3/4), output 2i + 1 is lerp(x[i], x[i + 1], 1/4), edges clamped."""
    size = maps.shape[dim]
    shape = list(maps.shape)
    shape[dim] = 2 * size
    out = new_empty(pool, shape, maps)
    parity = [slice(None)] * out.ndim
    parity[dim] = slice(0, None, 2)
    even = out[tuple(parity)]
    parity[dim] = slice(1, None, 2)
    odd = out[tuple(parity)]
    low, high = maps.narrow(dim, 0, size - 1), maps.narrow(dim, 1, size - 1)
    torch.lerp(low, high, 0.75, out=even.narrow(dim, 1, size - 1))
    torch.lerp(low, high, 0.25, out=odd.narrow(dim, 0, size - 1))
    even.narrow(dim, 0, 1).copy_(maps.narrow(dim, 0, 1))
    odd.narrow(dim, size - 1, 1).copy_(maps.narrow(dim, size - 1, 1))
    return out


def merge_stage_outputs(
    outputs: Sequence[torch.Tensor],
    flip_outputs: Sequence[torch.Tensor] | None,
    num_joints: int,
    flip_index: Sequence[int],
    scale_factor: float = 1.0,
    pool: BufferPool | None = None,
) -> ScaleMaps:
    """Heatmaps and tags of one scale from the raw network outputs.

    Args:
        outputs: HigherHRNet outputs [(N, 2J, h/2, w/2) at 1/4 input, (N, J, h, w) at 1/2].
        flip_outputs: the outputs for the input mirrored along width (still mirrored) or None.
        num_joints: J.
        flip_index: joint index after a mirror.
        scale_factor: the pass's scale (recorded).
        pool: the maps (and their large intermediates) come from it: valid until its frame
            ends (see `BufferPool`); None allocates them.

    Returns:
        ScaleMaps at the last output's resolution.
    """
    j = num_joints
    n = outputs[0].shape[0]
    size = tuple(outputs[-1].shape[-2:])
    reorder = torch.as_tensor(list(flip_index), device=outputs[0].device)

    def flip_back(maps: torch.Tensor) -> torch.Tensor:
        return torch.flip(maps.index_select(1, reorder), dims=[3])

    # Tags: channels J: 2J of output 0 (normal, then the flipped pass mirrored back), upsampled
    # in channels-last memory: that kernel is ~2.4x faster here than the (N, C, h, w) one for
    # these maps (34 channels 1/4 -> 1/2: 2.4 vs 5.7 ms, 1 thread), the parser reads any layout
    # through strides, and its tile bounds run over contiguous channel vectors. The values
    # differ from the (N, C, h, w) kernel's by at most 1 ulp; tags only enter rounded
    # distances and thresholds. The heatmaps are upsampled by `upsample_bilinear`.
    source = outputs[0]
    num_passes = 1 if flip_outputs is None else 2
    stacked = new_empty(
        pool, (n, num_passes * j) + tuple(source.shape[-2:]), source, torch.channels_last
    )
    stacked[:, :j].copy_(source[:, j : 2 * j])
    if flip_outputs is not None:
        stacked[:, j:].copy_(flip_back(flip_outputs[0][:, j : 2 * j]))
    tags = stacked
    if tuple(stacked.shape[-2:]) != size:
        tags = _bilinear_into(
            stacked, new_empty(pool, stacked.shape[:2] + size, source, torch.channels_last)
        )
    tags = tags.reshape((n, num_passes, j) + size)  # a view

    def to_last_size(maps: torch.Tensor) -> torch.Tensor:
        return maps if tuple(maps.shape[-2:]) == size else upsample_bilinear(maps, size, pool)

    if flip_outputs is None:
        heatmaps = sum(to_last_size(out[:, :j]) for out in outputs) / len(outputs)
        return ScaleMaps(scale_factor, heatmaps, tags)
    # Flip-back (mirror + joint reorder) and the sum of the two passes happen at each output's
    # own resolution, before upsampling: bilinear upsampling (align_corners=False) is linear and
    # commutes with a mirror along width, so this equals the official order (upsample each pass,
    # flip back, average) to float rounding, with one upsampling of J heatmap channels instead of
    # one per pass.
    # The mean's 1 / (2 x outputs) is applied to each lower-resolution sum before its
    # upsampling and to the last-size sums inside the final add (alpha): one pass over the
    # last-size maps fewer than a sum and a division; for HigherHRNet (2 outputs, factor 1/4,
    # a power of two: scaling commutes with rounding) the same bits as (up(s0) + s1) / 4.
    factor = 1.0 / (2 * len(outputs))
    total: torch.Tensor | None = None
    last_size_sums = []
    for out, flipped in zip(outputs, flip_outputs):
        both = torch.add(
            out[:, :j], flip_back(flipped[:, :j]), out=new_empty(pool, out[:, :j].shape, out)
        )
        if tuple(both.shape[-2:]) == size:
            last_size_sums.append(both)
            continue
        heat = upsample_bilinear(both.mul_(factor), size, pool)
        # in place: heat and total are this function's own tensors
        total = heat if total is None else total.add_(heat)
    for both in last_size_sums:
        total = both.mul_(factor) if total is None else total.add_(both, alpha=factor)
    assert total is not None
    return ScaleMaps(scale_factor, total, tags)


def aggregate_scales(
    scale_maps: Sequence[ScaleMaps],
    base_size_wh: tuple[int, int],
    index: int = 0,
    pool: BufferPool | None = None,
) -> tuple[torch.Tensor, ResizedTags]:
    """Final heatmaps (projected to base size, averaged over scales) and tags of one image.

    Args:
        scale_maps: the passes (any order; the official code runs largest scale first).
        base_size_wh: (W, H) network input size at scale 1.0.
        index: image index within the batch.
        pool: the projected heatmaps come from it: valid until its frame ends (see
            `BufferPool`); None allocates them.

    Returns:
        heatmaps (J, H, W) float32 at base size; ResizedTags sampling the (J, H, W, L) tags.

    Raises:
        ValueError: several scales without 1.0 (the official code then has no tags).
    """
    if not scale_maps:
        raise ValueError("no scale passes")
    width, height = int(base_size_wh[0]), int(base_size_wh[1])
    ordered = sorted(scale_maps, key=lambda m: m.scale_factor, reverse=True)
    total: torch.Tensor | None = None
    for maps in ordered:
        projected = upsample_bilinear(
            maps.heatmaps[index : index + 1].float(), (height, width), pool
        )[0]
        # in place: `total` is this function's own tensor (same values as total + projected)
        total = projected if total is None else total.add_(projected)
    assert total is not None
    final = total if len(ordered) == 1 else total.div_(float(len(ordered)))
    if len(ordered) == 1:
        tag_pass = ordered[0]
    else:
        ones = [m for m in ordered if m.scale_factor == 1.0]
        if not ones:
            raise ValueError(
                "multi-scale test needs the scale 1.0 among the scales (tags come from it)"
            )
        tag_pass = ones[0]
    return final, ResizedTags(tag_pass.tags[index].float(), (height, width))
