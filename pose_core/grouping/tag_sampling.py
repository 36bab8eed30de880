"""Tag samplers: the associative-embedding tag values at given pixels of the heatmap grid.

Follows the official HigherHRNet (Cheng et al., CVPR 2020) tag handling, written anew:
`lib/core/inference.py::get_multi_stage_outputs` resizes the tag maps to the heatmap grid
(PROJECT2IMAGE: `F.interpolate(..., mode="bilinear", align_corners=False)`) and
`lib/core/inference.py::aggregate_results` stacks the normal and flipped passes as the last
axis; `lib/core/group.py::HeatmapParser.top_k` and `HeatmapParser.refine` then read tags at
pixels. `DenseTags` holds the stacked maps in full; `ResizedTags` keeps them at the network's
resolution and evaluates the bilinear projection only at the requested pixels.

Shapes and frames: the heatmap grid is (J, H, W) (heatmap pixels, pixel index y * W + x,
row-major, x = column); tags are (J, H, W, L) for `DenseTags` and (L, J, h, w) at the lower
resolution for `ResizedTags` (L = 2 with flip test). A sampler returns (*S, L) float32 on the
maps' device for joints and flat pixel indices of one shape S. Tile bounds are per
tile x tile block of the (H, W) grid, (L, J', ceil(H / tile), ceil(W / tile)).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

__all__ = ["TagSampler", "DenseTags", "ResizedTags"]

# Tile bounds of at most 1 / n of the joints: copy and bound those alone (all cost far more).
_SUBSET_FRACTION = 2


class TagSampler(Protocol):
    """Tag values at given pixels of the (J, H, W) heatmap grid.

    `num_tags` is L; `height`/`width` the grid; calling with `joints` and `pixels` (int64
    tensors of one shape S, pixels = y * W + x) returns (*S, L) float32 on the maps' device.
    """

    num_tags: int
    height: int
    width: int

    def __call__(self, joints: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor: ...

    def dense(self, joint: int) -> torch.Tensor:
        """(L, H * W) float32: every tag value of one joint, row-major."""
        ...

    def tile_bounds(
        self, tile: int, joints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Lower and upper bounds (L, J', ceil(H / tile), ceil(W / tile)) of the tag values in
        each tile x tile block of the given joints (all when None); may be loose, never tighter
        than the values (rounding included)."""
        ...
class DenseTags:
    """Tag maps given in full, (J, H, W, L)."""

    def __init__(self, tags: torch.Tensor) -> None:
        if tags.ndim != 4:
            raise ValueError(f"tags must be (J, H, W, L), got {tuple(tags.shape)}")
        self.num_tags = int(tags.shape[3])
        self.height = int(tags.shape[1])
        self.width = int(tags.shape[2])
        self._flat = tags.reshape(tags.shape[0], -1, tags.shape[3])

    def __call__(self, joints: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        return self._flat[joints, pixels]

    def dense(self, joint: int) -> torch.Tensor:
        return self._flat[joint].t().contiguous()

    def tile_bounds(
        self, tile: int, joints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        flat = self._flat if joints is None else self._flat[joints]
        maps = flat.reshape(-1, self.height, self.width, self.num_tags).permute(3, 0, 1, 2)
        upper = F.max_pool2d(maps, tile, stride=tile, ceil_mode=True)
        lower = -F.max_pool2d(-maps, tile, stride=tile, ceil_mode=True)
        return lower, upper


class ResizedTags:
    """Tag maps known at a lower resolution, sampled lazily at the target grid.

    Equivalent (to float rounding, ~1e-7) to `F.interpolate(maps, size=(H, W),
    mode="bilinear", align_corners=False)` evaluated at the requested pixels, without building
    the full (J, H, W, L) tensor (the official PROJECT2IMAGE step).

    Args:
        maps: (L, J, h, w) float tensor: L tag maps per joint (normal pass, flipped pass), any
            layout whose flat pixel index y * w + x is one stride (else copied contiguous).
        size_hw: target (H, W).
    """

    def __init__(self, maps: torch.Tensor, size_hw: tuple[int, int]) -> None:
        if maps.ndim != 4:
            raise ValueError(f"tag maps must be (L, J, h, w), got {tuple(maps.shape)}")
        self.num_tags = int(maps.shape[0])
        self.height, self.width = int(size_hw[0]), int(size_hw[1])
        pixel_linear = maps.stride(2) == maps.shape[3] * maps.stride(3) or maps.shape[2] == 1
        if not pixel_linear or min(maps.stride()) <= 0:
            maps = maps.contiguous()
        # (L, J, h * w): a view for any layout whose flat pixel index y * w + x is one stride,
        # e.g. the channels of a channels-last upsampling output (pixel-major memory); read
        # through offsets from its strides
        self._maps = maps.reshape(maps.shape[0], maps.shape[1], -1)
        self._memory = _memory_view(self._maps)
        self._in_h, self._in_w = int(maps.shape[2]), int(maps.shape[3])
        dev = maps.device
        self._y0, self._y1, self._wy = _linear_weights(self._in_h, self.height, dev)
        self._x0, self._x1, self._wx = _linear_weights(self._in_w, self.width, dev)

    def __call__(self, joints: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
        y = torch.div(pixels, self.width, rounding_mode="floor")
        x = pixels - y * self.width
        wy, wx = _pick(self._wy, y), _pick(self._wx, x)
        component_stride, joint_stride, pixel_stride = self._maps.stride()
        base = joints * joint_stride
        row0 = base + _pick(self._y0, y) * (self._in_w * pixel_stride)
        row1 = base + _pick(self._y1, y) * (self._in_w * pixel_stride)
        x0, x1 = _pick(self._x0, x) * pixel_stride, _pick(self._x1, x) * pixel_stride
        memory = self._memory
        out = []
        for component in range(self.num_tags):
            r0, r1 = row0 + component * component_stride, row1 + component * component_stride
            top = _pick(memory, r0 + x0) * (1 - wx) + _pick(memory, r0 + x1) * wx
            bottom = _pick(memory, r1 + x0) * (1 - wx) + _pick(memory, r1 + x1) * wx
            out.append(top * (1 - wy) + bottom * wy)
        return torch.stack(out, dim=-1)

    def tile_bounds(
        self, tile: int, joints: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # A bilinear value lies between the min and max of its source pixels; the sources of a
        # tile's rows a..b are rows y0[a]..y1[b] (monotone), same for columns.
        # Regular windows (e.g. x2): bounds of all joints from views of the maps (no copy),
        # then the requested joints (a looser margin than for the subset alone is still valid).
        # For a few joints (e.g. one person with two missing joints), a copy of those joints'
        # maps first (see _SUBSET_FRACTION).
        if joints is not None and _SUBSET_FRACTION * joints.numel() <= self._maps.shape[1]:
            subset = self._maps[:, joints].reshape(self.num_tags, -1, self._in_h, self._in_w)
            pooled = self._pooled_bounds(subset, tile)
            if pooled is not None:
                return pooled
        pooled = self._pooled_bounds(
            self._maps.reshape(self.num_tags, -1, self._in_h, self._in_w), tile
        )
        every_joint = joints is None or (
            joints.numel() == self._maps.shape[1]
            and bool((joints == torch.arange(joints.numel(), device=joints.device)).all())
        )
        if pooled is not None:
            return pooled if every_joint else (pooled[0][:, joints], pooled[1][:, joints])
        maps = self._maps if joints is None else self._maps[:, joints]
        maps = maps.reshape(self.num_tags, -1, self._in_h, self._in_w)
        starts_y = torch.arange(0, self.height, tile, device=maps.device)
        ends_y = torch.clamp(starts_y + tile - 1, max=self.height - 1)
        starts_x = torch.arange(0, self.width, tile, device=maps.device)
        ends_x = torch.clamp(starts_x + tile - 1, max=self.width - 1)
        lower, upper = _range_min_max(maps, self._y0[starts_y], self._y1[ends_y], dim=2)
        lower = _range_min_max(lower, self._x0[starts_x], self._x1[ends_x], dim=3)[0]
        upper = _range_min_max(upper, self._x0[starts_x], self._x1[ends_x], dim=3)[1]
        margin = 1e-5 * (1.0 + torch.maximum(lower.abs(), upper.abs()))
        return lower - margin, upper + margin

    def _pooled_bounds(
        self, maps: torch.Tensor, tile: int
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Same bounds with one max-pool when the source windows are regular (e.g. x2)."""
        params = []
        for size_out, lo_all, hi_all in (
            (self.height, self._y0, self._y1),
            (self.width, self._x0, self._x1),
        ):
            starts = torch.arange(0, size_out, tile)
            ends = torch.clamp(starts + tile - 1, max=size_out - 1)
            lo, hi = lo_all.cpu()[starts], hi_all.cpu()[ends]
            if len(starts) < 2:
                return None
            stride = int(lo[1] - lo[0]) if int(lo[0]) > 0 else int(lo[1] + 1)
            pad = stride - int(lo[1]) if len(lo) > 1 else 0
            kernel = int((hi - lo).max()) + 1
            t = torch.arange(len(starts))
            ok = stride > 0 and 0 <= pad < kernel and pad <= kernel // 2
            ok = ok and bool(((t * stride - pad).clamp(min=0) == lo).all())
            ok = ok and bool(((t * stride - pad + kernel - 1).clamp(max=int(lo_all.max()) + 1)
                              >= hi).all())
            if not ok:
                return None
            params.append((kernel, stride, pad))
        (ky, sy, py), (kx, sx, px) = params
        ty, tx = -(-self.height // tile), -(-self.width // tile)
        # Separable strided window max/min (rows, then columns): a few elementwise maxima on
        # strided views instead of an overlapping max_pool2d (same values, max/min are exact).
        # Pixel-major memory (channels-last tags) is windowed as (h, w, L, J): every
        # elementwise op then runs over contiguous channel vectors.
        pixel_major = maps.stride(1) < maps.stride(3)
        if pixel_major:
            maps = maps.permute(2, 3, 0, 1)
        rows = 0 if pixel_major else 2
        upper = _strided_window(maps, rows, ky, sy, py, ty, torch.maximum, -torch.inf)
        upper = _strided_window(upper, rows + 1, kx, sx, px, tx, torch.maximum, -torch.inf)
        lower = _strided_window(maps, rows, ky, sy, py, ty, torch.minimum, torch.inf)
        lower = _strided_window(lower, rows + 1, kx, sx, px, tx, torch.minimum, torch.inf)
        if pixel_major:
            upper, lower = upper.permute(2, 3, 0, 1), lower.permute(2, 3, 0, 1)
        margin = 1e-5 * (1.0 + float(torch.maximum(upper.max(), -lower.min())))
        return lower - margin, upper + margin

    def dense(self, joint: int) -> torch.Tensor:
        planes = self._maps[:, joint].reshape(self.num_tags, 1, self._in_h, self._in_w)
        full = F.interpolate(
            planes, size=(self.height, self.width), mode="bilinear", align_corners=False
        )
        return full.reshape(self.num_tags, -1)


def _strided_window(
    maps: torch.Tensor, dim: int, kernel: int, stride: int, pad: int, count: int, op, fill: float
) -> torch.Tensor:
    """out[t] = op over maps[t * stride - pad + k], k < kernel, along `dim`, `fill` outside
    (= max_pool with that window, stride and padding, ceil_mode, for op = maximum);
    no padded copy of the maps."""
    if pad == 1 and stride % 2 == 0 and kernel == stride + 2:
        return _paired_window(maps, dim, stride // 2, count, op, fill)
    size = maps.shape[dim]
    lead = (slice(None),) * dim
    shape = list(maps.shape)
    shape[dim] = count
    acc = torch.full(shape, fill, dtype=maps.dtype, device=maps.device)
    for k in range(kernel):
        # windows t whose k-th source index t * stride - pad + k lies inside the map
        first = max(0, -(-(pad - k) // stride))
        last = min(count - 1, (size - 1 + pad - k) // stride)
        if last < first:
            continue
        src = first * stride - pad + k
        part = maps[lead + (slice(src, src + (last - first) * stride + 1, stride),)]
        view = acc[lead + (slice(first, last + 1),)]
        op(view, part, out=view)
    return acc


def _paired_window(
    maps: torch.Tensor, dim: int, half_stride: int, count: int, op, fill: float
) -> torch.Tensor:
    """`_strided_window` for kernel 2s + 2, stride 2s, padding 1 (s = `half_stride`): the
    source windows of the tiles of a 2x bilinear projection (tile 8: rows 4t - 1 .. 4t + 4).
    Such a window is s + 1 consecutive pairs (2k - 1, 2k): one op over the pairs, then s ops
    over the windows, fewer elementwise ops than one op per window row (timings in
    docs/benchmark_postprocess.md, "Design notes"). Same values (op is exact)."""
    size = maps.shape[dim]
    num_pairs = half_stride * count + 1
    shape = list(maps.shape)
    shape[dim] = num_pairs
    pairs = maps.new_empty(shape)
    pairs.narrow(dim, 0, 1).copy_(maps.narrow(dim, 0, 1))  # (-1, 0): row -1 is padding
    both = min(num_pairs - 1, (size - 1) // 2)  # pairs 1..both have both rows inside
    parity = [slice(None)] * maps.ndim
    parity[dim] = slice(1, 2 * both, 2)
    odd_rows = maps[tuple(parity)]
    parity[dim] = slice(2, 2 * both + 1, 2)
    op(odd_rows, maps[tuple(parity)], out=pairs.narrow(dim, 1, both))
    rest = num_pairs - 1 - both
    if rest > 0:  # pairs past the end: their first row (even size) or nothing
        tail = pairs.narrow(dim, both + 1, rest)
        tail.fill_(fill)
        if 2 * (both + 1) - 1 <= size - 1:
            tail.narrow(dim, 0, 1).copy_(maps.narrow(dim, size - 1, 1))
    windows = []
    for i in range(half_stride + 1):
        parity[dim] = slice(i, i + half_stride * (count - 1) + 1, half_stride)
        windows.append(pairs[tuple(parity)])
    out = op(windows[0], windows[1])
    for window in windows[2:]:
        op(out, window, out=out)
    return out


def _range_min_max(
    maps: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Min and max of `maps` over index ranges [lo[t], hi[t]] along `dim` (one entry per t)."""
    span = int((hi - lo).max().item()) + 1 if lo.numel() else 1
    low = high = maps.index_select(dim, lo)
    for k in range(1, span):
        part = maps.index_select(dim, torch.minimum(lo + k, hi))
        low, high = torch.minimum(low, part), torch.maximum(high, part)
    return low, high


def _linear_weights(
    size_in: int, size_out: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weight of the second neighbour, align_corners=False (torch rule)."""
    scale = torch.tensor(size_in / size_out, dtype=torch.float32)
    dst = torch.arange(size_out, dtype=torch.float32)
    src = torch.clamp(scale * (dst + 0.5) - 0.5, min=0.0)
    i0 = torch.clamp(src.floor().long(), max=size_in - 1)
    i1 = torch.where(i0 < size_in - 1, i0 + 1, i0)
    w1 = torch.clamp(src - i0.float(), 0.0, 1.0)
    return i0.to(device), i1.to(device), w1.to(device)


def _pick(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values[index] for 1-D `values` and an integer index of any shape. `index_select`: the
    same values as advanced indexing or `take`, and faster on the CPU for the small gathers
    of the grouping modules (timings in docs/benchmark_postprocess.md, "Design notes")."""
    return values.index_select(0, index.reshape(-1)).reshape(index.shape)


def _memory_view(maps: torch.Tensor) -> torch.Tensor:
    """1-D view over the memory a tensor with positive strides spans (for gathers with offsets
    computed from its strides: no copy, whatever the layout)."""
    span = 1 + sum((size - 1) * stride for size, stride in zip(maps.shape, maps.stride()))
    return maps.as_strided((span,), (1,))
