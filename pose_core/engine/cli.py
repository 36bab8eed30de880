"""`pose-train`: train a model from a YAML experiment file.

    pose-train --config config/train/synthetic_lite.yaml [key=value ...] [--output-dir DIR]
               [--no-resume]
    torchrun --nproc_per_node 4 -m pose_core.engine.cli --config ...   (DDP, one GPU per rank)

Overrides use dotted keys (`optim.lr=0.002 data.num_workers=0`) and are validated like the
file; the resolved config is written to `<run dir>/config.yaml`. A run directory that already
holds checkpoints is resumed from its newest complete one unless `--no-resume` is given.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Sequence

from pose_core.engine.config import ConfigError, load_config

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pose-train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="experiment YAML (config/train/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=0.002")
    parser.add_argument("--output-dir", default=None, help="run directory (default runs/<name>)")
    parser.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as error:
        print(f"pose-train: {error}", file=sys.stderr)
        return 2
    import torch

    from pose_core.engine import distributed
    from pose_core.engine.tasks import build_task
    from pose_core.engine.trainer import Trainer

    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    run_dir = pathlib.Path(args.output_dir or config.output_dir or f"runs/{config.name}")
    context = distributed.init_distributed(config.device)
    try:
        trainer = Trainer(config, build_task(config), run_dir, context=context)
        result = trainer.train(resume=not args.no_resume)
        trainer.close()
    finally:
        distributed.destroy_distributed()
    if context.is_main:
        metrics = " ".join(f"{k}={v:.4f}" for k, v in result.last_metrics.items())
        print(f"pose-train: done: epoch {result.epoch}, step {result.step}, "
              f"best {config.validation.metric}={result.best_metric} {metrics} -> {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
