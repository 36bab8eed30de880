"""Refine: fill every person's missing joints from the full maps, all people at once.

Follows the official HigherHRNet (Cheng et al., CVPR 2020) `lib/core/group.py::
HeatmapParser.refine` (called per person by `HeatmapParser.parse`), written anew: for every
person, every joint whose value is 0 is searched on the full map with score
det_j - round(||tag_j - mean tag||) (mean over the person's joints with value > 0; first
row-major argmax), then value and quarter offset as in `adjust`; it is filled when the value
found is > 0. Instead of scanning the full map per (person, missing joint) pair, an exact
branch and bound over _TILE x _TILE tiles finds the same pixel (see `refine_people`); the
searches themselves are in `refine_search`. Torch ops on the maps' device; the people stay a
numpy array on the host.

Shapes and frames: grouped (P, J, 3 + L) rows x, y, value, tags in heatmap pixels (x, y =
index + 0.5 +- 0.25 after adjust); heatmaps (J, H, W), the aggregated maps; flat pixel index
y * W + x (row-major, x = column); Q pairs (person, missing joint) with mean tags (Q, L);
tiles index ty * tiles_x + tx of the (ceil(H / _TILE), ceil(W / _TILE)) tile grid.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from pose_core.grouping.adjust import _quarter_offsets
from pose_core.grouping.candidates import _TILE, _tile_max
from pose_core.grouping.refine_search import (
    _CHUNK_ELEMENTS,
    _Entries,
    _refine_scores,
    _search_per_joint,
    _search_sparse_sub,
)
from pose_core.grouping.tag_sampling import TagSampler, _pick

__all__ = ["refine_people"]

# Tiles per wide pair scored exactly to raise LB: few, yet usually enough to reach the optimum.
_BEST_TILES = 16
# Narrow pair: at most 1 / n of the tiles reach its LB, so bounding only those is cheaper.
_NARROW_FRACTION = 8
# Tiles sampled per joint for the narrow quantile: a full kthvalue costs more than it decides.
_NARROW_SAMPLE_TILES = 1024
# Default `sparse_entry_limit`: caps the memory of the sparse search's (pair, pixel) entries.
_SPARSE_ENTRY_LIMIT = 1 << 24
# Cost of a sparse entry in dense scores: ~10 ops, but best first scores only a fraction.
_SPARSE_ENTRY_COST = 3
# Cost of projecting one pixel's tags (per-joint search over a tile union), in dense scores.
_PROJECTION_COST = 8


class _ScoredTiles(NamedTuple):
    """The wide pairs' best tiles, scored exactly: pair indices (Q',), tile indices (Q', m),
    best score (Q',) and its first pixel (Q',)."""

    pairs: torch.Tensor
    tiles: torch.Tensor
    scores: torch.Tensor
    first: torch.Tensor


def refine_people(
    grouped: np.ndarray,
    heatmaps: torch.Tensor,
    sampler: TagSampler,
    sparse_entry_limit: int = _SPARSE_ENTRY_LIMIT,
    tile_max: torch.Tensor | None = None,
    sub_tile_max: torch.Tensor | None = None,
    seed_pixels: torch.Tensor | None = None,
) -> np.ndarray:
    """Official `refine` for every person at once; fills joints whose value is 0.

    Finds, for every (person, missing joint) pair, the exact first row-major argmax of
    det_j - round(||tag_j - prev||) over the full map (prev = mean tag of the person's detected
    joints) by branch and bound instead of scanning the full map per pair:

    1. a lower bound LB per pair from the exact scores of the `seed_pixels` of its joint (the
       parser passes the top-k NMS maxima: a person whose mean tag is another person's tag,
       e.g. a one-joint "ghost" person, usually scores best at such a peak);
    2. per 8 x 8 tile, an upper bound of the score: tile max of det_j minus the rounded
       distance from prev to the tile's tag box (round is monotone, so no pixel of the tile
       scores more). "Narrow" pairs, whose LB exceeds the det maximum of all but at most
       1 / 8 of the tiles (estimated on a sample of the tiles), get it only on those tiles;
       the others on every tile, and LB is raised to the exact best score over their 16
       best tiles;
    3. the exact search runs only over tiles whose bound reaches LB and pixels with
       det_j - tile gap >= LB: by default as sparse (pair, pixel) entries with a segment max
       (smallest index on ties), best first (`_search_sparse_sub`: the pair's 4 x 4 sub-tiles
       by descending bound, in rounds, each round pruned by the best exact score so far;
       it starts from the first argmax of the 16 tiles already scored and skips them), or
       joint by joint over the union of the pairs' tiles (dense tag projection when large)
       when a simple cost model says so (always above `sparse_entry_limit` entries).

    The result equals the official full scan (the worst case, e.g. random-weight maps, is a
    full scan); only the amount of work changes.

    Args:
        grouped: (P, J, 3 + L) float32 after adjust.
        heatmaps: (J, H, W) aggregated maps.
        sampler: tags on the same grid.
        sparse_entry_limit: never use the sparse search above this many entries (0: always
            per joint; negative: always sparse, whatever the cost model says).
        tile_max: optional precomputed `_tile_max(heatmaps, _TILE)` of all joints.
        sub_tile_max: optional precomputed `_tile_max(heatmaps, _TILE // 2)` of all joints.
        seed_pixels: optional (J, k) int64 flat pixels (y * W + x) per joint whose exact
            scores seed the lower bound (any pixels are valid: their heatmap values and tags
            are read again here, so the result never depends on them, only the work does).

    Returns:
        A float32 copy of `grouped` with refined joints filled (their tag columns stay 0).
    """
    out = grouped.astype(np.float32, copy=True)
    if out.shape[0] == 0 or not (missing := out[:, :, 2] == 0).any():
        return out
    dev = heatmaps.device
    det = heatmaps.reshape(heatmaps.shape[0], -1)
    prev = _mean_detected_tags(out, heatmaps, sampler)
    pair_people, pair_joints = np.nonzero(missing)
    qj = torch.as_tensor(pair_joints, device=dev)
    qprev = prev[torch.as_tensor(pair_people, device=dev)]
    if tile_max is None:
        if sub_tile_max is None:
            sub_tile_max = _tile_max(heatmaps, _TILE // 2)
        tile_max = _tile_max(sub_tile_max, 2)  # max of 4 x 4 maxima: exact
    lower = _seed_lower_bound(det, sampler, qj, qprev, seed_pixels)
    entries, scored = _tiles_to_search(heatmaps, sampler, tile_max, qj, qprev, lower)
    if _prefer_sparse_search(entries, qj, tile_max, sparse_entry_limit):
        if sub_tile_max is None:
            sub_tile_max = _tile_max(heatmaps, _TILE // 2)
        entries, start = _skip_scored_tiles(entries, scored, len(qj), tile_max)
        best_pix = _search_sparse_sub(det, sampler, qj, qprev, lower, entries, sub_tile_max,
                                      tile_max.shape[2], start)
    else:
        tile_ok = torch.zeros((len(qj), tile_max[0].numel()), dtype=torch.bool, device=dev)
        tile_ok[entries.pairs, entries.tiles] = True
        best_pix = _search_per_joint(det, sampler, qj, qprev, lower, tile_ok,
                                     tuple(tile_max.shape[1:]), tuple(heatmaps.shape[1:]))
    _fill_found_joints(out, det, qj, qprev, best_pix, (pair_people, pair_joints),
                       heatmaps.shape[2])
    return out


def _mean_detected_tags(
    people: np.ndarray, heatmaps: torch.Tensor, sampler: TagSampler
) -> torch.Tensor:
    """(P, L) mean tag of each person's detected joints (value > 0), summed in joint order in
    float32 (as numpy's axis-0 mean of the official list does); NaN for a person without any
    (like numpy's empty mean)."""
    dev = heatmaps.device
    num_joints, height, width = heatmaps.shape
    num_people = people.shape[0]
    found = people[:, :, 2] > 0
    xs = torch.as_tensor(people[:, :, 0].astype(np.int32).astype(np.int64), device=dev)
    ys = torch.as_tensor(people[:, :, 1].astype(np.int32).astype(np.int64), device=dev)
    pix = torch.clamp(ys, 0, height - 1) * width + torch.clamp(xs, 0, width - 1)
    joint_ids = torch.arange(num_joints, device=dev)[None, :].expand(num_people, -1)
    person_tags = sampler(joint_ids, pix)  # (P, J, L)
    found_t = torch.as_tensor(found, device=dev)
    acc = torch.zeros((num_people, sampler.num_tags), dtype=torch.float32, device=dev)
    for j in range(num_joints):
        acc = acc + torch.where(found_t[:, j, None], person_tags[:, j].float(), 0.0)
    counts = found_t.sum(dim=1, keepdim=True).to(torch.float32)
    return acc / counts


def _seed_lower_bound(
    det: torch.Tensor,
    sampler: TagSampler,
    qj: torch.Tensor,
    qprev: torch.Tensor,
    seed_pixels: torch.Tensor | None,
) -> torch.Tensor:
    """(Q,) LB per pair: the best exact score over its joint's seed pixels (same arithmetic as
    the search; -inf without seeds or with a NaN mean tag)."""
    dev = det.device
    num_pixels = det.shape[1]
    lower = torch.full((len(qj),), -torch.inf, dtype=torch.float32, device=dev)
    if seed_pixels is None or not seed_pixels.numel():
        return lower
    seeds = seed_pixels.to(device=dev, dtype=torch.long).index_select(0, qj)  # (Q, k)
    seed_tags = sampler(qj[:, None].expand_as(seeds), seeds).permute(2, 0, 1)
    seed_det = _pick(det.reshape(-1), qj[:, None] * num_pixels + seeds)
    seed_scores = torch.nan_to_num(
        _refine_scores(seed_det, seed_tags, qprev).amax(dim=1), nan=-torch.inf
    )
    return torch.maximum(lower, seed_scores)


def _tiles_to_search(
    heatmaps: torch.Tensor,
    sampler: TagSampler,
    tile_max: torch.Tensor,
    qj: torch.Tensor,
    qprev: torch.Tensor,
    lower: torch.Tensor,
) -> tuple[_Entries, _ScoredTiles | None]:
    """Upper bound of the score per (pair, tile): tile max of det_j minus the rounded distance
    from the mean tag to the tile's tag box (round is monotone, so this never exceeds the
    score of a pixel in the tile). Only tiles whose bound reaches LB are searched.

    "Narrow" pairs, whose LB already exceeds the det maximum of most tiles (e.g. a ghost
    person at another person's peak), get bounds only on their few remaining tiles; the
    others get them on every tile (dense) and a tighter LB from their best tiles, written
    into `lower` in place. Returns the entries (narrow pairs first) and the wide pairs'
    scored tiles (None without wide pairs).
    """
    num_joints = tile_max.shape[0]
    tile_max_flat = tile_max.reshape(num_joints, -1)
    tag_low, tag_high, qs = _tag_boxes(sampler, qj, num_joints)
    narrow = _narrow_pairs(tile_max_flat, lower, qj)
    parts = []
    narrow_ids = torch.nonzero(narrow).flatten()
    if narrow_ids.numel():
        parts.append(_narrow_entries(tile_max_flat, tag_low, tag_high, qj, qs, qprev, lower,
                                     narrow_ids))
    wide_ids = torch.nonzero(~narrow).flatten()
    scored = None
    if wide_ids.numel():
        wide, scored, wide_lower = _wide_entries(heatmaps, sampler, tile_max,
                                                 (tag_low, tag_high), qj, qs, qprev, lower,
                                                 wide_ids)
        lower[wide_ids] = wide_lower
        parts.append(wide)
    return _Entries(*(torch.cat(column) for column in zip(*parts))), scored


def _tag_boxes(
    sampler: TagSampler, qj: torch.Tensor, num_joints: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tag boxes (L, J', tiles_y, tiles_x) (lower, upper) of the J' joints with pairs, and
    each pair's row J' in them (Q,)."""
    dev = qj.device
    needed = torch.unique(qj)  # joints with pairs; `slot` maps a joint to its bound row
    slot = torch.full((num_joints,), -1, dtype=torch.long, device=dev)
    slot[needed] = torch.arange(len(needed), device=dev)
    tag_low, tag_high = sampler.tile_bounds(_TILE, needed)  # (L, J', ty, tx)
    return tag_low, tag_high, slot[qj]


def _narrow_pairs(
    tile_max_flat: torch.Tensor, lower: torch.Tensor, qj: torch.Tensor
) -> torch.Tensor:
    """(Q,) bool: at most about num_tiles / _NARROW_FRACTION tiles have a det maximum >= LB,
    i.e. LB is above that quantile of the joint's tile maxima, estimated on every `stride`-th
    tile (a heuristic: it only decides which search runs)."""
    num_tiles = tile_max_flat.shape[1]
    stride = max(1, num_tiles // _NARROW_SAMPLE_TILES)
    sample = tile_max_flat[:, ::stride]
    kth = torch.kthvalue(sample, sample.shape[1] - sample.shape[1] // _NARROW_FRACTION, dim=1)
    kth = kth.values
    return lower > _pick(kth, qj)


def _rounded_box_gap(
    prev: torch.Tensor, tag_low: torch.Tensor, tag_high: torch.Tensor
) -> torch.Tensor:
    """round(distance from a mean tag to a tag box), componentwise over the leading L axis of
    the three (broadcast) arguments; a lower bound of round(||tag - prev||) in the box."""
    gap2: torch.Tensor | None = None
    for component in range(prev.shape[0]):
        p = prev[component]
        gap = torch.clamp(
            torch.maximum(tag_low[component] - p, p - tag_high[component]), min=0.0
        )
        gap2 = gap * gap if gap2 is None else gap2 + gap * gap
    assert gap2 is not None
    return torch.round(torch.sqrt(gap2))


def _narrow_entries(
    tile_max_flat: torch.Tensor,
    tag_low: torch.Tensor,
    tag_high: torch.Tensor,
    qj: torch.Tensor,
    qs: torch.Tensor,
    qprev: torch.Tensor,
    lower: torch.Tensor,
    narrow_ids: torch.Tensor,
) -> _Entries:
    """Entries of the narrow pairs: their tiles whose det maximum reaches LB, kept where the
    bound (det maximum - tag gap) reaches LB too."""
    num_tags = tag_low.shape[0]
    num_tiles = tile_max_flat.shape[1]
    narrow_j = _pick(qj, narrow_ids)
    det_ok = tile_max_flat.index_select(0, narrow_j) >= _pick(lower, narrow_ids)[:, None]
    e_row, e_tile = torch.nonzero(det_ok, as_tuple=True)
    e_pair = _pick(narrow_ids, e_row)
    e_box = _pick(qs, e_pair) * num_tiles + e_tile  # (slot, tile) in the bound planes
    rounded = _rounded_box_gap(
        qprev.index_select(0, e_pair).t(),
        tag_low.reshape(num_tags, -1).index_select(1, e_box),
        tag_high.reshape(num_tags, -1).index_select(1, e_box),
    )
    upper = _pick(tile_max_flat.reshape(-1), _pick(narrow_j, e_row) * num_tiles + e_tile)
    upper = torch.nan_to_num(upper - rounded, nan=-torch.inf)
    keep = torch.nonzero(upper >= _pick(lower, e_pair)).flatten()
    return _Entries(_pick(e_pair, keep), _pick(e_tile, keep), _pick(rounded, keep))


def _wide_entries(
    heatmaps: torch.Tensor,
    sampler: TagSampler,
    tile_max: torch.Tensor,
    tag_boxes: tuple[torch.Tensor, torch.Tensor],
    qj: torch.Tensor,
    qs: torch.Tensor,
    qprev: torch.Tensor,
    lower: torch.Tensor,
    wide_ids: torch.Tensor,
) -> tuple[_Entries, _ScoredTiles, torch.Tensor]:
    """Entries of the wide pairs: bounds on every tile, LB raised to the exact best score of
    each pair's best tiles, then the tiles whose bound reaches it. Returns the entries, the
    scored tiles and the raised LB (Q',) (not written into `lower`)."""
    num_tiles = tile_max[0].numel()
    wj, ws, wprev = _pick(qj, wide_ids), _pick(qs, wide_ids), qprev.index_select(0, wide_ids)
    upper_all, gap_all = _wide_tile_bounds(tile_max, tag_boxes, wj, ws, wprev)
    best_tiles, scores, first = _score_best_tiles(heatmaps, sampler, wj, wprev, upper_all,
                                                  tile_max.shape[2])
    wide_lower = torch.maximum(_pick(lower, wide_ids), scores)
    e_row, e_tile = torch.nonzero(upper_all >= wide_lower[:, None], as_tuple=True)
    entries = _Entries(
        _pick(wide_ids, e_row), e_tile, _pick(gap_all.reshape(-1), e_row * num_tiles + e_tile)
    )
    return entries, _ScoredTiles(wide_ids, best_tiles, scores, first), wide_lower


def _wide_tile_bounds(
    tile_max: torch.Tensor,
    tag_boxes: tuple[torch.Tensor, torch.Tensor],
    wj: torch.Tensor,
    ws: torch.Tensor,
    wprev: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score upper bound (-inf for a NaN mean tag) and rounded tag-box distance (whole
    numbers) of every (wide pair, tile), (Q', tiles), in chunks of _CHUNK_ELEMENTS."""
    tag_low, tag_high = tag_boxes
    num_tiles = tile_max[0].numel()
    upper_all = torch.empty((len(wj), num_tiles), dtype=torch.float32, device=tile_max.device)
    gap_all = torch.empty_like(upper_all)
    chunk_pairs = max(1, _CHUNK_ELEMENTS // num_tiles)
    for start in range(0, len(wj), chunk_pairs):
        sl = slice(start, start + chunk_pairs)
        rounded = _rounded_box_gap(
            wprev[sl].t()[:, :, None, None],
            tag_low.index_select(1, ws[sl]),
            tag_high.index_select(1, ws[sl]),
        )
        upper = tile_max.index_select(0, wj[sl]) - rounded
        upper_all[sl] = upper.reshape(upper.shape[0], -1)
        gap_all[sl] = rounded.reshape(rounded.shape[0], -1)
    return torch.nan_to_num(upper_all, nan=-torch.inf), gap_all


def _score_best_tiles(
    heatmaps: torch.Tensor,
    sampler: TagSampler,
    wj: torch.Tensor,
    wprev: torch.Tensor,
    upper_all: torch.Tensor,
    tiles_x: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact scores of each wide pair's _BEST_TILES most promising tiles: the tiles (Q', m),
    their best score (Q',) (a tighter LB) and its first pixel (Q',) (smallest index; those
    tiles' pixels are then scored exactly, so the sparse search can start from it and skip
    them)."""
    num_joints, height, width = heatmaps.shape
    det = heatmaps.reshape(num_joints, -1)
    num_pixels = det.shape[1]
    num_best = min(_BEST_TILES, upper_all.shape[1])
    best_tiles = upper_all.topk(num_best, dim=1).indices  # (Q', m)
    inner = torch.arange(_TILE, device=det.device)
    rows = torch.clamp(
        torch.div(best_tiles, tiles_x, rounding_mode="floor")[..., None] * _TILE + inner,
        max=height - 1,
    )  # (Q', m, T)
    cols = torch.clamp((best_tiles % tiles_x)[..., None] * _TILE + inner, max=width - 1)
    tile_pix = (rows[..., :, None] * width + cols[..., None, :]).reshape(len(wj), -1)
    tile_tags = sampler(wj[:, None].expand_as(tile_pix), tile_pix).permute(2, 0, 1)
    tile_det = _pick(det.reshape(-1), wj[:, None] * num_pixels + tile_pix)
    tile_all = torch.nan_to_num(_refine_scores(tile_det, tile_tags, wprev), nan=-torch.inf)
    tile_scores = tile_all.amax(dim=1)
    tile_first = torch.where(
        tile_all == tile_scores[:, None], tile_pix, num_pixels
    ).amin(dim=1)
    return best_tiles, tile_scores, tile_first


def _prefer_sparse_search(
    entries: _Entries, qj: torch.Tensor, tile_max: torch.Tensor, sparse_entry_limit: int
) -> bool:
    """The cost model: the per-joint search costs one dense score per (pair, pixel of the
    joint's tile union) plus the tag projection of the union (_PROJECTION_COST per pixel);
    a sparse entry costs _SPARSE_ENTRY_COST (see the constants; `sparse_entry_limit` as in
    `refine_people`)."""
    num_joints = tile_max.shape[0]
    tile_pixels = _TILE * _TILE
    num_entries = int(entries.pairs.numel()) * tile_pixels
    union_tiles = torch.zeros(
        (num_joints, tile_max[0].numel()), dtype=torch.bool, device=tile_max.device
    )
    union_tiles[qj[entries.pairs], entries.tiles] = True
    pairs_per_joint = torch.bincount(qj, minlength=num_joints)
    per_joint_cost = int(
        ((union_tiles.sum(dim=1) * tile_pixels) * (pairs_per_joint + _PROJECTION_COST)).sum()
    )
    return sparse_entry_limit < 0 or (
        num_entries <= sparse_entry_limit
        and _SPARSE_ENTRY_COST * num_entries <= per_joint_cost
    )


def _skip_scored_tiles(
    entries: _Entries, scored: _ScoredTiles | None, num_pairs: int, tile_max: torch.Tensor
) -> tuple[_Entries, tuple[torch.Tensor, torch.Tensor] | None]:
    """The wide pairs' best tiles are scored already: leave them out of the entries and
    return, per pair, their best score and first pixel to start the sparse search from
    (-inf, 0 for the other pairs; None without scored tiles)."""
    if scored is None:
        return entries, None
    dev = tile_max.device
    num_tiles = tile_max[0].numel()
    searched = torch.zeros((num_pairs, num_tiles), dtype=torch.bool, device=dev)
    searched[scored.pairs[:, None].expand_as(scored.tiles), scored.tiles] = True
    fresh = torch.nonzero(
        ~_pick(searched.reshape(-1), entries.pairs * num_tiles + entries.tiles)
    ).flatten()
    entries = _Entries(*(_pick(column, fresh) for column in entries))
    start_val = torch.full((num_pairs,), -torch.inf, device=dev)
    start_pix = torch.zeros((num_pairs,), dtype=torch.long, device=dev)
    start_val[scored.pairs] = scored.scores
    start_pix[scored.pairs] = torch.where(scored.scores > -torch.inf, scored.first, 0)
    return entries, (start_val, start_pix)


def _fill_found_joints(
    out: np.ndarray,
    det: torch.Tensor,
    qj: torch.Tensor,
    qprev: torch.Tensor,
    best_pix: torch.Tensor,
    pairs: tuple[np.ndarray, np.ndarray],
    width: int,
) -> None:
    """Writes each pair's best pixel into `out` (in place) as the official refine does: x, y =
    index + 0.5 + quarter offset, value det there, only where that value is > 0."""
    # People with a NaN mean tag: numpy's argmax of an all-NaN map is pixel 0.
    best_pix = torch.where(torch.isnan(qprev).any(dim=1), 0, best_pix)
    by = torch.div(best_pix, width, rounding_mode="floor")
    bx = best_pix - by * width
    val = det[qj, best_pix]
    dx, dy = _quarter_offsets(det, qj, bx, by, width)
    x = bx.double() + 0.5 + dx.double()
    y = by.double() + 0.5 + dy.double()
    val_np = val.cpu().numpy()
    fill = val_np > 0
    pp, jj = pairs[0][fill], pairs[1][fill]
    out[pp, jj, 0] = x.cpu().numpy()[fill]
    out[pp, jj, 1] = y.cpu().numpy()[fill]
    out[pp, jj, 2] = val_np[fill]
