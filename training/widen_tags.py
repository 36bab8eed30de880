"""Initialise a HigherHRNet with D tag values per joint from weights with one (the tag2 experiment).

The network is the same but for the tag channels: output 0's prediction conv gets J x D tag
rows (joint-major: row J + j x D + d) instead of J, and the deconv that reads output 0
(`cat_output`) gets the matching input channels. Everything else is copied. Tag value 0 of each
joint is copied from the source's tag, so the new network's first tag value and heatmaps equal
the source's at the start; the other values keep the new network's random initialisation (a
zero start would be a stationary point of the AE loss: its gradient there is zero) and the
deconv's weights on them start at zero, so the heatmaps do not move at the start.
The extra values' random rows are scaled up (`--extra-gain`) so that they start with some spread.

    ./env.sh python training/widen_tags.py --source pose_core/weights/higherhrnet_lite_w16_256_coco.pt \
        --model higherhrnet_lite_w16_256_coco_tag2 --out runs/tag2_init.pt
"""

from __future__ import annotations

import argparse
import pathlib

import torch

from pose_core.models import build_model, model_info
from pose_core.models.checkpoint import load_checkpoint


def widen(source_state: dict[str, torch.Tensor], model: torch.nn.Module, num_joints: int,
          tag_dim: int, extra_gain: float = 1.0, copy_first: bool = False
          ) -> dict[str, torch.Tensor]:
    """The widened state dict: `model`'s own tensors with the source copied in; the random
    prediction rows of the extra tag values are multiplied by `extra_gain`, or with
    `copy_first` are copies of the first value's (a start for a target near the first value,
    such as the mirrored pass's tag of flip-tag distillation)."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    j = num_joints
    for d in range(1, tag_dim):
        state["final_layers.0.weight"][j + d::tag_dim] *= extra_gain
    copied_rows = {}  # with copy_first: the extra values' prediction rows = the first value's
    for key, value in source_state.items():
        target = state[key]
        if target.shape == value.shape:
            state[key] = value.clone()
        elif key.startswith("final_layers.0."):  # (J + J, ...) -> (J + J * D, ...)
            target[:j] = value[:j]
            target[j::tag_dim][:j] = value[j:2 * j]  # rows J + j * D: the first tag value
            copied_rows[key] = value[j:2 * j]
        elif key == "deconv_layers.0.0.0.weight":  # ConvTranspose (in, out, k, k)
            features = value.shape[0] - 2 * j
            target.zero_()
            target[:features + j] = value[:features + j]  # backbone features, heatmaps
            target[features + j::tag_dim][:j] = value[features + j:]  # first tag values
        else:
            raise ValueError(f"{key}: {tuple(value.shape)} -> {tuple(target.shape)} not handled")
    if copy_first:
        for key, rows in copied_rows.items():
            for d in range(1, tag_dim):
                state[key][j + d::tag_dim][:j] = rows
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=pathlib.Path, required=True)
    parser.add_argument("--source-model", default="higherhrnet_lite_w16_256_coco")
    parser.add_argument("--model", default="higherhrnet_lite_w16_256_coco_tag2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra-gain", type=float, default=50.0,
                        help="x the random init of the extra tag rows: the official init "
                        "(std 0.001) gives values ~0.006 against ~1.4 for the copied one, and "
                        "the AE gradients on a value scale with its spread, so it would hardly "
                        "grow at a fine-tuning learning rate")
    parser.add_argument("--copy-first", action="store_true",
                        help="the extra values start as copies of the first (flip-tag "
                        "distillation: the mirrored pass's tag is close to the normal one)")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    source = build_model(args.source_model)
    load_checkpoint(source, args.source)
    model = build_model(args.model)
    info = model_info(args.model)
    state = widen(source.state_dict(), model, info.num_joints, info.head_layout.tag_dim,
                  args.extra_gain, args.copy_first)
    load_checkpoint(model, state)  # strict: every key and shape
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, args.out)
    print(f"wrote {args.out} ({info.head_layout.tag_dim} tag values per joint)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
