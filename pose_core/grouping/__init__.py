"""Bottom-up grouping: heatmap NMS, top-k, associative-embedding matching, adjust, refine.

`group_bottom_up` is the official HigherHRNet HeatmapParser (exact), batched on the maps'
device; `reference_parser` holds a plain loop-over-people numpy version of the same algorithm
(test cross-check and benchmark baseline). `oks_nms` is the top-down reference NMS.

Modules, in pipeline order: `tag_sampling` (tag values at heatmap pixels), `candidates`
(NMS + top-k), `matching` (tag matching), `adjust`, `refine` (with its exact searches in
`refine_search`), and `parser` (the whole parse and `group_bottom_up`).
"""

from __future__ import annotations

from pose_core.grouping.adjust import adjust_positions
from pose_core.grouping.candidates import top_k_candidates
from pose_core.grouping.matching import default_joint_order, match_by_tag
from pose_core.grouping.nms import heatmap_nms, oks_iou, oks_nms
from pose_core.grouping.parser import (
    GroupingParams,
    GroupingResult,
    group_bottom_up,
    parse_bottom_up,
)
from pose_core.grouping.refine import refine_people
from pose_core.grouping.tag_sampling import DenseTags, ResizedTags, TagSampler

__all__ = [
    "DenseTags",
    "GroupingParams",
    "GroupingResult",
    "ResizedTags",
    "TagSampler",
    "adjust_positions",
    "default_joint_order",
    "group_bottom_up",
    "heatmap_nms",
    "match_by_tag",
    "oks_iou",
    "oks_nms",
    "parse_bottom_up",
    "refine_people",
    "top_k_candidates",
]
