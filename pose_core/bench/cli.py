"""`pose-bench`: latency / throughput of the network alone and of image -> people, per backend,
precision, input size and batch, side by side; JSON + markdown + plot in `--out-dir`.

Examples:
    pose-bench --model higherhrnet_w32_512_coco --backends torch onnxruntime --sizes 512 \
        --modes model --rounds 5 --repeats 5 --out-dir runs/bench
    pose-bench --modes e2e --flip --frame-size 640x480 --batches 1 2

Without `--checkpoint`, a model other than the shipped one gets seeded order-one random weights
(`pose_core.bench.weights`): its timings are those of a trained network of that size, its people
are meaningless.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height or width)


def build_parser() -> argparse.ArgumentParser:
    from pose_core.default_model import DEFAULT_MODEL

    parser = argparse.ArgumentParser(prog="pose-bench", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--precisions", nargs="+", default=["fp32"])
    parser.add_argument("--sizes", type=_size, nargs="+", default=None,
                        help="network input sizes W or WxH (default: the model's)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--modes", nargs="+", choices=("model", "e2e"), default=["model", "e2e"])
    parser.add_argument("--flip", action="store_true", help="end-to-end with the flip test")
    parser.add_argument("--frame-size", type=_size, default=(640, 480),
                        help="end-to-end camera frame WxH")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch and onnxruntime intra-op threads (default: their own)")
    parser.add_argument("--out-dir", type=Path, default=Path("runs/bench"))
    parser.add_argument("--stem", default="bench")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from pose_core.bench.report import write_reports
    from pose_core.bench.runner import BenchCase, run_cases
    from pose_core.bench.weights import write_order_one_checkpoint
    from pose_core.default_model import DEFAULT_MODEL
    from pose_core.models import model_info

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint
    if checkpoint is None and args.model != DEFAULT_MODEL:
        folder = Path(tempfile.gettempdir()) / "pose_bench_weights"
        checkpoint = str(write_order_one_checkpoint(args.model, folder))
    sizes = args.sizes or [model_info(args.model).input_size]
    options = (("intra_op_threads", args.threads),) if args.threads else ()
    cases = [
        BenchCase(mode, backend, precision, size, batch, args.flip and mode == "e2e",
                  options if backend == "onnxruntime" else ())
        for mode in args.modes for size in sizes for batch in args.batches
        for precision in args.precisions for backend in args.backends
    ]
    results = run_cases(cases, args.model, checkpoint, args.device, args.rounds, args.repeats,
                        args.warmup, args.frame_size)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    settings["checkpoint"] = checkpoint
    paths = write_reports(results, args.out_dir, settings, args.stem)
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0 if all(r.stats is not None for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
