"""Benchmark of the bottom-up post-network path: batched (`pose_core`) vs a loop-over-people
reference of the same algorithm, in the same process.

Path timed (from raw HigherHRNet outputs of a 512 x 768 input, flip test on): flip
aggregation, projection to the input size, NMS + top-k, tag matching, adjust, refine,
back-projection to image pixels.

- batched: `merge_stage_outputs` + `aggregate_scales` (lazy tag projection) +
  `parse_bottom_up` + `back_project_centre_aligned`, the maps in one `BufferPool` reused
  from call to call as `PoseEstimator` does (`--fresh-buffers`: allocated anew every call).
- loop reference: the official structure: every heatmap and tag map projected in full,
  `reference_parse` (per-person adjust and full-map refine loops over all joints, numpy, as the
  official `HeatmapParser.refine`), per-person back-projection.
- `--retain-freed-memory`: the process keeps freed memory (`retain_freed_memory`; by default
  glibc's allocator settings, under which the batched path page-faults its large buffers in
  again on many calls).
- all timed functions run interleaved (round-robin, one call each per round), so they see
  the same load; medians are reported (`speedup`: median reference / median batched;
  `speedup_paired`: the median over the rounds that time both of reference / batched in that
  round; `--repeats` equal to `--reference-repeats` interleaves every batched call).
  `--schedule phased` times each path's repeats back to back instead (for an idle machine: no
  allocator interference between the paths).
- also reported: the refine stage alone (batched `refine_people`, given the top-k NMS maxima
  as LB seeds as the parser passes them, vs the per-person loop) on the same adjusted people
  and maps.

Synthetic raw outputs: P people on a jittered grid with Gaussian joints (sigma 2 at 1/4, 4
at 1/2 resolution, about 15% joints missing), per-person tags with small noise on the body,
noisy tags elsewhere, heatmap noise floor below 0.05. Both paths must find the same people (checked
every run).

Usage:
    nice -n 10 ./env.sh python training/benchmark_postprocess.py --people 1 10 30 \
        --repeats 5 --reference-repeats 3 --threads 1 [--device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pose_core.geometry import affine_matrix, apply_affine, back_project_centre_aligned
from pose_core.grouping import GroupingParams, parse_bottom_up
from pose_core.grouping.reference_parser import _refine_one, reference_parse
from pose_core.grouping.refine import refine_people
from pose_core.inference.allocator import retain_freed_memory
from pose_core.inference.buffers import BufferPool
from pose_core.inference.test_time_aug import aggregate_scales, merge_stage_outputs
from pose_core.inference.thread_policy import DEFAULT_THREAD_POLICY
from pose_core.keypoint_specs import COCO_17

INPUT_WH = (768, 512)
CENTER = (320, 215)
SCALE = (3.2175, 2.145)


@dataclass(frozen=True)
class RawOutputs:
    """Network outputs for one image: normal and flipped pass (flipped ones still mirrored)."""

    outputs: list[torch.Tensor]
    flip_outputs: list[torch.Tensor]


def synthetic_outputs(num_people: int, seed: int, device: torch.device) -> RawOutputs:
    """Raw HigherHRNet-like outputs for a 512 x 768 input with `num_people` people."""
    rng = np.random.default_rng(seed)
    joints = 17
    width, height = INPUT_WH

    def one_pass(people_xy: np.ndarray, visible: np.ndarray, tag_values: np.ndarray):
        q_w, q_h, h_w, h_h = width // 4, height // 4, width // 2, height // 2
        out0 = np.zeros((1, 2 * joints, q_h, q_w), np.float32)
        out1 = np.zeros((1, joints, h_h, h_w), np.float32)
        out0[0, :joints] = rng.uniform(0, 0.05, (joints, q_h, q_w))
        out1[0] = rng.uniform(0, 0.05, (joints, h_h, h_w))
        out0[0, joints:] = rng.normal(0, 0.5, (joints, q_h, q_w))
        qy, qx = np.mgrid[0:q_h, 0:q_w]
        hy, hx = np.mgrid[0:h_h, 0:h_w]
        for p in range(len(people_xy)):
            for j in range(joints):
                x, y = people_xy[p, j]
                blob_q = np.exp(-((qx - x / 4) ** 2 + (qy - y / 4) ** 2) / (2 * 2.0**2))
                region = blob_q > 0.05
                out0[0, joints + j][region] = tag_values[p] + rng.normal(
                    0, 0.05, int(region.sum())
                )
                if visible[p, j]:
                    out0[0, j] = np.maximum(out0[0, j], blob_q)
                    blob_h = np.exp(-((hx - x / 2) ** 2 + (hy - y / 2) ** 2) / (2 * 4.0**2))
                    out1[0, j] = np.maximum(out1[0, j], blob_h)
        return [torch.from_numpy(out0).to(device), torch.from_numpy(out1).to(device)]

    # jittered grid of people (a crowded but separable scene: 30 people fill 768 x 512)
    cols = int(np.ceil(np.sqrt(num_people * width / height)))
    rows = int(np.ceil(num_people / cols))
    cell = rng.permutation(rows * cols)[:num_people]
    cell_w, cell_h = width / cols, height / rows
    centers = np.stack(
        [(cell % cols + 0.5) * cell_w, (cell // cols + 0.5) * cell_h], 1
    ) + rng.uniform(-0.1, 0.1, (num_people, 2)) * [cell_w, cell_h]
    spread = min(30.0, 0.2 * min(cell_w, cell_h))
    offsets = rng.normal(0, spread, (num_people, joints, 2))
    people_xy = np.clip(centers[:, None, :] + offsets, 4, [width - 5, height - 5])
    visible = rng.uniform(size=(num_people, joints)) > 0.15
    tag_values = (np.arange(num_people) - num_people / 2) * 1.5 + rng.normal(0, 0.05, num_people)
    normal = one_pass(people_xy, visible, tag_values)
    mirrored_xy = people_xy.copy()
    mirrored_xy[:, :, 0] = width - 1 - people_xy[:, :, 0]
    mirrored_xy = mirrored_xy[:, list(COCO_17.flip_index)]
    mirrored_vis = visible[:, list(COCO_17.flip_index)]
    flipped = one_pass(mirrored_xy, mirrored_vis, tag_values)
    return RawOutputs(normal, flipped)


def batched_path(
    raw: RawOutputs, params: GroupingParams, pool: BufferPool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    if pool is None:
        pool = BufferPool()  # a fresh pool: every map allocated anew
    with pool.frame():
        maps = merge_stage_outputs(raw.outputs, raw.flip_outputs, 17, COCO_17.flip_index,
                                   pool=pool)
        heatmaps, tags = aggregate_scales([maps], INPUT_WH, pool=pool)
        result = parse_bottom_up(heatmaps, tags, params)
    keypoints = result.grouped[:, :, :3].astype(np.float64)
    if len(keypoints):
        keypoints[:, :, :2] = back_project_centre_aligned(
            keypoints[:, :, :2], np.array(CENTER), np.array(SCALE), INPUT_WH
        )
    return keypoints, result.scores


def loop_reference_path(
    raw: RawOutputs, params: GroupingParams
) -> tuple[np.ndarray, np.ndarray]:
    width, height = INPUT_WH
    flip_index = list(COCO_17.flip_index)
    size = raw.outputs[1].shape[-2:]

    def up(x: torch.Tensor, hw) -> torch.Tensor:
        return F.interpolate(x, size=hw, mode="bilinear", align_corners=False)

    o0 = up(raw.outputs[0], size)
    f0 = torch.flip(up(raw.flip_outputs[0], size), [3])
    f1 = torch.flip(raw.flip_outputs[1], [3])
    avg = (o0[:, :17] + raw.outputs[1]) / 2
    avg_flip = (f0[:, :17][:, flip_index] + f1[:, flip_index]) / 2
    heat = (up(avg, (height, width)) + up(avg_flip, (height, width))) / 2
    tags = torch.stack(
        [up(o0[:, 17:], (height, width)), up(f0[:, 17:][:, flip_index], (height, width))], dim=4
    )
    grouped, scores = reference_parse(heat[0].cpu().numpy(), tags[0].cpu().numpy(), params)
    inverse = affine_matrix(CENTER, SCALE, INPUT_WH, inverse=True)
    keypoints = grouped[:, :, :3].astype(np.float64)
    for person in keypoints:
        for joint in person:
            joint[:2] = apply_affine(joint[:2], inverse)
    return keypoints, scores


def refine_stage_inputs(raw: RawOutputs, params: GroupingParams):
    """Aggregated maps and the adjusted people before refine (input of the refine stage)."""
    maps = merge_stage_outputs(raw.outputs, raw.flip_outputs, 17, COCO_17.flip_index)
    heatmaps, tags = aggregate_scales([maps], INPUT_WH)
    unrefined_result = parse_bottom_up(
        heatmaps, tags, GroupingParams(**{**params.__dict__, "refine": False})
    )
    unrefined = unrefined_result.grouped
    # the parser seeds refine's lower bound with the top-k NMS maxima (pixels y * W + x)
    loc = unrefined_result.loc_k
    seeds = torch.as_tensor(loc[:, :, 1] * INPUT_WH[0] + loc[:, :, 0])
    dense_tags = torch.stack([tags.dense(j) for j in range(17)])  # (J, L, H * W)
    dense_tags = dense_tags.reshape(17, tags.num_tags, INPUT_WH[1], INPUT_WH[0])
    return heatmaps, tags, unrefined, dense_tags.permute(0, 2, 3, 1).contiguous(), seeds


def _time(fn: Callable[[], object], repeats: int, device: torch.device) -> list[float]:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def _time_interleaved(
    timed: dict[str, tuple[Callable[[], object], int, torch.device]],
) -> dict[str, list[float]]:
    """Round-robin timing: round r runs every function that still has repeats left, so all
    paths see the same machine load (a shared machine's load drifts over seconds)."""
    times: dict[str, list[float]] = {name: [] for name in timed}
    rounds = max(repeats for _, repeats, _ in timed.values())
    for r in range(rounds):
        for name, (fn, repeats, device) in timed.items():
            if r < repeats:
                times[name] += _time(fn, 1, device)
    return times


def _time_phased(
    timed: dict[str, tuple[Callable[[], object], int, torch.device]],
) -> dict[str, list[float]]:
    """Each function's repeats back to back (its own phase): what a process running only that
    path sees. Interleaved, the loop reference's large temporary arrays make glibc hand memory
    back to the kernel between two batched calls, which then page-fault their buffers in again
    (docs/benchmark_postprocess.md); on an idle machine this schedule avoids that artefact."""
    return {name: _time(fn, repeats, device) for name, (fn, repeats, device) in timed.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[1, 10, 30])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREAD_POLICY.grouping_threads,
                        help="torch threads (default: the package's grouping_threads; 0: "
                             "torch's own default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--schedule", choices=("interleaved", "phased"), default="interleaved",
                        help="interleaved: round-robin (fair under a drifting load); phased: "
                        "each path's repeats back to back (idle machine)")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="call pose_core.inference.allocator.retain_freed_memory() first "
                        "(freed memory stays in the process heap; both paths share it)")
    parser.add_argument("--fresh-buffers", action="store_true",
                        help="batched path without a BufferPool (its maps allocated anew "
                        "every call; the estimator keeps a pool)")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # opt-in process allocator setting; both paths share it (same process)
    retained = retain_freed_memory() if args.retain_freed_memory else False
    params = GroupingParams()
    rows = []
    for num_people in args.people:
        raw = synthetic_outputs(num_people, args.seed + num_people, device)
        # One pool for all batched calls, as `PoseEstimator` keeps one (None: fresh buffers)
        pool = None if args.fresh_buffers else BufferPool()
        keypoints, scores = batched_path(raw, params, pool)  # warm-up + result
        row = {"people": num_people, "found": int(len(keypoints))}
        timed = {"batched": (lambda: batched_path(raw, params, pool), args.repeats, device)}
        if not args.skip_reference:
            cpu_raw = RawOutputs(
                [o.cpu() for o in raw.outputs], [o.cpu() for o in raw.flip_outputs]
            )
            ref_kp, ref_scores = loop_reference_path(cpu_raw, params)
            same = ref_kp.shape == keypoints.shape and bool(
                np.allclose(ref_kp, keypoints, atol=1e-3)
                and np.allclose(ref_scores, scores, atol=1e-5)
            )
            heat, sampler, unrefined, dense, seeds = refine_stage_inputs(cpu_raw, params)
            det_np, tags_np = heat.numpy(), dense.numpy()
            heat_d = heat.to(device)
            sampler_d = aggregate_scales(
                [merge_stage_outputs(raw.outputs, raw.flip_outputs, 17, COCO_17.flip_index)],
                INPUT_WH,
            )[1]
            seeds_d = seeds.to(device)
            cpu = torch.device("cpu")
            timed.update(
                {
                    "reference": (
                        lambda: loop_reference_path(cpu_raw, params), args.reference_repeats, cpu
                    ),
                    "refine_loop": (
                        lambda: [_refine_one(det_np, tags_np, person) for person in unrefined],
                        args.reference_repeats, cpu,
                    ),
                    "refine_batched": (
                        lambda: refine_people(unrefined, heat_d, sampler_d, seed_pixels=seeds_d),
                        args.repeats, device,
                    ),
                }
            )
        times = _time_interleaved(timed) if args.schedule == "interleaved" else _time_phased(timed)
        batched = times["batched"]
        row.update(
            {
                "batched_median_ms": 1e3 * statistics.median(batched),
                "batched_min_ms": 1e3 * min(batched),
                # every call, in timing order (interleaved: round r of each)
                "times_ms": {name: [1e3 * t for t in ts] for name, ts in times.items()},
            }
        )
        if not args.skip_reference:
            reference, refine_loop = times["reference"], times["refine_loop"]
            refine_batched = times["refine_batched"]
            row.update(
                {
                    "refine_batched_median_ms": 1e3 * statistics.median(refine_batched),
                    "refine_loop_median_ms": 1e3 * statistics.median(refine_loop),
                    "refine_speedup": statistics.median(refine_loop)
                    / statistics.median(refine_batched),
                    "same_people": same,
                    "reference_median_ms": 1e3 * statistics.median(reference),
                    "speedup": statistics.median(reference) / statistics.median(batched),
                }
            )
            if args.schedule == "interleaved":
                # rounds with both calls: each ratio compares two calls timed seconds apart
                # (robust to the VM's speed drifting between rounds)
                row["speedup_paired"] = statistics.median(
                    r / b for r, b in zip(reference, batched)
                )
        rows.append(row)
        print(json.dumps(row), flush=True)
    info = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "schedule": args.schedule,
        "retain_freed_memory": retained,
        "buffer_pool": not args.fresh_buffers,
        "torch": torch.__version__,
        "rows": rows,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=1)
    print(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
