"""Training engine: typed configs, the training loop, checkpoints, optimiser, DDP helpers.

Modules:
- `config`: `TrainConfig` and its sub-configs, strict `load_config` / `from_dict`, `to_yaml`;
- `trainer`: `Trainer` (train_step / run_iteration / train, hooks: checkpoint, validate, log);
- `tasks`: bottom-up (HigherHRNet) and top-down (HRNet) dataset / loss / validation glue;
- `checkpointing`: atomic format-1 checkpoints and resume;
- `optim`: Adam + MultiStepLR-per-epoch (+ warm-up);
- `distributed`: torchrun / DDP helpers;
- `cli`: `pose-train --config config/train/<name>.yaml [key=value ...]`.

Submodules are imported explicitly (`from pose_core.engine.trainer import Trainer`), so
importing the package stays cheap.
"""

from __future__ import annotations

__all__: list[str] = []
