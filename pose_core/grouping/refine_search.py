"""Refine's exact searches: the first argmax of the refine score over pruned candidates.

Follows the official HigherHRNet (Cheng et al., CVPR 2020) `lib/core/group.py::
HeatmapParser.refine`, written anew: for a person with mean tag `prev` and a missing joint j,
score = det_j - round(||tag_j - prev||) over the whole map, first row-major argmax (numpy's
`np.argmax` of the flattened map). `refine.refine_people` bounds that score per tile and hands
the (person, missing joint) pairs and their surviving tiles to one of these searches, which
return the same pixel as the full scan: per joint over the union of its pairs' tiles
(`_search_per_joint`), or as sparse (pair, pixel) entries visited best first
(`_search_sparse_sub`). Torch ops on the maps' device.

Shapes and frames: det (J, H * W) heatmap values, flat pixel index y * W + x (row-major,
x = column) of the heatmap grid; a query (pair) q has joint qj[q] and mean tag qprev[q] (L,);
lower (Q,) a lower bound of each pair's best score; tiles are _TILE x _TILE blocks of the grid,
index ty * tiles_x + tx, sub-tiles _TILE / 2 x _TILE / 2 blocks. Results are (Q,) int64 flat
pixel indices.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from pose_core.grouping.candidates import _TILE
from pose_core.grouping.tag_sampling import TagSampler, _pick

# (pair, pixel) or (pair, tile) scores per step: caps temporaries, still large vectorised ops.
_CHUNK_ELEMENTS = 1 << 21
# Sub-tiles per pair in the first best-first round: the best few usually raise LB to ~optimum.
_RANK_FIRST = 2
# Growth of that number per round: few rounds, each pruned by the best score so far.
_RANK_GROWTH = 4
# Per joint: pairs' tiles over 1 / n of the map -> scoring the whole map densely is cheaper.
_DENSE_TILE_FRACTION = 4
# Per joint: candidates over 1 / n of the pixels -> one full tag projection is cheaper.
_DENSE_PIXEL_FRACTION = 4
# Per joint: candidate pixels per step at least (few pairs on a joint: fewer, larger steps).
_MIN_CHUNK_PIXELS = 4096


class _Entries(NamedTuple):
    """(pair, tile) entries left to search, (E,) each: pair index, tile index and the rounded
    distance from the pair's mean tag to the tile's tag box."""

    pairs: torch.Tensor
    tiles: torch.Tensor
    gaps: torch.Tensor


class _SubTiles(NamedTuple):
    """Sub-tiles to search, one entry each (S,): the score bound (det maximum - tag gap), the
    sub-tile row and column in the sub-tile grid, the pair it belongs to and its tile gap."""

    bound: torch.Tensor
    row: torch.Tensor
    col: torch.Tensor
    pair: torch.Tensor
    gap: torch.Tensor


def _refine_scores(
    det: torch.Tensor, tag_planes: torch.Tensor, prev: torch.Tensor
) -> torch.Tensor:
    """det - round(||tag - prev||) in float32 with the official op order.

    Args:
        det: (Q or 1, C) values.
        tag_planes: (L, Q or 1, C) tag components.
        prev: (Q, L) mean tags.

    Returns:
        (Q, C) scores.
    """
    dist2: torch.Tensor | None = None
    for component in range(tag_planes.shape[0]):
        diff = tag_planes[component] - prev[:, component, None]
        dist2 = diff * diff if dist2 is None else dist2 + diff * diff
    assert dist2 is not None
    return det - torch.round(torch.sqrt(dist2))


def _search_per_joint(
    det: torch.Tensor,
    sampler: TagSampler,
    qj: torch.Tensor,
    qprev: torch.Tensor,
    lower: torch.Tensor,
    tile_ok: torch.Tensor,
    tiles_yx: tuple[int, int],
    size_hw: tuple[int, int],
) -> torch.Tensor:
    """Exact first argmax per pair, joint by joint over the union of the pairs' tiles (dense
    tag projection when that union is large). Returns (Q,) flat pixel indices."""
    dev = det.device
    tiles_y, tiles_x = tiles_yx
    height, width = size_hw
    num_pixels = height * width
    best_pix = torch.zeros_like(qj)
    for j in torch.unique(qj).tolist():
        sel = torch.nonzero(qj == j).flatten()
        sel_ok = tile_ok[sel]
        if int(sel_ok.any(dim=0).sum()) * _DENSE_TILE_FRACTION > sel_ok.shape[1]:
            # Most of the map: score it densely (the pruned pixels cannot be the maximum).
            planes = sampler.dense(j)[:, None, :]  # (L, 1, H * W)
            step = max(1, _CHUNK_ELEMENTS // num_pixels)
            for start in range(0, len(sel), step):
                part = sel[start : start + step]
                scores = _refine_scores(det[j][None], planes, qprev[part])
                best_pix[part] = scores.argmax(dim=1)
            continue
        union = sel_ok.any(dim=0).reshape(tiles_y, tiles_x)
        union = union.repeat_interleave(_TILE, 0)[:height].repeat_interleave(_TILE, 1)[:, :width]
        mask = union & (det[j].reshape(height, width) >= lower[sel].min())
        cand = torch.nonzero(mask.flatten()).flatten()  # row-major order
        if cand.numel() == 0:
            continue
        if cand.numel() * _DENSE_PIXEL_FRACTION > num_pixels:
            # Large candidate sets: project the joint's tag maps once (the official way).
            planes = sampler.dense(j)
            cand_tags = planes if cand.numel() == num_pixels else planes[:, cand]
        else:
            cand_tags = sampler(torch.full_like(cand, j), cand).t()
        cand_det = det[j, cand]
        cand_y = torch.div(cand, width, rounding_mode="floor")
        cand_tile = torch.div(cand_y, _TILE, rounding_mode="floor") * tiles_x + torch.div(
            cand - cand_y * width, _TILE, rounding_mode="floor"
        )
        sel_prev = qprev[sel]
        sel_lower = lower[sel, None]
        j_best_val = torch.full((len(sel),), -torch.inf, dtype=torch.float32, device=dev)
        j_best_pix = torch.zeros((len(sel),), dtype=torch.long, device=dev)
        chunk = max(_MIN_CHUNK_PIXELS, (_CHUNK_ELEMENTS // 2) // len(sel))
        for start in range(0, cand.numel(), chunk):
            c_det = cand_det[None, start : start + chunk]
            c_tag = cand_tags[:, None, start : start + chunk]
            allowed = sel_ok[:, cand_tile[start : start + chunk]] & (c_det >= sel_lower)
            scores = torch.where(allowed, _refine_scores(c_det, c_tag, sel_prev), -torch.inf)
            c_val, c_arg = scores.max(dim=1)
            better = c_val > j_best_val
            j_best_val = torch.where(better, c_val, j_best_val)
            j_best_pix = torch.where(better, cand[start + c_arg], j_best_pix)
        best_pix[sel] = j_best_pix

    return best_pix


def _fold_scores(
    best_val: torch.Tensor,
    best_pix: torch.Tensor,
    q: torch.Tensor,
    pix: torch.Tensor,
    values: torch.Tensor,
    tags: torch.Tensor,
    prev: torch.Tensor,
    num_pixels: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score candidate pixels and fold them into each query's running best (first argmax).

    Args:
        best_val, best_pix: (Q,) running best score and flat pixel per (person, joint) query.
        q, pix, values: (E,) query index, flat pixel and heatmap value of each candidate.
        tags: (E, L) tag at each candidate; prev: (E, L) the query person's mean tag.
        num_pixels: H * W (larger than any pixel index; the tie-break sentinel).

    Score = value - round(||tag - prev||), as the official refine; ties keep the lowest pixel
    index, i.e. numpy's row-major first argmax.
    """
    dist2 = None
    for component in range(tags.shape[1]):
        diff = tags[:, component] - prev[:, component]
        dist2 = diff * diff if dist2 is None else dist2 + diff * diff
    assert dist2 is not None
    scores = values - torch.round(torch.sqrt(dist2))
    chunk_val = torch.full_like(best_val, -torch.inf).scatter_reduce(0, q, scores, reduce="amax")
    at_max = scores == _pick(chunk_val, q)
    big = torch.full_like(pix, num_pixels)
    chunk_pix = torch.full_like(best_pix, num_pixels).scatter_reduce(
        0, q, torch.where(at_max, pix, big), reduce="amin"
    )
    better = (chunk_val > best_val) | ((chunk_val == best_val) & (chunk_pix < best_pix))
    return torch.where(better, chunk_val, best_val), torch.where(better, chunk_pix, best_pix)




def _search_sparse_sub(
    det: torch.Tensor,
    sampler: TagSampler,
    qj: torch.Tensor,
    qprev: torch.Tensor,
    lower: torch.Tensor,
    entries: _Entries,
    sub_max: torch.Tensor,
    tiles_x: int,
    start: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Exact first argmax per pair over its candidate (pair, tile) entries, all pairs at once
    (segment max with a smallest-index tie-break; returns (Q,) flat pixel indices), pruned by
    sub-tile maxima and tile gaps: `entries.gaps` are the rounded distances from the pair's
    mean tag to each entry tile's tag box (a lower bound of round(||tag - prev||) there) and
    `sub_max` the maxima of det over _TILE / 2 sub-tiles (J, ceil(H / 4), ceil(W / 4)), so a
    pixel can only win when det - gap >= LB.

    Best first: every pair's sub-tiles are visited in rounds by descending bound
    (det maximum - gap), first each pair's best few, then geometrically more; before a round,
    the sub-tiles and pixels whose bound is below the pair's best exact score so far (or LB)
    are dropped. A pixel scoring the optimum has bound >= optimum >= best so far, so it is never
    dropped (>=: exact ties survive; the fold keeps the first pixel), and the result equals
    the one-pass search; the early rounds usually raise the bound from LB to about the
    optimum, so few of the remaining sub-tiles are scored (e.g. a person whose mean tag is
    close to the background tags, where every tile's tag gap is 0).

    `start`: (best score, its first pixel) per pair over pixels already scored exactly with
    the same arithmetic and left out of the entries (-inf, 0 for none); the result is then the
    first argmax over those pixels and the entries together."""
    dev = det.device
    num_pairs = qj.shape[0]
    if start is None:
        best_val = torch.full((num_pairs,), -torch.inf, dtype=torch.float32, device=dev)
        best_pix = torch.zeros((num_pairs,), dtype=torch.long, device=dev)
    else:  # the best exact score and its first pixel over pixels searched before
        best_val, best_pix = start[0].clone(), start[1].clone()
    subs = _sub_tiles_reaching_bound(qj, lower, entries, sub_max, tiles_x, sampler.height)
    if subs is None:
        return best_pix
    subs, rank, max_rank = _order_by_rank(subs, num_pairs)
    lo, hi = 0, 0
    rank_limit = _RANK_FIRST
    while lo < rank.numel():
        hi = int(torch.searchsorted(rank, rank_limit)) if rank_limit < max_rank else rank.numel()
        rank_limit *= _RANK_GROWTH
        # the pair's best exact score so far (a valid LB) or LB; a NaN best compares False
        thr = torch.where(best_val > lower, best_val, lower)
        part = lo + torch.nonzero(subs.bound[lo:hi] >= _pick(thr, subs.pair[lo:hi])).flatten()
        lo = hi
        best_val, best_pix = _score_sub_tiles(
            det, sampler, qj, qprev, subs, part, thr, best_val, best_pix
        )
    return best_pix


def _sub_tiles_reaching_bound(
    qj: torch.Tensor,
    lower: torch.Tensor,
    entries: _Entries,
    sub_max: torch.Tensor,
    tiles_x: int,
    height: int,
) -> _SubTiles | None:
    """The 2 x 2 sub-tiles of every (pair, tile) entry whose det maximum minus the tile's tag
    gap reaches the pair's LB (None when there is none), in entry order."""
    dev = sub_max.device
    pair_ids, tile_ids, gaps = entries
    tiles_y = -(-height // _TILE)
    # sub-tile grid padded to exactly 2 x 2 per tile (odd ceil(H / 4) or ceil(W / 4))
    pad_y, pad_x = 2 * tiles_y - sub_max.shape[1], 2 * tiles_x - sub_max.shape[2]
    if pad_y or pad_x:
        sub_max = F.pad(sub_max, (0, pad_x, 0, pad_y), value=-torch.inf)
    sub_x = sub_max.shape[2]
    # (entry, 4) sub-tiles: keep those whose det maximum minus the tile gap reaches LB.
    ty = torch.div(tile_ids, tiles_x, rounding_mode="floor")
    tx = tile_ids - ty * tiles_x
    sy = (2 * ty)[:, None] + torch.tensor([0, 0, 1, 1], device=dev)
    sx = (2 * tx)[:, None] + torch.tensor([0, 1, 0, 1], device=dev)
    joint = _pick(qj, pair_ids)
    sub_vals = _pick(sub_max.reshape(-1), (joint[:, None] * sub_max.shape[1] + sy) * sub_x + sx)
    # Tested as det - gap >= LB, never det >= LB + gap: the answer's own score is
    # det - round(dist) <= det - gap in float arithmetic too, while LB + gap may round up.
    bounds = sub_vals - gaps[:, None]
    e, k = torch.nonzero(bounds >= _pick(lower, pair_ids)[:, None], as_tuple=True)
    if e.numel() == 0:
        return None
    ek = e * 4 + k
    return _SubTiles(
        bound=_pick(bounds.reshape(-1), ek),
        row=_pick(sy.reshape(-1), ek),
        col=_pick(sx.reshape(-1), ek),
        pair=_pick(pair_ids, e),
        gap=_pick(gaps, e),
    )


def _order_by_rank(
    subs: _SubTiles, num_pairs: int
) -> tuple[_SubTiles, torch.Tensor, int]:
    """Rank of each sub-tile within its pair by descending bound, then all sub-tiles ordered
    by rank (round r visits ranks [r_lo, r_hi) of every pair); returns the reordered sub-tiles,
    their (ascending) ranks and the largest number of sub-tiles of one pair."""
    order = torch.argsort(subs.bound, descending=True, stable=True)
    order = _pick(order, torch.argsort(_pick(subs.pair, order), stable=True))
    counts = torch.bincount(subs.pair, minlength=num_pairs)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel(), device=order.device)
    rank = rank - _pick(starts, _pick(subs.pair, order))
    by_rank = torch.argsort(rank, stable=True)
    order, rank = _pick(order, by_rank), _pick(rank, by_rank)
    ordered = _SubTiles(*(_pick(column, order) for column in subs))
    return ordered, rank, int(counts.max())


def _score_sub_tiles(
    det: torch.Tensor,
    sampler: TagSampler,
    qj: torch.Tensor,
    qprev: torch.Tensor,
    subs: _SubTiles,
    part: torch.Tensor,
    thr: torch.Tensor,
    best_val: torch.Tensor,
    best_pix: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores the pixels of the sub-tiles `part` whose det - gap reaches the pair's threshold
    `thr` and folds them into each pair's running best (score, first pixel)."""
    dev = det.device
    width, height = sampler.width, sampler.height
    num_pixels = det.shape[1]
    half = _TILE // 2
    det_flat = det.reshape(-1)
    # sub-tiles never cross the map border when H and W are multiples of the sub-tile size
    clipped = height % half != 0 or width % half != 0
    inner = torch.arange(half, device=dev)
    step = max(1, _CHUNK_ELEMENTS // (half * half))
    for start in range(0, part.numel(), step):
        ss = part[start : start + step]
        rows = (_pick(subs.row, ss) * half)[:, None] + inner
        cols = (_pick(subs.col, ss) * half)[:, None] + inner
        pix = rows[:, :, None] * width + cols[:, None, :]
        ent = ss[:, None, None].expand(-1, half, half)
        if clipped:
            valid = (rows < height)[:, :, None] & (cols < width)[:, None, :]
            pix, ent = pix[valid], ent[valid]
        pix, ent = pix.reshape(-1), ent.reshape(-1)
        q = _pick(subs.pair, ent)
        jj = _pick(qj, q)
        values = _pick(det_flat, jj * num_pixels + pix)
        keep = torch.nonzero(values - _pick(subs.gap, ent) >= _pick(thr, q)).flatten()
        q, pix, jj, values = (_pick(t, keep) for t in (q, pix, jj, values))
        if q.numel() == 0:
            continue
        best_val, best_pix = _fold_scores(
            best_val, best_pix, q, pix, values, sampler(jj, pix), qprev.index_select(0, q),
            num_pixels,
        )
    return best_val, best_pix
