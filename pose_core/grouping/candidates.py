"""Candidates: heatmap NMS and the top-k maxima per joint with their tags.

Follows the official HigherHRNet (Cheng et al., CVPR 2020) `lib/core/group.py`:
`HeatmapParser.nms` (k x k max-pool, keep the exact maxima) and `HeatmapParser.top_k` (the k =
max_people largest NMS values per joint, their pixel and the L-vector tag there), written anew.
Runs as torch ops on the maps' device. With a detection threshold only the maxima above it are
searched, on the 8 x 8 tiles whose maximum exceeds it (`_tile_max`, shared with refine).

Shapes and frames: heatmaps (J, H, W) in heatmap pixels; flat pixel index y * W + x
(row-major, x = column); outputs val_k (J, k), ind_k (J, k) int64 flat pixels, tag_k (J, k, L),
on the maps' device. Tile maxima are (J, ceil(H / tile), ceil(W / tile)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pose_core.grouping.nms import heatmap_nms, inner_window_max, local_maxima
from pose_core.grouping.tag_sampling import TagSampler, _pick

__all__ = ["top_k_candidates"]

# Tile side for top-k pruning and refine bounds: prunes well, keeps the tile grids small.
_TILE = 8
# Over 1 / n of the tiles above the threshold: the whole-map NMS mask is cheaper than patches.
_ACTIVE_TILE_FRACTION = 4


def _tile_max(heatmaps: torch.Tensor, tile: int) -> torch.Tensor:
    """(J, ceil(H / tile), ceil(W / tile)) block maxima of (J, H, W) maps."""
    num_joints, height, width = heatmaps.shape
    pad_h, pad_w = (-height) % tile, (-width) % tile
    if pad_h or pad_w:
        heatmaps = F.pad(heatmaps, (0, pad_w, 0, pad_h), value=-torch.inf)
    # Rows first (elementwise maxima of whole contiguous rows), then the `tile` times smaller
    # columns, also by elementwise maxima of strided views (faster here than amax over a
    # trailing dimension of size `tile`; timings in docs/benchmark_postprocess.md).
    if tile == 1:
        return heatmaps.clone()
    blocks = heatmaps.reshape(num_joints, (height + pad_h) // tile, tile, width + pad_w)
    rows = torch.maximum(blocks[:, :, 0], blocks[:, :, 1])
    for k in range(2, tile):
        torch.maximum(rows, blocks[:, :, k], out=rows)
    columns = rows.reshape(num_joints, (height + pad_h) // tile, -1, tile)
    out = torch.maximum(columns[..., 0], columns[..., 1])
    for k in range(2, tile):
        torch.maximum(out, columns[..., k], out=out)
    return out


def top_k_candidates(
    heatmaps: torch.Tensor,
    sampler: TagSampler,
    k: int,
    nms_kernel: int = 5,
    above: float | None = None,
    tile_max: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-k NMS maxima per joint.

    Args:
        heatmaps: (J, H, W) float tensor.
        sampler: tag lookup on the same grid.
        k: candidates per joint (clipped to H * W).
        nms_kernel: max-pool window.
        above: when set (>= 0), only maxima with a value above it are needed: NMS is tested on
            those pixels only and the rest of the k slots hold value 0 at pixel 0. The entries
            above the threshold are the same as with the full top-k (except for the order of
            exactly equal values), which is all the matcher uses.
        tile_max: optional precomputed `_tile_max(heatmaps, _TILE)` (shared with refine).

    Returns:
        val_k (J, k) float (descending), ind_k (J, k) int64 flat pixel index y * W + x,
        tag_k (J, k, L), all on the maps' device.
    """
    num_joints, height, width = heatmaps.shape
    k = min(k, height * width)
    if above is not None and above >= 0:
        val_k, ind_k = _top_k_local_maxima_above(heatmaps, above, k, nms_kernel, tile_max)
        joints = torch.arange(num_joints, device=heatmaps.device)[:, None].expand_as(ind_k)
        return val_k, ind_k, sampler(joints, ind_k)
    suppressed = heatmap_nms(heatmaps, nms_kernel).reshape(num_joints, -1)
    val_k, ind_k = suppressed.topk(k, dim=1)
    joints = torch.arange(num_joints, device=heatmaps.device)[:, None].expand_as(ind_k)
    tag_k = sampler(joints, ind_k)
    return val_k, ind_k, tag_k


def _top_k_local_maxima_above(
    heatmaps: torch.Tensor,
    above: float,
    k: int,
    nms_kernel: int,
    tile_max: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k local maxima with value > `above`, examining only tiles whose max exceeds it.

    The maps are cut into _TILE x _TILE tiles; the NMS window test runs on (tile + halo)
    patches of the active tiles only (a pixel above the threshold lies in an active tile).
    Same result as `local_maxima(...) & (heatmaps > above)` (checked by the tests).
    """
    num_joints, height, width = heatmaps.shape
    radius = nms_kernel // 2
    if tile_max is None:
        tile_max = _tile_max(heatmaps, _TILE)
    joint, ty, tx = torch.nonzero(tile_max > above, as_tuple=True)
    if joint.numel() == 0 or joint.numel() * _ACTIVE_TILE_FRACTION > tile_max.numel():
        mask = local_maxima(heatmaps, nms_kernel) & (heatmaps > above)
        return _top_k_of_mask(heatmaps, mask, k)
    dev = heatmaps.device
    side = _TILE + 2 * radius
    offsets = torch.arange(side, device=dev) - radius
    flat = heatmaps.reshape(-1)
    # Gather the (tile + halo) patches straight from the maps (no padded copy of the maps).
    # Tiles whose halo stays inside the map: one fixed (s, s) offset pattern added to each
    # tile's corner offset. Tiles at the border: clamped coordinates, and the pixels outside the
    # map read as -inf, as max-pool padding does.
    border = (ty * _TILE < radius) | (ty * _TILE + _TILE + radius > height)
    border |= (tx * _TILE < radius) | (tx * _TILE + _TILE + radius > width)
    corner = (joint * height + ty * _TILE) * width + tx * _TILE
    if height >= side and width >= side:
        # border tiles read a valid dummy patch here (the one around pixel (radius, radius) of
        # map 0) and are gathered again below
        corner = torch.where(border, radius * width + radius, corner)
        pattern = offsets[:, None] * width + offsets[None, :]
        patches = _pick(flat, corner[:, None, None] + pattern)  # (A, s, s)
    else:  # maps smaller than a patch: every tile is a border tile
        border = torch.ones_like(border)
        patches = flat.new_empty((joint.numel(), side, side))
    edge = torch.nonzero(border).flatten()
    if edge.numel():
        rows = _pick(ty, edge)[:, None] * _TILE + offsets  # map rows of the patch (may be out)
        cols = _pick(tx, edge)[:, None] * _TILE + offsets
        inside_y, inside_x = (rows >= 0) & (rows < height), (cols >= 0) & (cols < width)
        inside = inside_y[:, :, None] & inside_x[:, None, :]
        rows, cols = rows.clamp(0, height - 1), cols.clamp(0, width - 1)
        index = (_pick(joint, edge)[:, None, None] * height + rows[:, :, None]) * width
        index = index + cols[:, None, :]
        patches[edge] = _pick(flat, index).masked_fill_(~inside, -torch.inf)
    # the windows of the inner pixels lie inside the patch: no padding needed
    pooled = inner_window_max(inner_window_max(patches, nms_kernel, -1), nms_kernel, -2)
    inner = slice(radius, radius + _TILE)
    values = patches[:, inner, inner]
    keep = (pooled == values) & (values > above)
    a, r, c = torch.nonzero(keep, as_tuple=True)
    y = ty[a] * _TILE + r
    x = tx[a] * _TILE + c
    order = torch.argsort(joint[a] * (height * width) + y * width + x)  # row-major per joint
    return _top_k_of_entries(joint[a][order], (y * width + x)[order], values[a, r, c][order],
                             num_joints, k)


def _top_k_of_mask(
    heatmaps: torch.Tensor, mask: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per joint, the k largest values among the masked pixels (zeros fill the rest)."""
    num_joints, height, width = heatmaps.shape
    joint, y, x = torch.nonzero(mask, as_tuple=True)  # (joint, y, x) lexicographic order
    pixels = y * width + x
    values = heatmaps.reshape(-1).take(joint * (height * width) + pixels)
    return _top_k_of_entries(joint, pixels, values, num_joints, k)


def _top_k_of_entries(
    joint: torch.Tensor, pixels: torch.Tensor, values: torch.Tensor, num_joints: int, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(J, k) values and pixels from entries sorted by (joint, pixel); zeros fill the rest."""
    dev = values.device
    # per joint, descending value; equal values keep the row-major order
    order = torch.argsort(values, descending=True, stable=True)
    order = order[torch.argsort(joint[order], stable=True)]
    joint, values, pixels = joint[order], values[order], pixels[order]
    counts = torch.bincount(joint, minlength=num_joints)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(joint.numel(), device=dev) - starts[joint]
    take = rank < k
    val_k = torch.zeros((num_joints, k), dtype=values.dtype, device=dev)
    ind_k = torch.zeros((num_joints, k), dtype=torch.long, device=dev)
    val_k[joint[take], rank[take]] = values[take]
    ind_k[joint[take], rank[take]] = pixels[take]
    return val_k, ind_k
