"""Double Embedding training loss: heatmaps with a weighted centre, 1-D AE, Smooth-L1 offsets.

Follows `lib/core/loss.py::MultiLossFactory` of `plyplyply/pytorch-DEM2` @ 06f188d, written anew:
- heatmaps, per resolution: HigherHRNet's masked MSE over the J + 1 channels with the centre
  channel's squared error x `centre_weight` (5), mean over (C, H, W) per image, x factor;
- offsets, per resolution: Smooth-L1 (beta 1) of (prediction x mask, target x mask), mean over
  every element of the batch, x `offset_factors` (2.0 for COCO W32-512, 1.0 for the others);
- AE at the tags' resolution over all J + 1 tag channels (HigherHRNet "exp" push / pull,
  `losses.ae_loss`), x 1e-3 each. With one person the push is 0 (as HigherHRNet; the release
  computes 0 / 0 = NaN there).
The trainer's total is the sum of the batch means of every term, the release's `do_train` sum.

Shapes: outputs as `models.double_embedding` (read through its `HeadLayout`); heatmaps
[(B, J+1, r, r)] per resolution, masks [(B, r, r)], offsets [(B, C, r, r)], joints
(B, P, J+1, 2) AE indices at the tags' resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from pose_core.losses.ae_loss import ae_loss
from pose_core.losses.heatmap_loss import masked_heatmap_mse
from pose_core.models.heads import HeadLayout

__all__ = ["DoubleEmbeddingLossConfig", "DoubleEmbeddingLoss", "centre_weighted_heatmap_mse"]

OFFSET_EXTRAS = ("offsets_s4", "offsets_s2")


@dataclass(frozen=True)
class DoubleEmbeddingLossConfig:
    """Factors of the released yamls (COCO W32-512 defaults)."""

    heatmap_factors: tuple[float, ...] = (1.0, 1.0)
    offset_factors: tuple[float, ...] = (2.0, 2.0)
    push_factor: float = 1e-3
    pull_factor: float = 1e-3
    centre_weight: float = 5.0
    ae_loss_type: str = "exp"


def centre_weighted_heatmap_mse(
    pred: Tensor, gt: Tensor, mask: Tensor, centre_weight: float = 5.0
) -> Tensor:
    """(B,) masked MSE over (C, H, W) with the last (centre) channel weighted."""
    channels = pred.shape[1]
    joints = masked_heatmap_mse(pred[:, :-1], gt[:, :-1], mask) * (channels - 1)
    centre = masked_heatmap_mse(pred[:, -1:], gt[:, -1:], mask) * centre_weight
    return (joints + centre) / channels


class DoubleEmbeddingLoss(nn.Module):
    """The DEM loss on the network's outputs.

    Args:
        head: the outputs' layout (heatmaps per resolution, tags, offset extras).
        config: factors.
    """

    def __init__(self, head: HeadLayout, config: DoubleEmbeddingLossConfig | None = None):
        super().__init__()
        self.head = head
        self.config = config or DoubleEmbeddingLossConfig()
        if len(self.config.heatmap_factors) != len(head.heatmaps):
            raise ValueError("one heatmap factor per resolution")
        if len(self.config.offset_factors) != len(head.heatmaps):
            raise ValueError("one offset factor per resolution")

    def terms(
        self,
        outputs: Sequence[Tensor],
        heatmaps: Sequence[Tensor],
        masks: Sequence[Tensor],
        joints: Tensor,
        offsets: Sequence[Tensor],
    ) -> dict[str, Tensor]:
        """Per-image heatmap / push / pull terms (B,) and per-batch offset terms (scalars),
        factors applied."""
        config = self.config
        out: dict[str, Tensor] = {}
        for i, block in enumerate(self.head.heatmaps):
            pred = block.take(outputs)
            out[f"heatmaps_{i}"] = config.heatmap_factors[i] * centre_weighted_heatmap_mse(
                pred, heatmaps[i], masks[i], config.centre_weight
            )
            offset_pred = self.head.extra(OFFSET_EXTRAS[i]).take(outputs)
            mask = masks[i][:, None].to(offset_pred.dtype)
            out[f"offsets_{i}"] = config.offset_factors[i] * F.smooth_l1_loss(
                offset_pred * mask, offsets[i] * mask
            )
        assert self.head.tags is not None
        tags = self.head.tags.take(outputs)
        push, pull = ae_loss(tags.reshape(tags.shape[0], -1), joints, config.ae_loss_type)
        out["push"] = push * config.push_factor
        out["pull"] = pull * config.pull_factor
        return out

    def forward(
        self,
        outputs: Sequence[Tensor],
        heatmaps: Sequence[Tensor],
        masks: Sequence[Tensor],
        joints: Tensor,
        offsets: Sequence[Tensor],
    ) -> dict[str, Tensor]:
        """Scalar terms (batch means) whose sum is the training loss."""
        return {name: value.mean() for name, value in
                self.terms(outputs, heatmaps, masks, joints, offsets).items()}
