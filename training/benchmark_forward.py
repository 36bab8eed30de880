"""Forward-pass timing of registered networks on the CPU (batch 1, eval mode, no grad).

Usage:
    python training/benchmark_forward.py                      # W32-512 at 512x512 + lite at 256
    python training/benchmark_forward.py higherhrnet_w32_512_coco --size 512x512 --repeats 10

Reports the median (and min / max) wall time of `--repeats` forwards after `--warmup` untimed
ones, with `torch.set_num_threads(--threads)`. Weights: by default order-1 random weights (the
parity fixtures' rule: convs N(0, (0.5 / sqrt(fan_in))^2), BN near identity), because the
official random init (N(0, 0.001)) drives eval-mode activations into float denormals, which are
much slower on x86 CPUs and would distort the timing (`--weights official-init` shows it). The
machine load (1-min load average) is printed because other processes sharing the CPU inflate
the numbers. Not a test: run it by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Sequence

import torch

from pose_core.bench.weights import fill_order_one_weights_
from pose_core.models import build_model, model_info
from pose_core.models.fusion import fold_batchnorm

DEFAULT_CASES: tuple[tuple[str, tuple[int, int]], ...] = (
    ("higherhrnet_w32_512_coco", (512, 512)),
    ("higherhrnet_lite_w16_256_coco", (256, 256)),
)


def time_forward(
    name: str,
    size_wh: tuple[int, int],
    repeats: int,
    warmup: int,
    channels_last: bool = False,
    fold_bn: bool = False,
    official_init: bool = False,
) -> tuple[list[float], list[float]]:
    """Wall and process-CPU seconds per forward of `name` on a (1, 3, h, w) normal input.

    The CPU time (all threads of this process) is less sensitive to other processes taking the
    cores than the wall time; with T threads and an idle machine it is about T x wall.
    """
    model = build_model(name).eval()
    if not official_init:
        fill_order_one_weights_(model)
    if fold_bn:
        model = fold_batchnorm(model)
    width, height = size_wh
    image = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(0))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    wall, cpu = [], []
    with torch.inference_mode():
        for index in range(warmup + repeats):
            start, start_cpu = time.perf_counter(), time.process_time()
            model(image)
            elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if index >= warmup:
                wall.append(elapsed)
                cpu.append(elapsed_cpu)
    return wall, cpu


def _parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height or width)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="model names (default: W32-512 and lite-256)")
    parser.add_argument("--size", type=_parse_size, default=None, help="input WxH (default: "
                        "the model's input size)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into the convs")
    parser.add_argument("--weights", choices=("order-one", "official-init"), default="order-one")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = (
        [(n, args.size or model_info(n).input_size) for n in args.names]
        if args.names
        else list(DEFAULT_CASES)
    )
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, threads {torch.get_num_threads()}, weights {args.weights}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    for name, size in cases:
        wall, cpu = time_forward(
            name, size, args.repeats, args.warmup, args.channels_last, args.fold_bn,
            args.weights == "official-init",
        )
        print(
            f"{name} {size[0]}x{size[1]}: median {statistics.median(wall):.3f} s "
            f"(min {min(wall):.3f}, max {max(wall):.3f}, n={len(wall)}); "
            f"CPU time median {statistics.median(cpu):.3f} s; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
