"""Turn a training checkpoint into the shipped weights file (the last step of the recipe).

    ./env.sh python training/export_shipped_weights.py \
        [--checkpoint runs/shipped_model_v4/best.pt] \
        [--out pose_core/weights/higherhrnet_lite_w16_256_coco.pt] [--model NAME]

Writes the checkpoint's model state_dict alone, floating tensors as fp32 (training may keep
none in another precision, but the file must not depend on it), with the official key names in
the network's own order (checked by loading it strictly into a fresh network of `--model`).
Refuses (exit 1, the old file untouched) a wrong-model checkpoint or a file over 20 MB (the
package-data budget of the shipped model). Unlike `training/make_report.py` it evaluates
nothing and writes no docs.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
from collections.abc import Sequence

import torch

from pose_core.default_model import DEFAULT_MODEL
from pose_core.engine.checkpointing import CheckpointError, load_training_checkpoint

REPO = pathlib.Path(__file__).resolve().parents[1]
MAX_WEIGHTS_BYTES = 20 * 1024 * 1024


class ExportRefused(RuntimeError):
    """The checkpoint does not make a valid shipped weights file."""


def shipped_state_dict(checkpoint: pathlib.Path, model_name: str) -> dict[str, torch.Tensor]:
    """The model state_dict of a training checkpoint, fp32, in `model_name`'s key order."""
    from pose_core.models import build_model

    try:
        payload = load_training_checkpoint(checkpoint)
    except CheckpointError as error:
        raise ExportRefused(str(error)) from error
    trained_as = (payload.get("config") or {}).get("model", {}).get("name")
    if trained_as not in (None, model_name):
        raise ExportRefused(f"{checkpoint} was trained as {trained_as}, not {model_name}")
    model = build_model(model_name)
    try:
        model.load_state_dict(payload["model"], strict=True)
    except RuntimeError as error:
        raise ExportRefused(f"{checkpoint} does not fit {model_name}: {error}") from error
    return {k: v.detach().float().contiguous() if v.is_floating_point() else v.detach()
            for k, v in model.state_dict().items()}


def export_weights(checkpoint: pathlib.Path, out: pathlib.Path, model_name: str = DEFAULT_MODEL,
                   max_bytes: int = MAX_WEIGHTS_BYTES) -> int:
    """Write the shipped file; returns its size in bytes. Raises ExportRefused."""
    state = shipped_state_dict(checkpoint, model_name)
    out.parent.mkdir(parents=True, exist_ok=True)
    # written beside the target and moved into place only when accepted
    fd, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            torch.save(state, stream)
        size = pathlib.Path(temporary).stat().st_size
        if size > max_bytes:
            raise ExportRefused(f"{size / 2**20:.1f} MB is over the {max_bytes / 2**20:.0f} MB "
                                "limit of the shipped weights")
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=pathlib.Path,
                        default=pathlib.Path("runs/shipped_model_v4/best.pt"))
    parser.add_argument("--out", type=pathlib.Path,
                        default=REPO / "pose_core" / "weights" / f"{DEFAULT_MODEL}.pt")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="registered model name")
    args = parser.parse_args(argv)
    try:
        size = export_weights(args.checkpoint, args.out, args.model)
    except ExportRefused as error:
        print(f"export_shipped_weights: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({size / 2**20:.1f} MB, fp32 state_dict of {args.model})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
