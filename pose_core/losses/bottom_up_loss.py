"""The bottom-up training loss: per-resolution masked heatmap MSE + AE push/pull.

Mirrors HigherHRNet `lib/core/loss.py::MultiLossFactory` together with the trainer's reduction
(`lib/core/trainer.py`): each term is averaged over the batch and multiplied by its factor;
the total the trainer backpropagates is Σ_res heatmaps_res + push + pull. Official W32-512 COCO
values: heatmap factors (1.0, 1.0), AE at resolution 0 only, push/pull factors 0.001, type 'exp'.

Shapes: the network outputs are read through the model's `HeadLayout` (HigherHRNet: output i
(B, C_i, H_i, W_i) with channels [0, J) heatmaps and, in output 0, [J, 2J) tag maps);
heatmaps[i] (B, J, H_i, W_i) per heatmap block; masks[i] (B, H_i, W_i); joints (B, P, J, 2)
int64 AE indices into the tag block flattened over (J, H, W) (one tag value per joint).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from pose_core.losses.ae_loss import AE_LOSS_TYPES, ae_loss
from pose_core.losses.heatmap_loss import masked_heatmap_mse
from pose_core.models.heads import HeadLayout

__all__ = ["BottomUpLoss"]


class BottomUpLoss(nn.Module):
    """HigherHRNet loss as a dict of batch-averaged scalar terms.

    Args:
        head: the outputs' layout; an int J stands for HigherHRNet's
            (`HeadLayout.associative_embedding(J, len(heatmap_factors))`).
        heatmap_factors: factor per resolution (its length is the number of resolutions).
        with_ae: per resolution, whether the AE loss runs on the tags of that resolution's
            output; None: where the head has its tags (official: (True, False)).
        push_factor: AE push factor (0.001).
        pull_factor: AE pull factor (0.001).
        ae_loss_type: "exp" (official yaml) or "max".
    """

    def __init__(
        self,
        head: HeadLayout | int,
        heatmap_factors: Sequence[float] = (1.0, 1.0),
        with_ae: Sequence[bool] | None = None,
        push_factor: float = 0.001,
        pull_factor: float = 0.001,
        ae_loss_type: str = "exp",
    ) -> None:
        super().__init__()
        if not isinstance(head, HeadLayout):
            head = HeadLayout.associative_embedding(int(head), len(heatmap_factors))
        if len(head.heatmaps) != len(heatmap_factors):
            raise ValueError("heatmap_factors needs one entry per heatmap block of the head")
        if head.tags is None:
            raise ValueError("the AE loss needs a head with tags")
        if with_ae is None:
            with_ae = tuple(block.output == head.tags.output for block in head.heatmaps)
        if len(with_ae) != len(heatmap_factors):
            raise ValueError("heatmap_factors and with_ae need one entry per resolution")
        if any(a and b.output != head.tags.output for a, b in zip(with_ae, head.heatmaps)):
            raise ValueError("with_ae marks a resolution whose output carries no tags")
        if ae_loss_type not in AE_LOSS_TYPES:
            raise ValueError(f"ae_loss_type must be one of {AE_LOSS_TYPES}, got {ae_loss_type!r}")
        self.head = head
        self.num_joints = head.num_joints
        self.heatmap_factors = tuple(float(f) for f in heatmap_factors)
        self.with_ae = tuple(bool(a) for a in with_ae)
        self.push_factor = float(push_factor)
        self.pull_factor = float(pull_factor)
        self.ae_loss_type = ae_loss_type

    def forward(
        self,
        outputs: Sequence[Tensor],
        heatmaps: Sequence[Tensor],
        masks: Sequence[Tensor],
        joints: Tensor,
    ) -> dict[str, Tensor]:
        """Compute the terms.

        Returns:
            {"heatmaps_0": ..., "heatmaps_1": ..., "push": ..., "pull": ...}: scalar tensors,
            factors applied; the training loss is the sum of the values. "push"/"pull" are
            summed over the AE resolutions (one in the official set-up).
        """
        if not (len(heatmaps) == len(masks) == len(self.heatmap_factors)
                and len(outputs) >= self.head.num_outputs):
            raise ValueError(
                f"expected {len(self.heatmap_factors)} resolutions, got outputs={len(outputs)}, "
                f"heatmaps={len(heatmaps)}, masks={len(masks)}"
            )
        terms: dict[str, Tensor] = {}
        push_total: Tensor | None = None
        pull_total: Tensor | None = None
        head = self.head
        assert head.tags is not None
        for i in range(len(self.heatmap_factors)):
            predicted = head.heatmap_maps(outputs, i)
            per_sample = masked_heatmap_mse(predicted, heatmaps[i], masks[i])
            terms[f"heatmaps_{i}"] = per_sample.mean() * self.heatmap_factors[i]
            if self.with_ae[i]:
                tags = self._flat_tags(head.tags.take(outputs))
                push, pull = ae_loss(tags, joints, self.ae_loss_type)
                push = push.mean() * self.push_factor
                pull = pull.mean() * self.pull_factor
                push_total = push if push_total is None else push_total + push
                pull_total = pull if pull_total is None else pull_total + pull
        if push_total is not None and pull_total is not None:
            terms["push"] = push_total
            terms["pull"] = pull_total
        return terms

    def _flat_tags(self, tags: Tensor) -> Tensor:
        """(B, J * D, H, W) joint-major tag channels -> (B, J * H * W, D), the AE indices'
        (J, H, W) order."""
        batch, _, height, width = tags.shape
        dim = self.head.tag_dim
        if dim == 1:
            return tags.reshape(batch, -1)
        return tags.reshape(batch, self.num_joints, dim, height, width).permute(
            0, 1, 3, 4, 2).reshape(batch, -1, dim)
