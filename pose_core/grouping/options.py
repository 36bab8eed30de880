"""Bottom-up grouping options: `GroupingParams` as the one record, and its command-line form.

`GroupingParams` (frozen, `pose_core.grouping`) holds the parser options and their defaults (the
official W32-512 COCO test values). Everything else that exposes some of these options takes its
defaults and builds its record from here instead of restating them:

- `pose-infer` and `pose-eval` get their flags from `add_grouping_arguments` and the record from
  `grouping_params_from_args`;
- `engine.config.ValidationConfig` (YAML `validation:` keys) and `pose_ros.params.NodeParams`
  (ROS parameters) use `GROUPING_DEFAULTS` for their field defaults and
  `grouping_params_from(self)` for the record.

Estimators receive the record as keywords: `PoseEstimator(name, **dataclasses.asdict(params))`.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from pose_core.grouping import GroupingParams

__all__ = [
    "GROUPING_DEFAULTS",
    "add_grouping_arguments",
    "grouping_params_from",
    "grouping_params_from_args",
]

GROUPING_DEFAULTS = GroupingParams()
_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(GroupingParams))


def grouping_params_from(source: Any, **overrides: Any) -> GroupingParams:
    """The `GroupingParams` whose fields `source` has as attributes (the others keep their
    defaults), with `overrides` applied last.

    Args:
        source: any object with some of the field names as attributes (a config record, the
            node parameters, parsed arguments).
        **overrides: field values that replace `source`'s.
    """
    values = {name: getattr(source, name) for name in _FIELD_NAMES if hasattr(source, name)}
    return GroupingParams(**{**values, **overrides})


def add_grouping_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds `--detection-threshold`, `--tag-threshold`, `--max-people` and `--no-refine`
    (defaults from `GroupingParams`); returns `parser`. Read them back with
    `grouping_params_from_args`."""
    parser.add_argument("--detection-threshold", type=float,
                        default=GROUPING_DEFAULTS.detection_threshold,
                        help="bottom-up grouping: minimum heatmap peak of a joint "
                        "(default %(default)s)")
    parser.add_argument("--tag-threshold", type=float, default=GROUPING_DEFAULTS.tag_threshold,
                        help="bottom-up grouping: maximum tag distance to join a person "
                        "(default %(default)s)")
    parser.add_argument("--max-people", type=int, default=GROUPING_DEFAULTS.max_people,
                        help="bottom-up grouping: maximum people per image (default %(default)s)")
    parser.add_argument("--no-refine", action="store_true",
                        help="bottom-up grouping: do not fill in missing joints (refine)")
    return parser


def grouping_params_from_args(args: argparse.Namespace) -> GroupingParams:
    """The record of the flags added by `add_grouping_arguments`."""
    return grouping_params_from(args, refine=not args.no_refine)
