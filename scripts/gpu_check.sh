#!/usr/bin/env bash
# One-command GPU check, from anywhere in a checkout on a machine with a CUDA device:
#
#   scripts/gpu_check.sh [extra pytest arguments]
#
# 1. the `gpu`-marked tests (`python -m pytest -m gpu`: CUDA against CPU people, fp32 and fp16);
# 2. a CUDA smoke run: PoseEstimator(DEFAULT_MODEL, device="cuda") on a synthetic 640x480 frame,
#    fp32 and fp16, printing the people found and the per-stage timings (median / p90 of 20);
# 3. `python -m pose_core.bench.device_checks --device cuda`: the torch backend in fp32 / fp16 /
#    bf16 on CUDA against CPU fp32 people, grouping + refine on CUDA tensors against the CPU;
# 4. pose-bench on HigherHRNet-W32-512 (torch on CUDA, fp32 / fp16 / bf16; model-only and
#    end-to-end with the flip test on 640x480 frames, batches 1 and 4), reports written to
#    runs/bench_gpu/w32_512_cuda.{json,md,png} (add them to docs/deployment.md).
# Uses ./env.sh (the project's venv + ROS workspace) when ./setup.sh has run, else `python`.
# Exit status: 0 all passed, 3 no CUDA device, otherwise the failing step's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -x .venv/bin/python ] && [ -f install/setup.sh ]; then
  PY=(./env.sh python)
else
  PY=(python)
fi

"${PY[@]}" - <<'EOF' || exit 3
import sys

import torch

if not torch.cuda.is_available():
    print(f"gpu_check: torch {torch.__version__} sees no CUDA device", file=sys.stderr)
    sys.exit(1)
print(f"gpu_check: torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.get_device_name(0)}")
EOF

# The ROS tests need rclpy and the built messages; without them only the library tests run.
if "${PY[@]}" -c "import rclpy, pose_ros.msg" 2>/dev/null; then
  TEST_PATHS=(test)
else
  TEST_PATHS=(test/core test/integration)
fi
echo "gpu_check: python -m pytest -m gpu ${TEST_PATHS[*]}"
"${PY[@]}" -m pytest -m gpu -q -p no:cacheprovider "${TEST_PATHS[@]}" "$@"

echo "gpu_check: CUDA smoke run"
"${PY[@]}" - <<'EOF'
import time

import numpy as np
import torch

from pose_core import DEFAULT_MODEL, PoseEstimator
from pose_core.data.synthetic import SyntheticVideo

image = SyntheticVideo(640, 480, num_people=4, fps=15.0, seed=0).frame(0).image_bgr
cpu_people = len(PoseEstimator(DEFAULT_MODEL, flip_test=False)(image).with_min_score(0.1))
for fp16 in (False, True):
    started = time.perf_counter()
    estimator = PoseEstimator(DEFAULT_MODEL, device="cuda", flip_test=False, fp16=fp16)
    build_s = time.perf_counter() - started
    for _ in range(3):  # warm-up: cuDNN autotuning, allocator
        estimator(image)
    totals, stages = [], {key: [] for key in estimator.last_timings}
    for _ in range(20):
        started = time.perf_counter()
        poses = estimator(image)
        totals.append(time.perf_counter() - started)
        for key, value in estimator.last_timings.items():
            stages[key].append(value)
    people = len(poses.with_min_score(0.1))
    timing = ", ".join(
        f"{key} {1e3 * np.median(v):.1f}/{1e3 * np.percentile(v, 90):.1f}"
        for key, v in {"total": totals, **stages}.items()
    )
    print(f"gpu_check: {DEFAULT_MODEL} cuda fp16={fp16}: built in {build_s:.1f} s, "
          f"{people} people (CPU: {cpu_people}); ms median/p90: {timing}; "
          f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    if people == 0:
        raise SystemExit("gpu_check: the CUDA estimator found nobody")
EOF

echo "gpu_check: torch backend precisions and grouping on CUDA vs CPU"
"${PY[@]}" -m pose_core.bench.device_checks --device cuda

echo "gpu_check: pose-bench W32-512 on CUDA"
"${PY[@]}" -m pose_core.bench.cli --model higherhrnet_w32_512_coco --device cuda \
  --backends torch --precisions fp32 fp16 bf16 --sizes 512 --batches 1 4 --modes model e2e \
  --flip --frame-size 640x480 --rounds 3 --repeats 20 --warmup 5 \
  --out-dir runs/bench_gpu --stem w32_512_cuda
echo "gpu_check: OK"
