"""Where the batched bottom-up post-network path spends its time, stage by stage.

Runs the batched path of `training/benchmark_postprocess.py` (same synthetic raw outputs, one
`BufferPool` as the estimator keeps) split into its stages, each timed on its own, and reports
the median milliseconds per stage over the repeats (and the page faults per call). The staged
calls are those `parse_bottom_up` makes; every run checks that they give its result.

Stages: merge (flip + stage merge at 1/2 resolution), projection (heatmaps to the input size;
the tags stay lazy), tile maxima (4 x 4 and 8 x 8 blocks, shared by top-k and refine), top-k
(NMS maxima above the detection threshold), matching (host), adjust, refine,
back-projection. `--fresh-buffers`: a new pool per call, i.e. the maps allocated anew (what
the path did before `BufferPool`; the page-fault column shows the difference).

Usage:
    ./env.sh python training/postprocess_stages.py --people 10 --threads 1 --repeats 25 \
        [--json stages.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import numpy as np
import torch

from pose_core.geometry import back_project_centre_aligned
from pose_core.grouping import GroupingParams, parse_bottom_up
from pose_core.grouping.adjust import adjust_positions
from pose_core.grouping.candidates import _TILE, _tile_max, top_k_candidates
from pose_core.grouping.matching import match_by_tag
from pose_core.grouping.refine import refine_people
from pose_core.inference.buffers import BufferPool
from pose_core.inference.test_time_aug import aggregate_scales, merge_stage_outputs
from pose_core.keypoint_specs import COCO_17
from training.benchmark_postprocess import (
    CENTER,
    INPUT_WH,
    SCALE,
    RawOutputs,
    synthetic_outputs,
)

STAGES = ("merge", "projection", "tile maxima", "top-k", "matching", "adjust", "refine",
          "back-projection")


def staged_path(
    raw: RawOutputs, params: GroupingParams, pool: BufferPool, clock: list[float]
) -> np.ndarray:
    """The batched path with a clock reading appended after each stage; returns the keypoints
    (P, J, 3) in image pixels."""
    width = INPUT_WH[0]
    clock.append(time.perf_counter())
    with pool.frame():
        maps = merge_stage_outputs(raw.outputs, raw.flip_outputs, 17, COCO_17.flip_index,
                                   pool=pool)
        clock.append(time.perf_counter())
        heatmaps, tags = aggregate_scales([maps], INPUT_WH, pool=pool)
        clock.append(time.perf_counter())
        sub_tile_max = _tile_max(heatmaps, _TILE // 2)
        tile_max = _tile_max(sub_tile_max, 2)
        clock.append(time.perf_counter())
        val_k, ind_k, tag_k = top_k_candidates(
            heatmaps, tags, params.max_people, params.nms_kernel,
            above=params.detection_threshold, tile_max=tile_max,
        )
        val_np = val_k.cpu().numpy().astype(np.float32)
        ind_np = ind_k.cpu().numpy()
        tag_np = tag_k.cpu().numpy().astype(np.float32)
        clock.append(time.perf_counter())
        loc_np = np.stack((ind_np % width, ind_np // width), axis=-1).astype(np.int64)
        grouped = match_by_tag(tag_np, loc_np, val_np, params)
        clock.append(time.perf_counter())
        grouped = adjust_positions(grouped, heatmaps)
        clock.append(time.perf_counter())
        grouped = refine_people(grouped, heatmaps, tags, tile_max=tile_max,
                                sub_tile_max=sub_tile_max, seed_pixels=ind_k)
        clock.append(time.perf_counter())
    keypoints = grouped[:, :, :3].astype(np.float64)
    if len(keypoints):
        keypoints[:, :, :2] = back_project_centre_aligned(
            keypoints[:, :, :2], np.array(CENTER), np.array(SCALE), INPUT_WH
        )
    clock.append(time.perf_counter())
    return keypoints


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=25)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--fresh-buffers", action="store_true",
                        help="a new BufferPool per call (every map allocated anew)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    params = GroupingParams()
    raw = synthetic_outputs(args.people, args.seed + args.people, torch.device("cpu"))
    pool = BufferPool()
    # the staged calls must be the parser's: same people as parse_bottom_up
    with pool.frame():
        maps = merge_stage_outputs(raw.outputs, raw.flip_outputs, 17, COCO_17.flip_index,
                                   pool=pool)
        heatmaps, tags = aggregate_scales([maps], INPUT_WH, pool=pool)
        expected = parse_bottom_up(heatmaps, tags, params).grouped[:, :, :3].astype(np.float64)
    if len(expected):
        expected[:, :, :2] = back_project_centre_aligned(
            expected[:, :, :2], np.array(CENTER), np.array(SCALE), INPUT_WH
        )
    per_stage: dict[str, list[float]] = {name: [] for name in STAGES}
    totals, faults = [], []
    for repeat in range(args.warmup + args.repeats):
        clock: list[float] = []
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        keypoints = staged_path(raw, params, BufferPool() if args.fresh_buffers else pool, clock)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        if not np.array_equal(keypoints, expected):
            raise RuntimeError("the staged path no longer matches parse_bottom_up")
        if repeat < args.warmup:
            continue
        for name, start, end in zip(STAGES, clock[:-1], clock[1:]):
            per_stage[name].append(1e3 * (end - start))
        totals.append(1e3 * (clock[-1] - clock[0]))
        faults.append(after - before)
    result = {
        "people": args.people,
        "found": int(len(expected)),
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "repeats": args.repeats,
        "buffer_pool": not args.fresh_buffers,
        "stage_median_ms": {name: statistics.median(v) for name, v in per_stage.items()},
        "total_median_ms": statistics.median(totals),
        "page_faults_median": statistics.median(faults),
    }
    for name in STAGES:
        print(f"{name:16s} {result['stage_median_ms'][name]:7.2f} ms")
    print(f"{'total':16s} {result['total_median_ms']:7.2f} ms  (median of whole calls; "
          f"{result['page_faults_median']:.0f} page faults per call)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
