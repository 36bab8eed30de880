"""Bottom-up grouping: heatmap NMS, top-k, associative-embedding matching, adjust, refine.

`group_bottom_up` is the official HigherHRNet HeatmapParser (exact), batched on the maps'
device; `reference_parser` holds a plain loop-over-people numpy version of the same algorithm
(test cross-check and benchmark baseline). `oks_nms` is the top-down reference NMS.
"""

from __future__ import annotations

from pose_core.grouping.nms import heatmap_nms, oks_iou, oks_nms
from pose_core.grouping.tag_grouping import (
    DenseTags,
    GroupingParams,
    GroupingResult,
    ResizedTags,
    TagSampler,
    default_joint_order,
    group_bottom_up,
    parse_bottom_up,
)

__all__ = [
    "DenseTags",
    "GroupingParams",
    "GroupingResult",
    "ResizedTags",
    "TagSampler",
    "default_joint_order",
    "group_bottom_up",
    "heatmap_nms",
    "oks_iou",
    "oks_nms",
    "parse_bottom_up",
]
