"""Double Embedding grouping: person centres and root joints by tags, the rest by offsets.

Follows `lib/core/group.py::HeatmapParser.parse` (with `nms_top_k_thre`, `match_by_de`, `adjust`,
`refine`) of `plyplyply/pytorch-DEM2` @ 06f188d (Xu et al., "A Global to Local Double Embedding
Method for Multi-person Pose Estimation", ACCV 2020), written anew. Steps:

1. NMS: joints max-pool `nms_kernel`; the centre a pool of 3 / 5 / 7 when (H + W) / 2 is
   <= 200 / > 200 / > 300 (DEKR's hierarchical pool). Top-`max_people` per channel; joints kept
   above `detection_threshold`, centres above 0.01.
2. Offsets at the candidates, de-normalised (see `DemMode`), as (dx, dy); tags (normal, flip) at
   root-joint and centre candidates.
3. Global embedding: each centre opens a person keyed by its tag; root joints (l/r shoulder,
   l/r hip) join people by Hungarian matching on round(||dtag||) * 100 - value (accept below
   `tag_threshold`), else open a person (without a centre).
4. Local embedding, face: predicted centre = location + centre offset; greedy nearest pairs
   (first minimum, row-major) against the centre candidates within 70 map pixels.
5. Local embedding, limbs (elbows, wrists, knees, ankles, left then right): predicted parent =
   location + parent offset; greedy nearest pairs against the parents found at the previous
   level (no distance limit); leftover joints greedily to the centres of the people that lack
   the joint (70 pixels).
6. People whose J joint values sum to > 0; score = mean value (missing joints 0).
7. Optional MRM (`mutual_refine`), adjust (quarter pixel + 0.5) and HigherHRNet refine over the J
   joint channels (`pose_core.grouping.refine_people`).

Modes (`DemMode`): "release" keeps the released behaviour, defects included: offsets x
sqrt(H^2 + W^2) of the map, people keyed by float tag values (equal values merge), the leftover
order of Python set iteration, root-joint people without a centre matched at (0, 0) in the
fallback, no MRM, adjust only together with refine. "paper" (default): MRM on (threshold 0.75),
offsets x sqrt(2) * min(H, W) (the training normaliser sqrt(2) * R carried to a map whose short
side is the network input side), people keyed by a counter, leftovers in insertion order, people
without a centre left out of the centre fallback, MRM positions kept inside the map, `adjust`
and `refine` honoured separately.

Shapes and frames: heatmaps (J+1, H, W) (centre last), tags (J+1, H, W, L) (L = 2 with flip:
normal, flip), offsets (C, H, W) in normalised units (channel layout of
`models.double_embedding.DemPartition`); positions in map pixels, x (column) first. Output
`DemGroupingResult.grouped` (P, J, 5): x, y, value, then (tag normal, tag flip) for root joints,
(dx, dy) to the centre for face joints, (dx, dy) to the parent for limb joints.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from pose_core.grouping.adjust import adjust_positions
from pose_core.grouping.mutual_refine import MRM_THRESHOLD, mutual_refine
from pose_core.grouping.parser import GroupingParams
from pose_core.grouping.refine import refine_people
from pose_core.grouping.tag_sampling import DenseTags
from pose_core.keypoint_specs import COCO_17, CROWDPOSE_14
from pose_core.models.double_embedding import DEM_PARTITIONS, DemPartition
from pose_core.numerics import all_finite
from pose_core.structures import Poses

__all__ = [
    "DEM_MODES",
    "DemMode",
    "DemCandidates",
    "DemGroupingResult",
    "dem_mode_settings",
    "dem_candidates",
    "match_double_embedding",
    "parse_double_embedding",
    "group_double_embedding",
    "partition_for_joints",
]

DEM_MODES = ("paper", "release")
CENTRE_THRESHOLD = 0.01
MATCH_RADIUS = 70.0  # map pixels (the release's `diff_thre`, whatever the map size)


@dataclass(frozen=True)
class DemMode:
    """The behaviour switches of the two modes (see the module docstring).

    Attributes:
        name: "paper" or "release".
        mrm: apply the Mutual Refine Machine before adjust / refine.
        mrm_threshold: MRM's confidence threshold.
        training_normaliser: offsets x sqrt(2) * min(H, W) (else x sqrt(H^2 + W^2)).
        float_keys: people keyed by their float tag (colliding keys merge).
        centreless_fallback: people without a centre take part in the centre fallback at (0, 0).
        adjust_with_refine_only: adjust runs only when refine does (the release ignores adjust).
        offsets_per_scale: the decoder divides each scale's offsets by its factor before the
            multi-scale average (the release averages them as they are).
    """

    name: str
    mrm: bool
    mrm_threshold: float = MRM_THRESHOLD
    training_normaliser: bool = True
    float_keys: bool = False
    centreless_fallback: bool = False
    adjust_with_refine_only: bool = False
    offsets_per_scale: bool = True


def dem_mode_settings(mode: str = "paper", mrm: bool | None = None) -> DemMode:
    """The settings of `mode`; `mrm` overrides whether MRM runs (None: the mode's)."""
    if mode == "paper":
        settings = DemMode("paper", mrm=True)
    elif mode == "release":
        settings = DemMode("release", mrm=False, training_normaliser=False, float_keys=True,
                           centreless_fallback=True, adjust_with_refine_only=True,
                           offsets_per_scale=False)
    else:
        raise ValueError(f"dem_mode must be one of {DEM_MODES}, got {mode!r}")
    return settings if mrm is None else dataclasses.replace(settings, mrm=bool(mrm))


def partition_for_joints(num_joints: int) -> DemPartition:
    """The partition of a J-joint layout (COCO 17 or CrowdPose 14)."""
    for spec in (COCO_17, CROWDPOSE_14):
        if spec.num_keypoints == num_joints:
            return DEM_PARTITIONS[spec.name]
    raise ValueError(f"Double Embedding defines partitions for 17 or 14 joints, not {num_joints}")


@dataclass(frozen=True)
class DemCandidates:
    """Kept top-k candidates per channel (J joints + centre), official `nms_top_k_thre`.

    Attributes:
        loc: per channel (n, 2) int64 (x, y); val: per channel (n,) float32.
        tag: per root joint, then the centre, (n, 2) float32 (tag normal, tag flip).
        face_offsets: per face joint (n, 2) (dx, dy) to the centre, map pixels.
        limb_offsets: per limb joint (n, 4) (dx, dy) to the parent, then to the centre.
    """

    loc: list[np.ndarray]
    val: list[np.ndarray]
    tag: list[np.ndarray]
    face_offsets: list[np.ndarray]
    limb_offsets: list[np.ndarray]


@dataclass(frozen=True)
class DemGroupingResult:
    """Grouping output in map pixels: grouped (P, J, 5) float32, scores (P,) (before adjust and
    refine), and the candidates."""

    grouped: np.ndarray
    scores: np.ndarray
    candidates: DemCandidates

    def to_poses(self) -> Poses:
        return Poses(self.grouped[:, :, :3], self.scores)


def _nms(heatmaps: torch.Tensor, kernel: int) -> torch.Tensor:
    """Joints: max-pool `kernel`; centre: 3 / 5 / 7 by mean map side; keep exact maxima."""
    joints = F.max_pool2d(heatmaps[None, :-1], kernel, 1, (kernel - 1) // 2)[0]
    side = (heatmaps.shape[1] + heatmaps.shape[2]) / 2.0
    centre_kernel = 7 if side > 300 else 5 if side > 200 else 3
    centre = F.max_pool2d(heatmaps[None, -1:], centre_kernel, 1, centre_kernel // 2)[0]
    pooled = torch.cat((joints, centre), 0)
    return heatmaps * torch.eq(pooled, heatmaps).float()


def dem_candidates(
    heatmaps: torch.Tensor,
    tags: torch.Tensor,
    offsets: torch.Tensor,
    partition: DemPartition,
    params: GroupingParams,
    offset_scale: float,
) -> DemCandidates:
    """NMS, top-k and the values the matching reads (official `nms_top_k_thre`).

    Args:
        heatmaps: (J+1, H, W); tags: (J+1, H, W, L); offsets: (C, H, W) normalised.
        partition: the joint partition; params: detection threshold, NMS kernel, top-k.
        offset_scale: map pixels per normalised offset unit.
    """
    channels, height, width = heatmaps.shape
    suppressed = _nms(heatmaps, params.nms_kernel).reshape(channels, -1)
    val_k, ind = suppressed.topk(params.max_people, dim=1)
    keep = torch.cat((val_k[:-1] > params.detection_threshold,
                      (val_k[-1] > CENTRE_THRESHOLD)[None]), 0)
    flat_tags = tags.reshape(channels, height * width, -1)
    flat_offsets = offsets.reshape(offsets.shape[0], -1) * offset_scale
    first = partition.offset_channels()
    loc, val, tag, face, limbs = [], [], [], [], []
    for j in range(channels):
        mask = keep[j]
        index = ind[j][mask]
        val.append(val_k[j][mask].cpu().numpy())
        loc.append(torch.stack((index % width, torch.div(index, width, rounding_mode="floor")),
                               1).cpu().numpy())
        if j in partition.root or j == channels - 1:
            sampled = flat_tags[j][index]
            tag.append(torch.stack((sampled[:, 0], sampled[:, -1]), 1).cpu().numpy())
            continue
        start = first[j]
        order = (1, 0) if j in partition.face else (1, 0, 3, 2)  # (dy, dx) -> (dx, dy)
        gathered = torch.stack([flat_offsets[start + d][index] for d in order], 1).cpu().numpy()
        (face if j in partition.face else limbs).append(gathered)
    return DemCandidates(loc, val, tag, face, limbs)


class _People:
    """Insertion-ordered people: a (J+1, 5) float64 row block and a tag list each."""

    def __init__(self, num_rows: int, float_keys: bool) -> None:
        self.rows: dict[Any, np.ndarray] = {}
        self.tags: dict[Any, list[np.ndarray]] = {}
        self.num_rows = num_rows
        self.float_keys = float_keys

    def open(self, tag: np.ndarray) -> Any:
        """A new person keyed by `tag[0]` (release: an existing equal key is reused)."""
        key = tag[0] if self.float_keys else len(self.rows)
        self.rows.setdefault(key, np.zeros((self.num_rows, 5)))
        self.tags[key] = [tag]
        return key

    def mean_tags(self, keys: list[Any]) -> np.ndarray:
        return np.array([np.mean(self.tags[k], axis=0) for k in keys])


def _greedy_pairs(
    predicted: np.ndarray, targets: np.ndarray, limit: float | None
) -> list[tuple[int, int]]:
    """Repeatedly the closest (predicted, target) pair (first minimum, row-major), one to one,
    stopping when the squared distance exceeds limit**2. Indices into the original arrays."""
    rows, cols = list(range(len(predicted))), list(range(len(targets)))
    pairs = []
    while rows and cols:
        diff = np.sum(np.square(predicted[rows][:, None, :] - targets[cols][None, :, :]), -1)
        r, c = np.unravel_index(np.argmin(diff), diff.shape)
        if limit is not None and diff[r, c] > limit**2:
            break
        pairs.append((rows.pop(r), cols.pop(c)))
    return pairs


def _match_root_joints(
    people: _People, cand: DemCandidates, partition: DemPartition, params: GroupingParams
) -> list[list[Any]]:
    """Step 3 after the centres: per root joint the person key of each candidate."""
    from scipy.optimize import linear_sum_assignment

    keys_of_root: list[list[Any]] = [[] for _ in partition.root]
    for r, joint in enumerate(partition.root):
        tags = cand.tag[r]
        rows = np.concatenate((cand.loc[joint], cand.val[joint][:, None], tags), 1)
        if rows.shape[0] == 0:
            continue
        keys = list(people.rows)[: params.max_people]
        if params.ignore_too_much and len(keys) == params.max_people:
            continue
        dist = np.linalg.norm(rows[:, None, 3:] - people.mean_tags(keys)[None, :, :], ord=2,
                              axis=2)
        cost = np.round(dist) * 100 - rows[:, 2:3] if params.use_detection_val else dist.copy()
        num_added, num_grouped = dist.shape
        if num_added > num_grouped:
            cost = np.concatenate((cost, np.full((num_added, num_added - num_grouped), 1e10)), 1)
        for row, col in zip(*linear_sum_assignment(cost)):
            if col < num_grouped and dist[row, col] < params.tag_threshold:
                key = keys[col]
                people.rows[key][joint] = rows[row]
                people.tags[key].append(tags[row])
            else:
                key = people.open(tags[row])
                people.rows[key][joint] = rows[row]
            keys_of_root[r].append(key)
    return keys_of_root


def match_double_embedding(
    cand: DemCandidates, partition: DemPartition, params: GroupingParams, mode: DemMode
) -> np.ndarray:
    """Steps 3-6 (official `match_by_de`): (P, J, 5) float32 people, integer positions."""
    j_all = partition.num_joints
    people = _People(j_all + 1, mode.float_keys)
    centre_keys = []
    for i, centre_tag in enumerate(cand.tag[-1]):
        key = people.open(centre_tag)
        x, y = cand.loc[-1][i]
        people.rows[key][-1] = np.array([x, y, cand.val[-1][i], centre_tag[0], centre_tag[1]])
        centre_keys.append(key)
    if not centre_keys:
        return np.zeros((0, j_all, 5), np.float32)
    keys_of_root = _match_root_joints(people, cand, partition, params)
    centres = cand.loc[-1].astype(np.float64)
    for f, joint in enumerate(partition.face):
        rows = np.concatenate((cand.loc[joint], cand.val[joint][:, None], cand.face_offsets[f]), 1)
        for row, col in _greedy_pairs(cand.loc[joint] + cand.face_offsets[f], centres,
                                      MATCH_RADIUS):
            people.rows[centre_keys[col]][joint] = rows[row]
    _match_limbs(people, cand, partition, keys_of_root, mode)
    found = [rows[:-1] for rows in people.rows.values() if np.sum(rows[:-1, 2]) > 0]
    if not found:
        return np.zeros((0, j_all, 5), np.float32)
    return np.array(found).astype(np.float32)


def _match_limbs(
    people: _People,
    cand: DemCandidates,
    partition: DemPartition,
    keys_of_root: list[list[Any]],
    mode: DemMode,
) -> None:
    """Step 5: chains root -> middle -> end joint by parent offsets, centre fallback."""
    parent_keys = {root: list(keys) for root, keys in zip(partition.root, keys_of_root)}
    parent_locs = {root: cand.loc[root].astype(np.float64) for root in partition.root}
    for limb_index, joint in enumerate(partition.limbs):
        parent = partition.parent_of(joint)
        offsets = cand.limb_offsets[limb_index]
        rows = np.concatenate((cand.loc[joint], cand.val[joint][:, None], offsets[:, :2]), 1)
        keys = parent_keys.get(parent, [])
        targets = parent_locs.get(parent, np.zeros((0, 2)))
        assigned_keys, assigned_locs, used = [], [], set()
        if len(keys):
            for row, col in _greedy_pairs(cand.loc[joint] + offsets[:, :2], targets, None):
                key = keys[col]
                people.rows[key][joint] = rows[row]
                assigned_keys.append(key)
                assigned_locs.append(rows[row][:2])
                used.add(row)
        left = [r for r in range(len(rows)) if r not in used]
        for row, key in _centre_fallback(people, cand.loc[joint][left] + offsets[left, 2:],
                                         assigned_keys, mode):
            people.rows[key][joint] = rows[left[row]]
            assigned_keys.append(key)
            assigned_locs.append(rows[left[row]][:2])
        parent_keys[joint] = assigned_keys
        parent_locs[joint] = np.array(assigned_locs).reshape(-1, 2)


def _centre_fallback(
    people: _People, predicted_centres: np.ndarray, taken: list[Any], mode: DemMode
) -> list[tuple[int, Any]]:
    """Leftover joints to the centres of people without this joint (70 px), greedy."""
    if mode.float_keys:  # the release's order: Python set iteration of the float keys
        candidates = list(set(people.rows.keys()) ^ set(taken))
    else:
        taken_set = set(taken)
        candidates = [k for k in people.rows if k not in taken_set]
    if not mode.centreless_fallback:
        candidates = [k for k in candidates if people.rows[k][-1, 2] > 0]
    if not candidates or len(predicted_centres) == 0:
        return []
    centres = np.stack([people.rows[k][-1][:2] for k in candidates])
    return [(row, candidates[col])
            for row, col in _greedy_pairs(predicted_centres, centres, MATCH_RADIUS)]


def _offset_scale(height: int, width: int, mode: DemMode) -> float:
    """Map pixels per normalised offset unit (see `DemMode.training_normaliser`)."""
    if mode.training_normaliser:
        return math.sqrt(2.0) * min(height, width)
    return (height * height + width * width) ** 0.5


def _adjust_inside(grouped: np.ndarray, heatmaps: torch.Tensor) -> np.ndarray:
    """`adjust_positions` for positions that need not be integer (after MRM): the quarter step
    is read at the truncated, map-clamped pixel and added to the position, as the release's
    `adjust` does."""
    height, width = heatmaps.shape[1:]
    clamped = grouped.copy()
    clamped[:, :, 0] = np.clip(np.trunc(grouped[:, :, 0]), 0, width - 1)
    clamped[:, :, 1] = np.clip(np.trunc(grouped[:, :, 1]), 0, height - 1)
    adjusted = adjust_positions(clamped, heatmaps)
    out = grouped.astype(np.float32, copy=True)
    out[:, :, :2] += adjusted[:, :, :2] - clamped[:, :, :2]
    return out


def parse_double_embedding(
    heatmaps: torch.Tensor,
    tags: torch.Tensor,
    offsets: torch.Tensor,
    params: GroupingParams,
    mode: DemMode,
) -> DemGroupingResult:
    """The whole parse of one image (official `HeatmapParser.parse`, or its paper variant).

    Args:
        heatmaps: (J+1, H, W) float, centre last; tags: (J+1, H, W, L); offsets: (C, H, W)
            normalised.
        params: detection / tag thresholds, top-k, NMS kernel, adjust, refine.
        mode: release or paper behaviour (`dem_mode_settings`).
    """
    channels, height, width = heatmaps.shape
    partition = partition_for_joints(channels - 1)
    if offsets.shape != (partition.num_offsets, height, width):
        raise ValueError(f"offsets {tuple(offsets.shape)} != "
                         f"{(partition.num_offsets, height, width)} for {channels - 1} joints")
    cand = dem_candidates(heatmaps, tags, offsets, partition, params,
                          _offset_scale(height, width, mode))
    grouped = match_double_embedding(cand, partition, params, mode)
    scores = np.array([person[:, 2].mean() for person in grouped], np.float32)
    if len(grouped) == 0:
        return DemGroupingResult(grouped, scores, cand)
    if mode.mrm:
        grouped = np.stack([mutual_refine(p, partition, mode.mrm_threshold) for p in grouped])
        if not mode.float_keys:  # paper: keep moved joints inside the map
            np.clip(grouped[:, :, 0], 0, width - 1, out=grouped[:, :, 0])
            np.clip(grouped[:, :, 1], 0, height - 1, out=grouped[:, :, 1])
    joints = heatmaps[:-1]
    run_adjust = params.refine if mode.adjust_with_refine_only else params.adjust
    if run_adjust:
        grouped = _adjust_inside(grouped, joints)
    if params.refine:
        grouped = refine_people(grouped, joints, DenseTags(tags[:-1]))
    return DemGroupingResult(grouped.astype(np.float32), scores, cand)


def group_double_embedding(
    heatmaps: torch.Tensor,
    tags: torch.Tensor,
    params: GroupingParams,
    *,
    offsets: torch.Tensor | np.ndarray,
    dem_mode: Literal["paper", "release"] = "paper",
    dem_mrm: bool | None = None,
) -> Poses:
    """`pose_core.group_bottom_up(..., method="double_embedding", offsets=..., dem_mode=...)`.

    Args:
        heatmaps: (J+1, H, W) checked float tensor (J joints, then the person centre).
        tags: (J+1, H, W, L).
        params: grouping options.
        offsets: (C, H, W) (or (1, C, H, W)) in the network's normalised units.
        dem_mode: "paper" (default) or "release".
        dem_mrm: force MRM on / off (None: the mode's choice).

    Returns:
        Poses in map pixels (J joints; the centre is not a joint).
    """
    offsets_t = torch.as_tensor(offsets, device=heatmaps.device).float()
    if offsets_t.ndim == 4 and offsets_t.shape[0] == 1:
        offsets_t = offsets_t[0]
    if offsets_t.ndim != 3 or not all_finite(offsets_t):
        raise ValueError(f"offsets must be finite (C, H, W), got {tuple(offsets_t.shape)}")
    mode = dem_mode_settings(dem_mode, dem_mrm)
    return parse_double_embedding(heatmaps, tags, offsets_t, params, mode).to_poses()


def add_dem_arguments(parser: Any) -> Any:
    """Adds `--dem-mode {paper,release}` (Double Embedding models only; default: paper) to an
    argparse parser; read it back with `dem_options_from_args`."""
    parser.add_argument("--dem-mode", choices=DEM_MODES, default=None,
                        help="Double Embedding models: decoder mode (default paper: MRM and the "
                        "documented fixes; release: the released behaviour)")
    return parser


def dem_options_from_args(args: Any) -> dict[str, str]:
    """{"dem_mode": ...} when the flag was given, else {} (other methods refuse the option)."""
    mode = getattr(args, "dem_mode", None)
    return {} if mode is None else {"dem_mode": mode}
