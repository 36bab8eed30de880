"""Thin wrapper over `pose-train` for running from a checkout without installing the scripts.

    ./env.sh python training/train.py --config config/train/synthetic_lite.yaml [key=value ...]
    ./env.sh torchrun --nproc_per_node 2 training/train.py --config ...

Everything lives in `pose_core.engine` (see `pose_core/engine/cli.py`).
"""

from __future__ import annotations

import sys

from pose_core.engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
