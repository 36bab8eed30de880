"""Flip test and multi-scale aggregation of HigherHRNet outputs (HigherHRNet `tools/valid.py`).

Mirrors `get_multi_stage_outputs` and `aggregate_results` of HigherHRNet `lib/core/inference.py`
with PROJECT2IMAGE on:

- every output but the last is bilinearly upsampled (align_corners=False) to the last one's size
  (1/2 of the input); heatmaps = mean of the heatmap blocks; tags = the tag block (both read
  through the model's `HeadLayout`; HigherHRNet: channels [0, J) of each output, [J, 2J) of
  output 0);
- flip: the network's outputs for the mirrored input are upsampled the same way, mirrored back
  along width (no pixel shift) and their joint channels reordered by the flip index;
  our option (not official): the mirrored pass may run on a reduced input (`flip_scale`,
  `mirrored_input`) whose outputs are first resized to the normal pass's (`resized_like`);
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

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pose_core.grouping import ResizedTags
from pose_core.inference.buffers import BufferPool, new_empty
from pose_core.models.heads import HeadLayout

__all__ = [
    "ScaleMaps", "aggregate_scales", "merge_stage_outputs", "mirrored_input", "resized_like",
    "upsample_bilinear",
]


@dataclass(frozen=True)
class ScaleMaps:
    """Maps of one scale pass at the last output's resolution (1/2 of that pass's input).

    Attributes:
        scale_factor: the pass's scale.
        heatmaps: (N, J, h, w): flip-averaged heatmaps.
        tags: (N, L, J, h, w): tag maps (L = passes x tag values per joint: the normal pass's,
            then the mirrored pass's); for one value per joint a view of channels-last memory
            when upsampled (see `merge_stage_outputs`).
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
    even and odd output columns, then rows: faster than `F.interpolate` on CPU (timings in
    docs/benchmark_postprocess.md, "Design notes"). The values differ from `F.interpolate`'s by rounding only: lerp rounds
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
    head: HeadLayout | int,
    flip_index: Sequence[int],
    scale_factor: float = 1.0,
    pool: BufferPool | None = None,
) -> ScaleMaps:
    """Heatmaps and tags of one scale from the raw network outputs.

    Args:
        outputs: the network outputs, read through `head` (HigherHRNet: [(N, 2J, h/2, w/2) at
            1/4 input, (N, J, h, w) at 1/2]).
        flip_outputs: the outputs for the input mirrored along width (still mirrored) or None.
        head: the outputs' layout (heatmap blocks, tags of D values per joint); an int J
            stands for HigherHRNet's layout over the given outputs
            (`HeadLayout.associative_embedding(J, len(outputs))`).
        flip_index: joint index after a mirror.
        scale_factor: the pass's scale (recorded).
        pool: the maps (and their large intermediates) come from it: valid until its frame
            ends (see `BufferPool`); None allocates them.

    Returns:
        ScaleMaps at the finest heatmap block's resolution.
    """
    if not isinstance(head, HeadLayout):
        head = HeadLayout.associative_embedding(int(head), len(outputs))
    j = head.num_joints
    blocks = head.heatmaps
    size = tuple(blocks[-1].take(outputs).shape[-2:])
    device = outputs[0].device
    reorder = torch.as_tensor(list(flip_index), device=device)

    def flip_back(maps: torch.Tensor, index: torch.Tensor = reorder) -> torch.Tensor:
        return torch.flip(maps.index_select(1, index), dims=[3])

    tags = _merged_tags(outputs, flip_outputs, head, flip_index, size, flip_back, pool)

    def to_last_size(maps: torch.Tensor) -> torch.Tensor:
        return maps if tuple(maps.shape[-2:]) == size else upsample_bilinear(maps, size, pool)

    if flip_outputs is None:
        heatmaps = sum(to_last_size(b.take(outputs)) for b in blocks) / len(blocks)
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
    factor = 1.0 / (2 * len(blocks))
    total: torch.Tensor | None = None
    last_size_sums = []
    for block in blocks:
        maps, flipped = block.take(outputs), block.take(flip_outputs)
        both = torch.add(maps, flip_back(flipped), out=new_empty(pool, maps.shape, maps))
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


def _merged_tags(
    outputs: Sequence[torch.Tensor],
    flip_outputs: Sequence[torch.Tensor] | None,
    head: HeadLayout,
    flip_index: Sequence[int],
    size: tuple[int, ...],
    flip_back: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pool: BufferPool | None,
) -> torch.Tensor:
    """(N, L, J, h, w) tags at `size`: L = passes x D values per joint (normal pass's D
    values, then the mirrored pass's), the official concatenation order.

    Upsampled in channels-last memory: that kernel is faster on CPU than the (N, C, h, w) one
    for these maps (docs/benchmark_postprocess.md, "Design notes"), the parser reads any layout through strides, and its tile bounds run over
    contiguous channel vectors. The values differ from the (N, C, h, w) kernel's by at most
    1 ulp; tags only enter rounded distances and thresholds.
    """
    assert head.tags is not None, "merge_stage_outputs needs a head with tags"
    j, dim = head.num_joints, head.tag_dim
    source = head.tags.take(outputs)
    n = source.shape[0]
    num_passes = 1 if flip_outputs is None else 2
    channels = j * dim
    stacked = new_empty(
        pool, (n, num_passes * channels) + tuple(source.shape[-2:]), source, torch.channels_last
    )
    stacked[:, :channels].copy_(source)
    if flip_outputs is not None:
        # joint-major channels: channel j * D + d of the mirrored pass comes from flip_index[j]
        index = torch.as_tensor(
            [f * dim + d for f in flip_index for d in range(dim)], device=source.device
        )
        stacked[:, channels:].copy_(flip_back(head.tags.take(flip_outputs), index))
    tags = stacked
    if tuple(stacked.shape[-2:]) != size:
        tags = _bilinear_into(
            stacked, new_empty(pool, stacked.shape[:2] + size, source, torch.channels_last)
        )
    if dim == 1:
        return tags.reshape((n, num_passes, j) + size)  # a view
    # (N, passes, J, D, h, w) -> (N, passes x D, J, h, w) (a copy)
    return tags.reshape((n, num_passes, j, dim) + size).transpose(2, 3).reshape(
        (n, num_passes * dim, j) + size
    )


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


def mirrored_input(batch: torch.Tensor, flip_scale: float = 1.0, multiple: int = 1) -> torch.Tensor:
    """The flip test's second input: `batch` (N, C, h, w) mirrored along width and, for
    `flip_scale` != 1, resized (bilinear, align_corners=False) to `flip_scale` of its size,
    each side rounded to `multiple` (at least one multiple)."""
    mirrored = torch.flip(batch, dims=[3])
    if flip_scale == 1.0:
        return mirrored
    height, width = batch.shape[-2:]
    size = [max(multiple, int(round(side * flip_scale / multiple)) * multiple)
            for side in (height, width)]
    return F.interpolate(mirrored, size=size, mode="bilinear", align_corners=False)


def resized_like(
    outputs: Sequence[torch.Tensor], reference: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """Each output resized (bilinear, align_corners=False) to its reference output's size: a
    reduced mirrored pass (`mirrored_input`) brought onto the normal pass's grids, where the
    merge mirrors it back. Bilinear resizing commutes with the mirror, so resizing before the
    flip-back equals resizing after it."""
    return [out if out.shape[-2:] == ref.shape[-2:] else
            F.interpolate(out, size=ref.shape[-2:], mode="bilinear", align_corners=False)
            for out, ref in zip(outputs, reference)]
